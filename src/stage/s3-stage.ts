import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { InvalidOptionError, StageError } from '../errors.js';
import type { S3Location } from './s3-location.js';
import { bodyBytes, type LocalCopy, type Stage, type StageBody, type StageEntry, type StageEntryInfo, type StageObject } from './stage.js';

/**
 * The S3 client dpf uses, configured the standard AWS way: region, credentials and endpoint come
 * from the environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
 * `AWS_PROFILE`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`) and the shared config and
 * credentials files, so AWS, MinIO, Ceph and R2 all work. For a custom endpoint (anything but
 * AWS) dpf uses path-style addressing (`http://host/bucket/key`, what a `localhost` endpoint
 * needs), and computes and checks request checksums only where S3 requires them (many
 * S3-compatible servers do not decode the chunked checksum framing of newer SDKs). Retries are
 * the SDK's standard strategy with 5 attempts unless `AWS_MAX_ATTEMPTS` says otherwise.
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {};
  if (env.AWS_MAX_ATTEMPTS === undefined) config.maxAttempts = 5;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (endpoint ? 'us-east-1' : undefined);
  if (region !== undefined && region !== '') config.region = region;
  if (endpoint !== undefined && endpoint !== '') {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
    if (env.AWS_REQUEST_CHECKSUM_CALCULATION === undefined) config.requestChecksumCalculation = 'WHEN_REQUIRED';
    if (env.AWS_RESPONSE_CHECKSUM_VALIDATION === undefined) config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return config;
}

let sharedClient: S3Client | undefined;

/** One client per process (it pools its connections); made on first use. */
export function s3Client(): S3Client {
  sharedClient ??= new S3Client(s3ClientConfig());
  return sharedClient;
}

/**
 * Files up to this size are sent in one PutObject from memory, which the SDK can send again when
 * a request fails (a stream it cannot); bigger ones go as a multipart upload (parts retried each),
 * which only `put` does — a conditional write is one request.
 */
const SINGLE_PUT_BYTES = 256 * 1024 * 1024;
const PART_BYTES = 16 * 1024 * 1024;

/** Stores already checked for conditional writes, by location, in this process. */
const conditionalWritesChecked = new Map<string, Promise<void>>();

/** How often a GetObject whose body was cut off is read. */
const BODY_READS = 3;
/** How often a conditional write that S3 answers 409 (another conditional write in progress) is tried again. */
const CONFLICT_RETRIES = 6;
const LIST_PAGE = 1000;

/**
 * A stage under a prefix of an S3 bucket (AWS, or any S3-compatible store), on the contract of
 * {@link Stage}: `create` is a PutObject with `If-None-Match: *`, `replace` one with `If-Match`
 * on the ETag the writer read, both answered 412 when the condition fails. A conditional write
 * the SDK retried after a lost response may find its own first try in place: it is recognised by
 * its content and counts as done.
 */
export class S3Stage implements Stage {
  readonly location: string;
  readonly caseInsensitive = false;
  readonly local = false;
  readonly scratchFolder: string;
  readonly largestConditionalFile: number;

  constructor(
    private readonly where: S3Location,
    private readonly client: S3Client = s3Client(),
    /** Files bigger than this are uploaded in parts (tests make it small). */
    singlePutBytes = SINGLE_PUT_BYTES,
  ) {
    this.largestConditionalFile = singlePutBytes;
    this.location = `s3://${where.bucket}${where.prefix === '' ? '' : `/${where.prefix}`}`;
    this.scratchFolder = join(tmpdir(), `dpf-s3-${process.pid}`);
  }

  describe(path: string): string {
    return `${this.location}/${path}`;
  }

  /**
   * Checks, once per process and location, that the store honours conditional writes — what one
   * owner per run rests on: a second create of a key, and a replace with a stale version, must be
   * refused. A store that ignores `If-None-Match`/`If-Match` (old MinIO releases, some gateways)
   * is refused with an error, not trusted. Costs five requests on a scratch key.
   */
  checkConditionalWrites(): Promise<void> {
    let checked = conditionalWritesChecked.get(this.location);
    if (checked === undefined) {
      checked = this.probeConditionalWrites();
      conditionalWritesChecked.set(this.location, checked);
      checked.catch(() => conditionalWritesChecked.delete(this.location));
    }
    return checked;
  }

  private async probeConditionalWrites(): Promise<void> {
    const path = `.dpf-probe/${randomBytes(8).toString('hex')}`;
    try {
      const first = await this.create(path, 'first');
      const second = await this.create(path, 'second');
      const stale = first === undefined ? undefined : await this.replace(path, 'third', '"0123456789abcdef0123456789abcdef"');
      if (first === undefined || second !== undefined || stale !== undefined) {
        throw new StageError(
          this.describe(path),
          `The store behind ${this.location} does not honour conditional writes (a second PutObject with If-None-Match: * or a stale If-Match was not refused with 412), ` +
            'and dpf keeps one owner per run and its journal on them: use a store that does (AWS S3, MinIO, R2, Ceph RGW) or a local folder',
        );
      }
    } finally {
      await this.delete(path).catch(() => undefined);
    }
  }

