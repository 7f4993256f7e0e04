/**
 * Vitest global setup: makes sure the real servers the suite talks to are up on loopback.
 * A server that is down is started with the command this machine kind documents; one that still
 * cannot be reached fails the whole run with a message naming it. Nothing is skipped quietly.
 */
import { execSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';

export interface Service {
  name: string;
  port: number;
  start: () => string;
}

const services: Service[] = [
  {
    name: 'PostgreSQL',
    port: 5432,
    start: () => `pg_ctlcluster --skip-systemctl-redirect ${readdirSync('/etc/postgresql')[0] ?? '15'} main start`,
  },
  {
    name: 'Redis',
    port: 6379,
    start: () =>
      'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  },
  { name: 'RabbitMQ', port: 5672, start: () => 'rabbitmq-server -detached' },
  {
    name: 'NATS JetStream',
    port: 4222,
    start: () =>
      'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log',
  },
];

function reachable(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(port: number, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (await reachable(port)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

/**
 * Makes sure every service listens on loopback, starting the ones that do not; rejects with one
 * message naming each service it could neither reach nor start.
 */
export async function ensureServices(list: readonly Service[], { waitMs = 90_000 }: { waitMs?: number } = {}): Promise<void> {
  const missing: string[] = [];
  await Promise.all(
    list.map(async (service) => {
      if (await reachable(service.port)) return;
      const command = service.start();
      console.warn(`[services] ${service.name} is not listening on 127.0.0.1:${service.port}; starting it: ${command}`);
      try {
        execSync(command, { stdio: 'ignore', timeout: 60_000 });
      } catch (error) {
        console.error(`[services] starting ${service.name} failed: ${(error as Error).message}`);
      }
      if (!(await waitFor(service.port, waitMs))) {
        missing.push(`${service.name} (127.0.0.1:${service.port}; tried: ${command})`);
      }
    }),
  );
  if (missing.length > 0) {
    throw new Error(
      `The test suite needs these servers on loopback and could not reach or start them: ${missing.join(', ')}. ` +
        'Install and start them (see README "Running the tests"), then run npm test again.',
    );
  }
}

export default async function setup(): Promise<void> {
  await ensureServices(services);
}
