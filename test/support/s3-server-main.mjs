/**
 * An S3-compatible server for dpf's tests and benchmarks, in its own process:
 *
 *   node --openssl-legacy-provider test/support/s3-server-main.mjs <data folder>
 *
 * It is s3rver (a real S3-compatible HTTP server, from the project's dev dependencies) with a
 * thin layer in front that gives S3's documented semantics where s3rver lacks them, plus a fault
 * injector and request counters:
 *
 * - conditional writes: PUT with `If-None-Match: *` on an existing key, or `If-Match` with another
 *   ETag, is answered 412 PreconditionFailed (404 NoSuchKey for If-Match on a missing key), as S3
 *   does; s3rver ignores both headers;
 * - one write at a time per key, and atomic replacement: writes of a key are serialised and hold
 *   off its readers until the new object is complete (s3rver writes objects in place, so a GET
 *   during an overwrite could return torn bytes or a 500); listings and multi-object deletes wait
 *   for writes in progress;
 * - `POST /__dpf/conditional {"honour":false}` turns the conditional writes off again (a store that
 *   ignores them, as s3rver alone does), to test that dpf refuses such a store;
 * - faults: `POST /__dpf/faults {"rate":0.05,"after":0.5,"delayRate":0.1,"delayMs":200}` makes a
 *   fraction `rate` of object requests fail with 500 or 503 — a fraction `after` of those only
 *   after the request took effect (its answer is lost, the SDK retries) — and delays a fraction
 *   `delayRate` by up to `delayMs`. Random choices follow a seeded generator (`"seed"`).
 * - holds: `POST /__dpf/hold {"match":"_dpf/packs/"}` keeps every write whose key contains the
 *   text waiting (a barrier for tests that must kill a writer at a known step); `GET /__dpf/held`
 *   gives how many are waiting; `POST /__dpf/release` lets them go and ends the hold.
 * - delimited listings (folders) include folders that hold only folders, which s3rver misses;
 * - counters: `GET /__dpf/stats` gives requests by kind (PUT, GET, HEAD, LIST, DELETE, POST) and
 *   the server's CPU seconds; `POST /__dpf/stats/reset` zeroes them.
 *
 * Prints `READY <port>` once it listens on 127.0.0.1 (a free port).
 */
/* global process, console, Buffer, setTimeout */
import S3rver from 's3rver';

const directory = process.argv[2];
if (!directory) {
  console.error('usage: s3-server-main.mjs <data folder>');
  process.exit(2);
}

/** A readers–writer lock: many readers, or one writer. */
class RwLock {
  readers = 0;
  writer = false;
  waiting = [];
  async read() {
    while (this.writer || this.waiting.some((w) => w.write)) await this.wait(false);
    this.readers++;
    return () => {
      this.readers--;
      this.wake();
    };
  }
  async write() {
    while (this.writer || this.readers > 0) await this.wait(true);
    this.writer = true;
    return () => {
      this.writer = false;
      this.wake();
    };
  }
  wait(write) {
    return new Promise((resolve) => this.waiting.push({ write, resolve }));
  }
  wake() {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.resolve();
  }
  get idle() {
    return !this.writer && this.readers === 0 && this.waiting.length === 0;
  }
}

const everything = new RwLock();
const keys = new Map();
function keyLock(id) {
  let lock = keys.get(id);
  if (lock === undefined) keys.set(id, (lock = new RwLock()));
  return lock;
}
function forget(id) {
  const lock = keys.get(id);
  if (lock !== undefined && lock.idle) keys.delete(id);
}

let faults = { rate: 0, after: 0.5, delayRate: 0, delayMs: 0 };
/** The hold: writes of keys containing `match` wait for `release`. */
let hold = { match: undefined, waiting: [] };
let honourConditions = true;
let seed = 1;
function random() {
  // mulberry32
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const stats = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, DELETE: 0, POST: 0, faults: 0 };
/** CPU the server used since the last reset (its own cost, on the machine the benchmark shares). */
let cpuSince = process.cpuUsage();

function s3Error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

async function readJson(ctx) {
  let text = '';
  for await (const chunk of ctx.req) text += chunk;
  return text === '' ? {} : JSON.parse(text);
}