  async get(path: string): Promise<StageObject | undefined> {
    try {
      return await this.readBody(path, undefined, (bytes, response) => ({ bytes, version: response.ETag ?? '' }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure('reading', path, error);
    }
  }

  async getRange(path: string, start: number, length: number): Promise<Buffer | undefined> {
    if (length === 0) return (await this.head(path)) === undefined ? undefined : Buffer.alloc(0);
    try {
      return await this.readBody(path, `bytes=${start}-${start + length - 1}`, (bytes) => bytes);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      // A range past the end of the object: nothing there.
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 416) return Buffer.alloc(0);
      throw this.failure('reading', path, error);
    }
  }

  async head(path: string): Promise<StageEntryInfo | undefined> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.where.bucket, Key: this.key(path) }));
      return { size: response.ContentLength ?? 0, version: response.ETag ?? '' };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure('reading', path, error);
    }
  }

  create(path: string, body: StageBody): Promise<string | undefined> {
    return this.conditionalPut(path, body, { IfNoneMatch: '*' });
  }

  replace(path: string, body: StageBody, expectedVersion: string): Promise<string | undefined> {
    return this.conditionalPut(path, body, { IfMatch: expectedVersion });
  }

  async put(path: string, body: StageBody): Promise<string> {
    try {
      if (typeof body === 'object' && !(body instanceof Uint8Array) && (await stat(body.file)).size > this.largestConditionalFile) {
        return await this.uploadInParts(path, body.file);
      }
      return (await this.send(path, body, {})) ?? '';
    } catch (error) {
      throw this.failure('writing', path, error);
    }
  }

  async list(prefix: string, options: { startAfter?: string; limit?: number } = {}): Promise<StageEntry[]> {
    const limit = options.limit ?? Infinity;
    const entries: StageEntry[] = [];
    let token: string | undefined;
    try {
      do {
        const response = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.where.bucket,
            Prefix: this.key(prefix),
            MaxKeys: Math.min(LIST_PAGE, limit - entries.length),
            ...(token !== undefined ? { ContinuationToken: token } : options.startAfter !== undefined ? { StartAfter: this.key(options.startAfter) } : {}),
          }),
        );
        for (const object of response.Contents ?? []) {
          if (object.Key === undefined) continue;
          entries.push({ path: this.pathOf(object.Key), size: object.Size ?? 0 });
        }
        token = response.IsTruncated === true && entries.length < limit ? response.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw this.failure('listing', prefix, error);
    }
    return entries;
  }

  async listFolders(prefix: string): Promise<string[]> {
    const folders: string[] = [];
    const under = this.key(prefix);
    let token: string | undefined;
    try {
      do {
        const response = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.where.bucket, Prefix: under, Delimiter: '/', MaxKeys: LIST_PAGE, ...(token !== undefined ? { ContinuationToken: token } : {}) }),
        );
        for (const common of response.CommonPrefixes ?? []) if (common.Prefix !== undefined) folders.push(common.Prefix.slice(under.length, -1));
        token = response.IsTruncated === true ? response.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw this.failure('listing', prefix, error);
    }
    return folders;
  }

  async delete(path: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.where.bucket, Key: this.key(path) }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.failure('deleting', path, error);
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    const entries = await this.list(prefix);
    try {
      for (let start = 0; start < entries.length; start += LIST_PAGE) {
        const objects = entries.slice(start, start + LIST_PAGE).map((entry) => ({ Key: this.key(entry.path) }));
        const response = await this.client.send(new DeleteObjectsCommand({ Bucket: this.where.bucket, Delete: { Objects: objects, Quiet: true } }));
        const failed = (response.Errors ?? []).filter((error) => error.Code !== 'NoSuchKey');
        if (failed.length > 0) throw new Error(`${failed.length} object(s) could not be deleted, e.g. ${failed[0]!.Key}: ${failed[0]!.Message}`);
      }
    } catch (error) {
      throw this.failure('deleting', prefix, error);
    }
  }

  async localCopy(path: string): Promise<LocalCopy | undefined> {
    // The file keeps the object's name: readers choose the format by its extension.
    const folder = join(this.scratchFolder, 'copies', randomBytes(8).toString('hex'));
    const file = join(folder, path.slice(path.lastIndexOf('/') + 1));
    for (let attempt = 1; ; attempt++) {
      let body: Readable;
      try {
        const response = await this.client.send(new GetObjectCommand({ Bucket: this.where.bucket, Key: this.key(path) }));
        body = response.Body as Readable;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw this.failure('reading', path, error);
      }
      try {
        await mkdir(folder, { recursive: true });
        await pipeline(body, createWriteStream(file));
        return { path: file, release: () => rm(folder, { recursive: true, force: true }) };
      } catch (error) {
        // A body cut off mid-transfer is read again (see readBody).
        if (attempt < BODY_READS) continue;
        await rm(folder, { recursive: true, force: true });
        throw this.failure('reading', path, error);
      }
    }
  }

  /**
   * A GetObject and its whole body. The SDK retries a request until its answer starts; a body cut
   * off after that (a connection reset mid-transfer) is read again here, a few times.
   */
  private async readBody<T>(path: string, range: string | undefined, take: (bytes: Buffer, response: { ETag?: string | undefined }) => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.where.bucket, Key: this.key(path), ...(range !== undefined ? { Range: range } : {}) }));
      try {
        return take(Buffer.from(await response.Body!.transformToByteArray()), response);
      } catch (error) {
        if (attempt >= BODY_READS || error instanceof S3ServiceException) throw error;
      }
    }
  }

  private async conditionalPut(path: string, body: StageBody, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(path, body, condition);
      } catch (error) {
        const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
        if (status === 409 && attempt < CONFLICT_RETRIES) {
          await sleep(20 * 2 ** attempt);
          continue;
        }
        if (status === 412 || (status === 404 && condition.IfMatch !== undefined)) {
          // Our own earlier try, whose answer was lost, may be what is there now.
          return this.ownWrite(path, body);
        }
        throw this.failure('writing', path, error);
      }
    }
  }

  /** The version of the object at `path` when it holds exactly `body`, else undefined. */
  private async ownWrite(path: string, body: StageBody): Promise<string | undefined> {
    const current = await this.get(path);
    if (current === undefined) return undefined;
    const mine = typeof body === 'object' && !(body instanceof Uint8Array) ? await readFile(body.file) : bodyBytes(body);
    return Buffer.compare(current.bytes, mine) === 0 ? current.version : undefined;
  }

  private async send(path: string, body: StageBody, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string | undefined> {
    let bytes: Uint8Array;
    if (typeof body === 'object' && !(body instanceof Uint8Array)) {
      if ((await stat(body.file)).size > this.largestConditionalFile) {
        throw new Error(`${body.file} is larger than ${this.largestConditionalFile} bytes, the most a conditional write sends; store it with put`);
      }
      bytes = await readFile(body.file);
    } else {
      bytes = bodyBytes(body);
    }
    const response = await this.client.send(
      new PutObjectCommand({
        Bucket: this.where.bucket,
        Key: this.key(path),
        Body: bytes,
        ContentLength: bytes.byteLength,
        ContentMD5: createHash('md5').update(bytes).digest('base64'),
        ...condition,
      }),
    );
    return response.ETag;
  }

  /** A large file as a multipart upload: each part retried by the SDK, the object complete or absent. */
  private async uploadInParts(path: string, file: string): Promise<string> {
    const { Upload } = await import('@aws-sdk/lib-storage');
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.where.bucket, Key: this.key(path), Body: createReadStream(file) },
      partSize: Math.max(5 * 1024 * 1024, Math.min(PART_BYTES, this.largestConditionalFile)),
      queueSize: 2,
      leavePartsOnError: false,
    });
    const result = await upload.done();
    return result.ETag ?? '';
  }

  private key(path: string): string {
    if (path.split('/').some((segment) => segment === '..')) throw new InvalidOptionError('path', `${path} leaves the stage ${this.location}`);
    return this.where.prefix === '' ? path : `${this.where.prefix}/${path}`;
  }

  private pathOf(key: string): string {
    return this.where.prefix === '' ? key : key.slice(this.where.prefix.length + 1);
  }

  private failure(operation: string, path: string, error: unknown): StageError {
    if (error instanceof StageError || error instanceof InvalidOptionError) return error as StageError;
    const where = this.describe(path);
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    const name = (error as Error).name;
    const advice =
      status === 403 || name === 'CredentialsProviderError'
        ? 'check the AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE) and their permissions on the bucket'
        : name === 'NoSuchBucket'
          ? `create the bucket ${this.where.bucket}, or point the stage at one that exists`
          : 'check the endpoint (AWS_ENDPOINT_URL) and that the store is reachable; resume the run once it is';
    return new StageError(where, `${operation} ${where} failed: ${name}${status !== undefined ? ` (HTTP ${status})` : ''}: ${(error as Error).message}; ${advice}`, { cause: error });
  }
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || (error.$metadata.httpStatusCode === 404 && error.name !== 'NoSuchBucket');
}
