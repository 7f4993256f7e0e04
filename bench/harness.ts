/**
 * Tiny benchmark harness: runs a measured function and a floor (the unavoidable work, such as
 * JSON.parse of the same payload) interleaved in the same process, and reports their ratio.
 * Absolute numbers on a shared machine are noise; the ratio against a same-run floor is the figure.
 */
export interface BenchResult {
  name: string;
  opsPerSec: number;
  floorOpsPerSec: number;
  /** measured time per op / floor time per op. */
  ratio: number;
}

async function timeIt(fn: () => unknown | Promise<unknown>, iterations: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i += 1) {
    const r = fn();
    if (r instanceof Promise) await r;
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Alternates rounds of `fn` and `floor`, keeps the best round of each (least disturbed by noise). */
export async function compare(
  name: string,
  fn: () => unknown | Promise<unknown>,
  floor: () => unknown | Promise<unknown>,
  { iterations = 20_000, rounds = 7 }: { iterations?: number; rounds?: number } = {},
): Promise<BenchResult> {
  await timeIt(fn, Math.ceil(iterations / 10));
  await timeIt(floor, Math.ceil(iterations / 10));
  let best = Infinity;
  let bestFloor = Infinity;
  for (let r = 0; r < rounds; r += 1) {
    best = Math.min(best, await timeIt(fn, iterations));
    bestFloor = Math.min(bestFloor, await timeIt(floor, iterations));
  }
  return { name, opsPerSec: iterations / best, floorOpsPerSec: iterations / bestFloor, ratio: best / bestFloor };
}

/** Prints results as an aligned table. */
export function report(results: BenchResult[]): void {
  const rows = results.map((r) => [r.name, Math.round(r.opsPerSec).toLocaleString('en-US'), Math.round(r.floorOpsPerSec).toLocaleString('en-US'), `${r.ratio.toFixed(2)}x`]);
  const header = ['benchmark', 'ops/s', 'floor ops/s', 'ratio to floor'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
