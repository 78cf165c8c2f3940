import { connect, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';

/**
 * The tests' own Redis (test/support/redis-server.ts): a real redis-server per caller on a free
 * loopback port, which the queue tests restart (losing every key) and kill.
 */
const servers: RedisTestServer[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of servers.splice(0)) await server.stop();
});

async function started(): Promise<RedisTestServer> {
  const server = await startRedisServer();
  servers.push(server);
  return server;
}

function client(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  clients.push(redis);
  return redis;
}

/** Whether something accepts TCP connections on the loopback port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the test Redis server', () => {
  it('starts on a free loopback port and answers PING, SET and GET', async () => {
    const server = await started();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const redis = client(server.url);
    expect(await redis.ping()).toBe('PONG');
    await redis.set('greeting', 'hello');
    expect(await redis.get('greeting')).toBe('hello');
    // Nothing is persisted: no save points, no append-only file.
    expect(await redis.config('GET', 'save')).toEqual(['save', '']);
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
  });

  it('gives each caller a server of its own', async () => {
    const [one, two] = [await started(), await started()];
    expect(one.port).not.toBe(two.port);
    await client(one.url).set('where', 'one');
    expect(await client(two.url).get('where')).toBeNull();
  });

  it('restarts on the same URL with every key lost, and a connected client carries on', async () => {
    const server = await started();
    const redis = client(server.url);
    await redis.set('k', 'before');
    const { url, port } = server;
    await server.restart();
    expect([server.url, server.port]).toEqual([url, port]);
    // The client connected before reconnects to the same URL and finds an empty server.
    expect(await redis.get('k')).toBeNull();
    expect(await client(server.url).dbsize()).toBe(0);
    await redis.set('k', 'after');
    expect(await client(server.url).get('k')).toBe('after');
  });

  it('kill(SIGKILL) ends the server until restart() starts it again', async () => {
    const server = await started();
    await server.kill('SIGKILL');
    expect(await accepts(server.port)).toBe(false);
    await server.restart();
    expect(await client(server.url).ping()).toBe('PONG');
  });

  it('stop() frees the port', async () => {
    const server = await startRedisServer();
    expect(await accepts(server.port)).toBe(true);
    await server.stop();
    expect(await accepts(server.port)).toBe(false);
    const listener = createServer();
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(server.port, '127.0.0.1', resolve);
    });
    await new Promise((resolve) => listener.close(resolve));
  });
});
