import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A running `redis-server` of the caller's own on a free loopback port, with no persistence. */
export interface RedisTestServer {
  /** `redis://127.0.0.1:PORT`; the same after {@link RedisTestServer.restart}. */
  url: string;
  port: number;
  /** Stops the server (SIGTERM, nothing saved) and waits until it has exited and freed the port. */
  stop(): Promise<void>;
  /**
   * Kills the server (SIGKILL) and starts a new one on the same port: every key is lost, as when
   * Redis without persistence restarts. Resolves once the new one accepts connections. Also starts
   * the server again after {@link RedisTestServer.kill}.
   */
  restart(): Promise<void>;
  /**
   * Sends `signal` to the server. A signal that ends it (the default, SIGKILL) resolves once it has
   * exited; SIGSTOP and SIGCONT (a hung server, and its recovery) resolve at once.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Where the server is looked for: Debian's package puts it in /usr/bin, else the PATH. */
function redisServerBinary(): string {
  const candidates = ['/usr/bin/redis-server', ...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, 'redis-server'))];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there; the next one
    }
  }
  throw new Error(
    'These tests start their own Redis, but redis-server is not installed (not in /usr/bin, nor on the PATH). ' +
      'Install it: apt-get install -y redis-server (Debian/Ubuntu; .ci/run does this), or brew install redis.',
  );
}

/** A port nothing listens on now, chosen by the system (redis-server cannot be given port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const RESTING_SIGNALS: ReadonlySet<string> = new Set(['SIGSTOP', 'SIGCONT', 'SIGTSTP']);

/** Servers still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `redis-server` on `port`; resolves once it logs that it accepts connections (its own
 * readiness line, read from its stdout: a barrier, not a wait), rejects if it exits first.
 */
async function launch(binary: string, port: number, directory: string): Promise<ChildProcess> {
  const child = spawn(
    binary,
    // No RDB snapshots, no AOF: a restart loses everything. Logs to stdout, where readiness is read.
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', directory, '--daemonize', 'no', '--logfile', '', '--loglevel', 'notice'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  // Read the log for as long as the server runs: a pipe nobody drains fills up and blocks Redis.
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => {
      if (!log.includes('Ready to accept connections')) return;
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null, signal: string | null): void => {
      reject(new Error(`redis-server on port ${port} exited (${signal ?? `code ${code}`}) before it accepted connections:\n${log}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', reject);
  });
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a `redis-server` of its own on a free loopback port (`/usr/bin/redis-server`, or the one
 * on the PATH), without persistence. The caller stops it (`afterAll(() => redis.stop())`); should
 * it not, the server is killed when the test process exits.
 */
export async function startRedisServer(): Promise<RedisTestServer> {
  const binary = redisServerBinary();
  const directory = await mkdtemp(join(tmpdir(), 'dpf-redis-'));
  // The port is free when chosen, but another process may take it before Redis binds it: try again.
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(binary, port, directory);
    } catch (error) {
      if (attempt >= 5 || !/Address already in use/i.test((error as Error).message)) throw error;
    }
  }
  let current: ChildProcess | undefined = child;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (current === undefined) return;
    const target = current;
    target.kill(signal);
    if (RESTING_SIGNALS.has(signal)) return;
    await exited(target);
    current = undefined;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    restart: async () => {
      await kill('SIGKILL');
      // The same port on purpose: clients (BullMQ's) reconnect to the URL they were given.
      current = await launch(binary, port, directory);
    },
    stop: async () => {
      if (current !== undefined) {
        // A stopped (SIGSTOP) server would not act on SIGTERM until continued.
        current.kill('SIGCONT');
        await kill('SIGTERM');
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