async function control(ctx) {
  if (ctx.path === '/__dpf/stats' && ctx.method === 'GET') {
    const cpu = process.cpuUsage(cpuSince);
    ctx.body = JSON.stringify({ ...stats, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    ctx.type = 'application/json';
  } else if (ctx.path === '/__dpf/stats/reset' && ctx.method === 'POST') {
    for (const name of Object.keys(stats)) stats[name] = 0;
    cpuSince = process.cpuUsage();
    ctx.status = 204;
  } else if (ctx.path === '/__dpf/conditional' && ctx.method === 'POST') {
    // {"honour": false} behaves as s3rver alone does: conditional headers ignored.
    honourConditions = (await readJson(ctx)).honour !== false;
    ctx.status = 204;
  } else if (ctx.path === '/__dpf/hold' && ctx.method === 'POST') {
    hold.match = (await readJson(ctx)).match;
    ctx.status = 204;
  } else if (ctx.path === '/__dpf/held' && ctx.method === 'GET') {
    ctx.body = JSON.stringify({ held: hold.waiting.length });
    ctx.type = 'application/json';
  } else if (ctx.path === '/__dpf/release' && ctx.method === 'POST') {
    const { waiting } = hold;
    hold = { match: undefined, waiting: [] };
    for (const resume of waiting) resume();
    ctx.status = 204;
  } else if (ctx.path === '/__dpf/faults' && ctx.method === 'POST') {
    const body = await readJson(ctx);
    faults = { rate: 0, after: 0.5, delayRate: 0, delayMs: 0, ...body };
    if (typeof body.seed === 'number') seed = body.seed;
    ctx.status = 204;
  } else {
    ctx.status = 404;
  }
}

/** The bucket and key of a request's path (path-style addressing). */
function target(ctx) {
  const parts = ctx.path.split('/').slice(1);
  const bucket = decodeURIComponent(parts[0] ?? '');
  const key = parts.slice(1).map(decodeURIComponent).join('/');
  return { bucket, key };
}

function kindOf(ctx, key) {
  if (ctx.method === 'GET' && key === '') return 'LIST';
  return ctx.method in stats ? ctx.method : 'POST';
}

const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
const store = server.store;

/*
 * s3rver writes an object in place and resolves before the file is complete, so even with the
 * writes of a key serialised a reader could see it half-written. Objects are stored here the way
 * S3 behaves instead: the content goes to a temporary file, which replaces the object in one
 * rename once it is complete.
 */
const { createHash, randomBytes } = await import('node:crypto');
const { createWriteStream } = await import('node:fs');
const { mkdir, rename, unlink } = await import('node:fs/promises');
const { dirname } = await import('node:path');
const { Readable, Transform } = await import('node:stream');
const { pipeline } = await import('node:stream/promises');
store.putObject = async function putObject(object) {
  const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  const temporary = `${objectPath}.${randomBytes(6).toString('hex')}.partial`;
  const md5 = createHash('md5');
  let size = 0;
  const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(
      source,
      new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      }),
      createWriteStream(temporary),
    );
    const digest = md5.digest('hex');
    await rename(temporary, objectPath);
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
};

/*
 * s3rver's delimited listing does not look inside the folders below a common prefix, so a folder
 * holding only folders (a run's: `{runId}/_dpf/…`, `{runId}/{partition}/…`) is missing from its
 * CommonPrefixes. Delimited listings are computed here from the whole listing instead, as S3 does
 * (in one page: the tests list few folders).
 */
const listObjects = store.listObjects.bind(store);
store.listObjects = async function listDelimited(bucket, options) {
  if (!options.delimiter) return listObjects(bucket, options);
  const { delimiter, prefix = '' } = options;
  const all = await listObjects(bucket, { ...options, delimiter: '', maxKeys: Infinity });
  const commonPrefixes = new Set();
  const objects = [];
  for (const object of all.objects) {
    const at = object.key.slice(prefix.length).indexOf(delimiter);
    if (at === -1) objects.push(object);
    else commonPrefixes.add(object.key.slice(0, prefix.length + at + delimiter.length));
  }
  return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated: false };
};

server.middleware.unshift(async (ctx, next) => {
  if (ctx.path.startsWith('/__dpf/')) return control(ctx);
  const { bucket, key } = target(ctx);
  const kind = kindOf(ctx, key);
  stats[kind]++;
  if (process.env.DPF_S3_TRACE) process.stderr.write(`${kind} ${key}\n`);
  if (kind === 'PUT' && hold.match !== undefined && key.includes(hold.match)) await new Promise((resolve) => hold.waiting.push(resolve));
  if (faults.delayRate > 0 && random() < faults.delayRate) await new Promise((resolve) => setTimeout(resolve, random() * faults.delayMs));
  const fail = faults.rate > 0 && bucket !== '' && random() < faults.rate;
  const failAfter = fail && random() < faults.after;
  if (fail && !failAfter) {
    stats.faults++;
    return s3Error(ctx, random() < 0.5 ? 500 : 503, random() < 0.5 ? 'InternalError' : 'SlowDown', 'injected fault before the request took effect');
  }

  if (key === '' || ctx.method === 'POST') {
    // Bucket-level requests (listings, multi-object deletes, bucket creation) wait for writes.
    const release = await everything.write();
    try {
      await next();
    } finally {
      release();
    }
  } else {
    const id = `${bucket}/${key}`;
    const releaseAll = await everything.read();
    const lock = keyLock(id);
    const writing = ctx.method === 'PUT' || ctx.method === 'DELETE';
    const release = writing ? await lock.write() : await lock.read();
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      release();
      releaseAll();
      forget(id);
    };
    try {
      if (ctx.method === 'PUT') {
        const ifNoneMatch = ctx.get('if-none-match');
        const ifMatch = ctx.get('if-match');
        if (honourConditions && (ifNoneMatch !== '' || ifMatch !== '')) {
          const exists = await store.existsObject(bucket, key);
          const etag = exists ? (await store.getMetadata(bucket, key)).etag : undefined;
          if (ifNoneMatch === '*' && exists) return s3Error(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
          if (ifMatch !== '' && !exists) return s3Error(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
          if (ifMatch !== '' && ifMatch !== etag) return s3Error(ctx, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
        }
        await next();
      } else {
        await next();
      }
    } finally {
      // A streamed object body keeps its read lock until it has been sent.
      const body = ctx.body;
      if (!writing && body !== null && typeof body === 'object' && typeof body.pipe === 'function') {
        ctx.res.once('close', done);
      } else {
        done();
      }
    }
  }
  if (failAfter) {
    stats.faults++;
    if (ctx.body && typeof ctx.body.destroy === 'function') ctx.body.destroy();
    s3Error(ctx, 500, 'InternalError', 'injected fault after the request took effect');
  }
});

const { port } = await server.run();
process.stdout.write(`READY ${port}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
