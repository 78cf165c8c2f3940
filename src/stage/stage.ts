/**
 * The stage contract: what dpf asks of the place a run's bytes live. It is an object store's
 * contract, so a local folder and an S3-compatible bucket both implement it, and every piece of
 * durable state is built on it:
 *
 * - objects are written whole and read whole or by byte range; a reader sees the old content or
 *   the new one, never a mix;
 * - `create` writes an object only if it is absent (S3's `If-None-Match: *`): write-once records,
 *   numbered journal segments and the run's spec rest on it;
 * - `replace` writes an object only if it still has the version the writer read (S3's `If-Match`
 *   on the ETag): the run's lease rests on it;
 * - `list` gives the objects under a prefix in key order, with their sizes;
 * - there is no append at a byte offset and no rename: neither exists on an object store.
 *
 * Paths are relative to the stage's root, use `/`, and never hold `..` or empty segments.
 * One contract test suite (test/stage-contract.test.ts) runs every implementation through the
 * same cases, races included.
 */
export interface Stage {
  /** The stage as the user named it, resolved: an absolute folder, or `s3://bucket/prefix`. */
  readonly location: string;
  /** Whether names that differ only by case collide on this stage. */
  readonly caseInsensitive: boolean;
  /** Whether the stage is on this machine only (a folder) rather than an object store any machine reaches. */
  readonly local: boolean;
  /** A path as a user would find it: `{location}/{path}`, for messages. */
  describe(path: string): string;

  /** The whole object and its version, or undefined when it does not exist. */
  get(path: string): Promise<StageObject | undefined>;
  /** Bytes `[start, start + length)` of an object (fewer at its end), or undefined when it does not exist. */
  getRange(path: string, start: number, length: number): Promise<Buffer | undefined>;
  /** An object's size and version, or undefined when it does not exist. */
  head(path: string): Promise<StageEntryInfo | undefined>;
  /**
   * Writes an object only if none exists at `path`; its version, or undefined when another
   * object is there. An object with exactly this content counts as this write (a write whose
   * answer was lost and was sent again finds itself): writers that must tell each other apart
   * put something of their own in the content, as journal segments carry their writer's token.
   */
  create(path: string, body: StageBody): Promise<string | undefined>;
  /**
   * Replaces an object only if its version is still `expectedVersion`; the new version, or
   * undefined when the object changed or disappeared meanwhile (content equal to `body` counts
   * as this write, as for {@link Stage.create}).
   */
  replace(path: string, body: StageBody, expectedVersion: string): Promise<string | undefined>;
  /** Writes an object whatever is there (atomically: readers see the old or the new content). */
  put(path: string, body: StageBody): Promise<string>;
  /**
   * The objects under a prefix, in key order, with their sizes; only keys after `startAfter` when
   * given, and at most `limit` of them.
   */
  list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<StageEntry[]>;
  /**
   * The names of the folders directly under `prefix` (the stage's root `''`, or a path ending in
   * `/`) that hold objects, in key order — one request per thousand folders on S3 (a delimited
   * listing), however many objects they hold.
   */
  listFolders(prefix: string): Promise<string[]>;
  /** Deletes an object; nothing when it does not exist. */
  delete(path: string): Promise<void>;
  /** Deletes every object under a prefix. */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * The object as a file on this machine, for readers that want a path (DuckDB, a user's
   * `readFunction`): the file itself on a local stage, a temporary download otherwise. Undefined
   * when the object does not exist. Call `release()` when done with it.
   */
  localCopy(path: string): Promise<LocalCopy | undefined>;
  /**
   * A folder on this machine for files on their way to the stage: a local stage keeps it inside
   * itself, so they are linked into place without a copy.
   */
  readonly scratchFolder: string;
  /**
   * The largest local file `create` and `replace` take (a conditional write is one request);
   * `put` takes any size.
   */
  readonly largestConditionalFile: number;
}

/** An object's bytes and the version they have. */
export interface StageObject {
  bytes: Buffer;
  /** Changes with every write of the object (an ETag on S3). */
  version: string;
}

export interface StageEntryInfo {
  size: number;
  version: string;
}

/** An object found by {@link Stage.list}. */
export interface StageEntry {
  /** The object's path, relative to the stage root. */
  path: string;
  size: number;
}

/** What a write stores: bytes, text (UTF-8), or the content of a file on this machine. */
export type StageBody = string | Uint8Array | { file: string };

/** A stage object available as a local file until released. */
export interface LocalCopy {
  readonly path: string;
  release(): Promise<void>;
}

/** Joins stage path segments with `/`, ignoring empty ones. */
export function joinStagePath(...segments: string[]): string {
  return segments.filter((segment) => segment !== '').join('/');
}

/** The bytes of a body given as bytes or text (a file body is read by the stage itself). */
export function bodyBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body) : body;
}
