import { Redis } from 'ioredis';
import { InvalidOptionError, QueueError } from '../../errors.js';
import type { QueueTarget } from '../../model/queue-job.js';
import { redactDatabaseUrl } from '../session-url.js';

/** The queue's name when none is given: BullMQ queues `dpf` (task batches) and `dpf-drivers` (runs to drive). */
export const DEFAULT_QUEUE_NAME = 'dpf';

/** Where a queue run's jobs and signals live in Redis. */
export class QueueNames {
  constructor(readonly name: string) {}

  /** The BullMQ queue of task batches. */
  get tasks(): string {
    return this.name;
  }

  /** The BullMQ queue of runs waiting for a driver. */
  get drivers(): string {
    return `${this.name}-drivers`;
  }

  /** The pub/sub channel on which drivers tell workers to stop a run's attempts. */
  get control(): string {
    return `dpf:${this.name}:control`;
  }

  /** A hash per run: the driver's `epoch`, and `stop` once the run is stopping (workers read it before each batch). */
  run(uid: string): string {
    return `dpf:${this.name}:run:${uid}`;
  }
}

/** A stop of a run's attempts, published on the control channel. */
export interface StopMessage {
  uid: string;
  reason: 'cancel' | 'fail-fast';
  /** Only the attempts of drivers before this epoch: a newer driver took the run over, and runs what they had in flight again. */
  before?: number;
}

/** Checks a queue option: a `redis://` or `rediss://` URL, or `{ url, name? }`. */
export function checkQueueOption(value: unknown, option = 'queue'): { url: string; name: string } {
  const given = typeof value === 'string' ? { url: value } : value;
  if (given === null || typeof given !== 'object') {
    throw new InvalidOptionError(option, "expected the URL of the Redis the queue lives in, such as 'redis://127.0.0.1:6379', or { url, name }");
  }
  const { url, name = DEFAULT_QUEUE_NAME } = given as { url?: unknown; name?: unknown };
  if (typeof url !== 'string' || !/^rediss?:\/\/[^/]/.test(url)) {
    throw new InvalidOptionError(`${option === 'queue' && typeof value !== 'string' ? 'queue.url' : option}`, `expected a redis:// or rediss:// URL such as 'redis://127.0.0.1:6379', got ${JSON.stringify(url)}`);
  }
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    throw new InvalidOptionError('queue.name', `expected a queue name of letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
  }
  return { url, name };
}

/** The queue as a run records it: without the Redis password. */
export function storedQueueTarget(queue: { url: string; name: string }): QueueTarget {
  return { url: redactDatabaseUrl(queue.url), name: queue.name };
}

/**
 * A Redis connection for BullMQ (which needs `maxRetriesPerRequest: null`: its blocking commands
 * wait across reconnects). It reconnects by itself, so a restarted Redis is picked up again;
 * errors while it is away are reported to `onError`, not thrown at the process.
 */
export function redisConnection(url: string, onError: (error: Error) => void = () => undefined): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy: (times) => Math.min(times * 100, 1000) });
  redis.on('error', onError);
  return redis;
}

/** Checks that the queue's Redis answers, before any work starts; a QueueError says which and what to do otherwise. */
export async function checkQueueReachable(url: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: true, connectTimeout: 5_000, retryStrategy: () => null });
  // The socket's error says why (ECONNREFUSED, ENOTFOUND, a TLS failure); the rejection only says "Connection is closed.".
  let socketError: Error | undefined;
  redis.on('error', (error: Error) => (socketError ??= error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new QueueError(
      `The queue's Redis at ${redactDatabaseUrl(url)} cannot be reached (${(socketError ?? (error as Error)).message}); start it (redis-server) or fix the queue URL`,
      { cause: socketError ?? error },
    );
  } finally {
    redis.disconnect();
  }
}
