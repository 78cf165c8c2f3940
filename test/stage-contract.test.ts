import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStage } from '../src/stage/local-stage.js';
import { S3Stage, s3ClientConfig } from '../src/stage/s3-stage.js';
import type { Stage } from '../src/stage/stage.js';
import { tempDir } from './helpers.js';
import { type S3TestServer, startS3Server } from './support/s3-test-server.js';

/**
 * The stage contract (src/stage/stage.ts), run through every implementation with the same cases,
 * races included: a local folder, and an S3-compatible server (s3rver behind the semantics layer
 * of test/support/s3-server-main.mjs), reached through the AWS SDK as against AWS itself.
 */
let server: S3TestServer;
let client: S3Client;
let buckets = 0;

beforeAll(async () => {
  server = await startS3Server();
  client = new S3Client({ ...s3ClientConfig(server.env), credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});
afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

const implementations: Array<[string, () => Promise<Stage>]> = [
  ['a local folder', async () => LocalStage.open(join(await tempDir('stage-'), 'stage'))],
  [
    'an S3-compatible server',
    async () => {
      const bucket = `contract-${++buckets}`;
      await server.createBucket(bucket);
      // Files over 6 MiB go in parts here, so the tests reach the multipart path with small files.
      return new S3Stage({ bucket, prefix: 'some/prefix' }, client, 6 * 1024 * 1024);
    },
  ],
];

describe.each(implementations)('the stage contract on %s', (_, open) => {
  it('reads nothing where nothing was written', async () => {
    const stage = await open();
    expect(await stage.get('a/missing.json')).toBeUndefined();
    expect(await stage.head('a/missing.json')).toBeUndefined();
    expect(await stage.getRange('a/missing.json', 0, 10)).toBeUndefined();
    expect(await stage.list('a/')).toEqual([]);
    expect(await stage.localCopy('a/missing.json')).toBeUndefined();
    await stage.delete('a/missing.json'); // deleting nothing is no error
  });

  it('creates an object only if it is absent, and never changes it on a second create', async () => {
    const stage = await open();
    const version = await stage.create('run/_dpf/journal/000001.json', 'first');
    expect(version).toEqual(expect.any(String));
    expect(await stage.create('run/_dpf/journal/000001.json', 'second')).toBeUndefined();
    const read = await stage.get('run/_dpf/journal/000001.json');
    expect(read?.bytes.toString()).toBe('first');
    expect(read?.version).toBe(version);
    expect(await stage.head('run/_dpf/journal/000001.json')).toEqual({ size: 5, version });
  });

  it('replaces an object only if it still has the version the writer read', async () => {
    const stage = await open();
    const first = (await stage.create('lease.json', 'v1'))!;
    const second = await stage.replace('lease.json', 'v2', first);
    expect(second).toEqual(expect.any(String));
    expect(second).not.toBe(first);
    // A writer still holding the first version loses.
    expect(await stage.replace('lease.json', 'v3', first)).toBeUndefined();
    expect((await stage.get('lease.json'))?.bytes.toString()).toBe('v2');
    // Replacing what is not there fails too.
    expect(await stage.replace('absent.json', 'v1', first)).toBeUndefined();
    expect(await stage.get('absent.json')).toBeUndefined();
  });

  it('puts whatever is there, and reads byte ranges', async () => {
    const stage = await open();
    await stage.put('x/manifest.json', 'old content');
    const version = await stage.put('x/manifest.json', '0123456789');
    expect(await stage.head('x/manifest.json')).toEqual({ size: 10, version });
    expect((await stage.getRange('x/manifest.json', 2, 3))?.toString()).toBe('234');
    expect((await stage.getRange('x/manifest.json', 8, 10))?.toString()).toBe('89');
    expect((await stage.getRange('x/manifest.json', 10, 5))?.toString()).toBe('');
  });

  it('lists the objects under a prefix in key order, with their sizes, after a key when asked', async () => {
    const stage = await open();
    const keys = ['r/p/b.json', 'r/p/a.json', 'r/p/sub dir/ünï.json', 'r/q/c.json', 'r/pp/d.json', 'other/e.json'];
    for (const [i, key] of keys.entries()) await stage.put(key, 'x'.repeat(i + 1));
    expect(await stage.list('r/p/')).toEqual([
      { path: 'r/p/a.json', size: 2 },
      { path: 'r/p/b.json', size: 1 },
      { path: 'r/p/sub dir/ünï.json', size: 3 },
    ]);
    expect((await stage.list('r/p')).map((entry) => entry.path)).toEqual(['r/p/a.json', 'r/p/b.json', 'r/p/sub dir/ünï.json', 'r/pp/d.json']);
    expect((await stage.list('r/p/', { startAfter: 'r/p/a.json' })).map((entry) => entry.path)).toEqual(['r/p/b.json', 'r/p/sub dir/ünï.json']);
    expect((await stage.list('r/')).length).toBe(5);
  });

  it('lists the folders directly under a prefix that hold objects, in key order', async () => {
    const stage = await open();
    for (const key of ['runs/b/_dpf/run.json', 'runs/a/x/deep.json', 'runs/a/y.json', 'runs/c d/z.json', 'runs/top.json', 'other/o.json', 'runs/gone/g.json']) await stage.put(key, '.');
    await stage.delete('runs/gone/g.json');
    expect(await stage.listFolders('runs/')).toEqual(['a', 'b', 'c d']);
    expect(await stage.listFolders('runs/a/')).toEqual(['x']);
    expect(await stage.listFolders('')).toEqual(['other', 'runs']);
    expect(await stage.listFolders('nothing/')).toEqual([]);
  });

  it('lists past a page of 1,000 objects', async () => {
    const stage = await open();
    const names = Array.from({ length: 1_005 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    for (let start = 0; start < names.length; start += 50) await Promise.all(names.slice(start, start + 50).map((name) => stage.put(name, '.')));
    const listed = await stage.list('many/');
    expect(listed.map((entry) => entry.path)).toEqual(names);
    expect((await stage.list('many/', { startAfter: names[999] })).map((entry) => entry.path)).toEqual(names.slice(1_000));
  });

  it('deletes one object, or every object under a prefix', async () => {
    const stage = await open();
    for (const key of ['d/a', 'd/b/c', 'd/b/d', 'e/f']) await stage.put(key, key);
    await stage.delete('d/a');
    expect(await stage.get('d/a')).toBeUndefined();
    await stage.deletePrefix('d/');
    expect(await stage.list('d/')).toEqual([]);
    expect((await stage.get('e/f'))?.bytes.toString()).toBe('e/f');
  });

  it('stores the content of a local file, and gives an object back as a local file', async () => {
    const stage = await open();
    const source = join(await tempDir('body-'), 'model.bin');
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    await writeFile(source, bytes);
    const version = await stage.create('m/model.bin', { file: source });
    expect(version).toEqual(expect.any(String));
    // The same content again is the same write (sent twice after a lost answer); other content is refused.
    expect(await stage.create('m/model.bin', { file: source })).toBe(version);
    expect(await stage.create('m/model.bin', 'other')).toBeUndefined();
    const copy = (await stage.localCopy('m/model.bin'))!;
    expect(copy.path.endsWith('model.bin')).toBe(true);
    expect(Buffer.compare(await readFile(copy.path), bytes)).toBe(0);
    await copy.release();
    // The caller's file is left as it was.
    expect(Buffer.compare(await readFile(source), bytes)).toBe(0);
  });

  it('puts a file bigger than one conditional write (in parts on S3), and refuses it to create', async () => {
    const stage = await open();
    const source = join(await tempDir('big-'), 'big.bin');
    const bytes = Buffer.alloc(13 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i / 4096) % 251;
    await writeFile(source, bytes);
    await stage.put('big/file.bin', { file: source });
    expect((await stage.head('big/file.bin'))?.size).toBe(bytes.length);
    expect(Buffer.compare((await stage.get('big/file.bin'))!.bytes, bytes)).toBe(0);
    if (bytes.length > stage.largestConditionalFile) {
      await expect(stage.create('big/other.bin', { file: source })).rejects.toThrow(/larger than .* the most a conditional write sends; store it with put/);
    } else {
      expect(await stage.create('big/other.bin', { file: source })).toEqual(expect.any(String));
    }
  });

  it('lets exactly one of many simultaneous creators of a key win', async () => {
    const stage = await open();
    for (let trial = 0; trial < 5; trial++) {
      const key = `race/create-${trial}`;
      const results = await Promise.all(Array.from({ length: 12 }, (_, writer) => stage.create(key, `writer ${writer}`)));
      const winners = results.map((version, writer) => (version === undefined ? -1 : writer)).filter((writer) => writer >= 0);
      expect(winners).toHaveLength(1);
      expect((await stage.get(key))?.bytes.toString()).toBe(`writer ${winners[0]}`);
    }
  });

  it('lets exactly one of many simultaneous replacers of one version win', async () => {
    const stage = await open();
    let version = (await stage.create('race/lease', 'start'))!;
    for (let trial = 0; trial < 5; trial++) {
      const results = await Promise.all(Array.from({ length: 12 }, (_, writer) => stage.replace('race/lease', `trial ${trial} writer ${writer}`, version)));
      const winners = results.map((next, writer) => (next === undefined ? -1 : writer)).filter((writer) => writer >= 0);
      expect(winners).toHaveLength(1);
      const read = (await stage.get('race/lease'))!;
      expect(read.bytes.toString()).toBe(`trial ${trial} writer ${winners[0]}`);
      expect(read.version).toBe(results[winners[0]!]);
      version = read.version;
    }
  });

  it('never shows a reader half of an object being replaced', async () => {
    const stage = await open();
    const contents = Array.from({ length: 6 }, (_, i) => Buffer.alloc(256 * 1024, 65 + i));
    await stage.put('race/big', contents[0]!);
    let writing = true;
    const writer = (async () => {
      for (let round = 0; round < 3; round++) for (const content of contents) await stage.put('race/big', content);
      writing = false;
    })();
    const seen = new Set<string>();
    while (writing) {
      const read = (await stage.get('race/big'))!;
      const first = read.bytes[0]!;
      expect(read.bytes.length).toBe(256 * 1024);
      expect(read.bytes.every((byte) => byte === first)).toBe(true);
      seen.add(String.fromCharCode(first));
    }
    await writer;
    expect(seen.size).toBeGreaterThanOrEqual(1);
  });
});
