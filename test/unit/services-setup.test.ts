import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ensureServices } from '../setup/services.js';
import { freePort } from '../support/net.js';


describe('test service setup', () => {
  it('fails loudly, naming the service and what it tried, when a server can be neither reached nor started', async () => {
    const port = await freePort();
    await expect(
      ensureServices([{ name: 'Imaginary broker', port, start: () => 'true' }], { waitMs: 600 }),
    ).rejects.toThrow(new RegExp(`could not reach or start them: Imaginary broker \\(127\\.0\\.0\\.1:${port}; tried: true\\)`));
  });

  it('starts a server that is down with its start command, then goes on', async () => {
    const port = await freePort();
    let server: ReturnType<typeof createServer> | undefined;
    // The "start command" here is a no-op shell command; the server comes up while setup waits for it.
    const started = ensureServices(
      [
        {
          name: 'Late server',
          port,
          start: () => {
            server = createServer((socket) => socket.end());
            setTimeout(() => server?.listen(port, '127.0.0.1'), 200);
            return 'true';
          },
        },
      ],
      { waitMs: 10_000 },
    );
    await expect(started).resolves.toBeUndefined();
    await new Promise((resolve) => server?.close(resolve));
  });
});
