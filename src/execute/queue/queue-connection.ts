import { InvalidOptionError } from '../../errors.js';
import type { QueueTarget } from '../../model/queue-job.js';
import { redactDatabaseUrl } from '../session-url.js';
import { DEFAULT_QUEUE_NAME } from './queue-defaults.js';

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

  /**
   * A hash per run: `epoch`, the newest driver's; `stop` and `stopEpoch` once a driver stops the
   * run (its jobs of that epoch and older are handed back). Workers read it before each batch and
   * every second while they run its attempts. Written only through the scripts below, which keep
   * each the highest: a replaced driver that wakes up cannot stop its successor's attempts.
   */
  run(uid: string): string {
    return `dpf:${this.name}:run:${uid}`;
  }
}

/** Marks a driver's epoch on a run's key (never lowering it), and keeps the key; returns whether the key had to be made (it was gone: Redis lost its data). */
export const MARK_RUN = `local made = redis.call('EXISTS', KEYS[1]) == 0
if tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'epoch', ARGV[1]) end
redis.call('PERSIST', KEYS[1])
return made and 1 or 0`;

/** Stops a run's jobs up to a driver's epoch (never lowering a stop of a newer one); ARGV[3] > 0: the key then expires after that many seconds. */
export const STOP_RUN = `if tonumber(redis.call('HGET', KEYS[1], 'stopEpoch') or '0') <= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'stop', ARGV[1], 'stopEpoch', ARGV[2]) end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 0`;

/** What a worker reads of a run's key: whether jobs of a driver's `epoch` may still run. */
export function runStopped(fields: readonly (string | null)[], epoch: number): string | undefined {
  const [newest, stop, stopEpoch] = fields;
  if (stop !== null && stop !== undefined && Number(stopEpoch) >= epoch) return `the run is stopping (${stop})`;
  if (newest !== null && newest !== undefined && Number(newest) > epoch) return 'a newer driver of the run took over';
  return undefined;
}

/** A stop of a run's attempts, published on the control channel: those of drivers up to epoch `upTo`. */
export interface StopMessage {
  uid: string;
  reason: 'cancel' | 'fail-fast';
  upTo: number;
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
