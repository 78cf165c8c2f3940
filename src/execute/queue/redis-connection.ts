import { Redis } from 'ioredis';
import { QueueError } from '../../errors.js';
import { redactDatabaseUrl } from '../session-url.js';

/*
 * The Redis connections of the queue, apart from queue-connection.ts so that checking a queue
 * option or reading a run's queue does not load ioredis (a tenth of a second at every import).
 */

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
