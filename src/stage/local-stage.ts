import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type Dirent, type Stats } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError, StageError } from '../errors.js';
import type { LocalCopy, Stage, StageBody, StageEntry, StageEntryInfo, StageObject } from './stage.js';

/** The folder inside a local stage for files on their way in, and the per-object locks. */
export const LOCAL_SCRATCH = '.dpf-tmp';
/** A lock on one object older than this belongs to a writer that died inside its few-microsecond critical section. */
const STALE_LOCK_MS = 10_000;
const LOCK_WAIT_LIMIT_MS = 60_000;

/**
 * A stage in a local folder (or a shared file system every machine mounts), on the object-store
 * contract of {@link Stage}:
 *
 * - every write goes to a temporary file in `.dpf-tmp/` first, so a reader never sees half an
 *   object and a full disk leaves nothing behind;
 * - `create` puts the file in place with `link(2)`, which fails if the name exists — one atomic
 *   create-if-absent, with no window in which a second writer can win too;
 * - `put` puts it in place with `rename(2)`, atomic replacement;
 * - `replace` compares the version and renames under a lock on that one object (a lock file made
 *   with `O_EXCL`; a lock whose holder died is broken after {@link STALE_LOCK_MS}, or at once when
 *   its process is gone from this host). Safety of a run never rests on this lock alone: it
 *   decides the lease (liveness), while commits are fenced by write-once journal slots;
 * - an object's version is its inode, modification time (nanoseconds) and size: every write
 *   makes a new file, so a version never comes back.
 */
export class LocalStage implements Stage {
  readonly location: string;
  readonly caseInsensitive: boolean;
  readonly local = true;
  readonly scratchFolder: string;
  readonly largestConditionalFile = Number.POSITIVE_INFINITY;

  private constructor(root: string, caseInsensitive: boolean) {
    this.location = root;
    this.caseInsensitive = caseInsensitive;
    this.scratchFolder = join(root, LOCAL_SCRATCH);
  }

  /** Opens (creating when missing) a stage folder and probes whether it folds case. */
  static async open(folder: string): Promise<LocalStage> {
    const root = resolve(folder);
    try {
      await mkdir(join(root, LOCAL_SCRATCH), { recursive: true });
    } catch (error) {
      throw new InvalidOptionError('stage', `cannot create the stage folder ${root}: ${(error as Error).message}`);
    }
    const info = await stat(root);
    if (!info.isDirectory()) throw new InvalidOptionError('stage', `${root} exists and is not a folder`);
    return new LocalStage(root, await probeCaseInsensitive(join(root, LOCAL_SCRATCH)));
  }

  /** A stage another process opened already (a worker's view): no probing. */
  static attach(root: string, caseInsensitive = false): LocalStage {
    return new LocalStage(resolve(root), caseInsensitive);
  }

  describe(path: string): string {
    return join(this.location, path);
  }

  /** The absolute local path of a stage path, refusing any that would leave the stage. */
  resolvePath(path: string): string {
    if (path.split('/').some((segment) => segment === '..')) throw new InvalidOptionError('path', `${path} leaves the stage ${this.location}`);
    const absolute = resolve(this.location, path);
    if (absolute !== this.location && !absolute.startsWith(this.location + sep)) {
      throw new InvalidOptionError('path', `${path} is outside the stage ${this.location}`);
    }
    return absolute;
  }

  async get(path: string): Promise<StageObject | undefined> {
    const target = this.resolvePath(path);
    try {
      const handle = await open(target, fsConstants.O_RDONLY);
      try {
        const info = await handle.stat({ bigint: true });
        const bytes = await handle.readFile();
        return { bytes, version: versionOf(info) };
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure('read', path, error);
    }
  }

  async getRange(path: string, start: number, length: number): Promise<Buffer | undefined> {
    try {
      const handle = await open(this.resolvePath(path), fsConstants.O_RDONLY);
      try {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, start);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure('read', path, error);
    }
  }

  async head(path: string): Promise<StageEntryInfo | undefined> {
    try {
      const info = await stat(this.resolvePath(path), { bigint: true });
      return { size: Number(info.size), version: versionOf(info) };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure('read', path, error);
    }
  }

  async create(path: string, body: StageBody): Promise<string | undefined> {
    const target = this.resolvePath(path);
    const temporary = await this.temporaryCopy(path, body);
    try {
      await this.linkInto(temporary, target);
      return versionOf(await stat(target, { bigint: true }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return await this.sameContent(path, temporary);
      throw this.failure('write', path, error);
    } finally {
      await unlink(temporary).catch(() => undefined);
    }
  }

  async replace(path: string, body: StageBody, expectedVersion: string): Promise<string | undefined> {
    const target = this.resolvePath(path);
    const temporary = await this.temporaryCopy(path, body);
    try {
      return await this.withObjectLock(path, async () => {
        const current = await stat(target, { bigint: true }).catch((error: unknown) => {
          if (isMissing(error)) return undefined;
          throw error;
        });
        if (current === undefined) return undefined;
        if (versionOf(current) !== expectedVersion) return await this.sameContent(path, temporary);
        const version = versionOf(await stat(temporary, { bigint: true }));
        await rename(temporary, target);
        return version;
      });
    } catch (error) {
      throw this.failure('write', path, error);
    } finally {
      await unlink(temporary).catch(() => undefined);
    }
  }

  async put(path: string, body: StageBody): Promise<string> {
    const target = this.resolvePath(path);
    const temporary = await this.temporaryCopy(path, body);
    try {
      return await this.withObjectLock(path, async () => {
        const version = versionOf(await stat(temporary, { bigint: true }));
        await this.renameInto(temporary, target);
        return version;
      });
    } catch (error) {
      throw this.failure('write', path, error);
    } finally {
      await unlink(temporary).catch(() => undefined);
    }
  }

  async list(prefix: string, options: { startAfter?: string; limit?: number } = {}): Promise<StageEntry[]> {
    // The folder holding every key with this prefix: the prefix itself when it ends at a `/`.
    const folder = prefix.endsWith('/') || prefix === '' ? prefix.replace(/\/$/, '') : prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const base = folder === '' ? this.location : this.resolvePath(folder);
    let names: string[];
    try {
      const entries = await readdir(base, { recursive: true, withFileTypes: true });
      names = entries
        .filter((entry) => entry.isFile())
        .map((entry) => toStagePath(relative(this.location, join(entry.parentPath, entry.name))))
        .filter((path) => path.startsWith(prefix) && !path.startsWith(LOCAL_SCRATCH + '/'));
    } catch (error) {
      if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw this.failure('list', prefix, error);
    }
    const startAfter = options.startAfter;
    const chosen = (startAfter === undefined ? names : names.filter((name) => byKey(name, startAfter) > 0)).sort(byKey).slice(0, options.limit ?? Infinity);
    const sizes = await Promise.all(
      chosen.map((path) =>
        stat(join(this.location, path)).then(
          (info: Stats) => info.size,
          () => -1,
        ),
      ),
    );
    // A file deleted between the listing and its stat is not there any more.
    return chosen.map((path, i) => ({ path, size: sizes[i]! })).filter((entry) => entry.size >= 0);
  }

  async listFolders(prefix: string): Promise<string[]> {
    const base = prefix === '' ? this.location : this.resolvePath(prefix.replace(/\/$/, ''));
    let entries: Dirent[];
    try {
      entries = await readdir(base, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw this.failure('list', prefix, error);
    }
    const folders = entries.filter((entry) => entry.isDirectory() && !(prefix === '' && entry.name === LOCAL_SCRATCH));
    // A folder whose objects were all deleted stays behind on a file system: it holds none.
    const holding = await Promise.all(folders.map((entry) => holdsFile(join(base, entry.name))));
    return folders.filter((_, i) => holding[i]).map((entry) => entry.name).sort(byKey);
  }

  async delete(path: string): Promise<void> {
    try {
      await this.withObjectLock(path, () => rm(this.resolvePath(path), { force: true }));
    } catch (error) {
      throw this.failure('delete', path, error);
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    try {
      if (prefix.endsWith('/')) {
        await rm(this.resolvePath(prefix.slice(0, -1)), { recursive: true, force: true });
        return;
      }
      for (const entry of await this.list(prefix)) await rm(join(this.location, entry.path), { force: true });
    } catch (error) {
      throw this.failure('delete', prefix, error);
    }
  }

  async localCopy(path: string): Promise<LocalCopy | undefined> {
    const target = this.resolvePath(path);
    if ((await this.head(path)) === undefined) return undefined;
    return { path: target, release: () => Promise.resolve() };
  }

  /** The version of the object at `path` when its content equals the file `candidate`'s, else undefined. */
  private async sameContent(path: string, candidate: string): Promise<string | undefined> {
    const [current, mine] = await Promise.all([this.get(path), readFile(candidate)]);
    return current !== undefined && Buffer.compare(current.bytes, mine) === 0 ? current.version : undefined;
  }

  private failure(operation: 'read' | 'write' | 'list' | 'delete', path: string, error: unknown): StageError {
    if (error instanceof StageError || error instanceof InvalidOptionError) return error as StageError;
    const cause = error as NodeJS.ErrnoException;
    const where = this.describe(path);
    const advice =
      cause.code === 'ENOSPC' || cause.code === 'EDQUOT'
        ? 'the disk is full: free space (or move the stage), then resume the run'
        : cause.code === 'EACCES' || cause.code === 'EPERM' || cause.code === 'EROFS'
          ? 'dpf may not write there: fix the folder\'s permissions or choose another stage'
          : 'check the stage folder';
    return new StageError(where, `${operation === 'list' ? 'listing' : `${operation === 'read' ? 'reading' : operation === 'write' ? 'writing' : 'deleting'}`} ${where} failed: ${cause.code ?? ''}${cause.code ? ' ' : ''}${cause.message}; ${advice}`, { cause: error });
  }

  /** A complete copy of the body in the scratch folder (same file system as the stage, so it can be linked in). */
  private async temporaryCopy(path: string, body: StageBody): Promise<string> {
    const temporary = join(this.scratchFolder, `${randomBytes(8).toString('hex')}.tmp`);
    try {
      await ensureFolderFor(temporary, async () => {
        if (typeof body === 'object' && !(body instanceof Uint8Array)) {
          // Linking is free and keeps the caller's file; across file systems it is a copy.
          await link(body.file, temporary).catch((error: unknown) => {
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw error;
            return copyFile(body.file, temporary);
          });
        } else {
          await writeFile(temporary, body);
        }
      });
      return temporary;
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw this.failure('write', path, error);
    }
  }

  private async linkInto(temporary: string, target: string): Promise<void> {
    await ensureFolderFor(target, () =>
      link(temporary, target).catch(async (error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code;
        // A file system without hard links: an exclusive create, then the content.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
        await writeFile(target, await readFile(temporary), { flag: 'wx' });
      }),
    );
  }

  private renameInto(temporary: string, target: string): Promise<void> {
    return ensureFolderFor(target, () => rename(temporary, target));
  }

  /** Runs `fn` holding the lock of one object against other writers of this stage (any process). */
  private async withObjectLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const lock = join(this.scratchFolder, 'locks', `${createHash('sha1').update(path).digest('hex')}.lock`);
    const token = randomBytes(8).toString('hex');
    const content = JSON.stringify({ pid: process.pid, host: hostname(), token });
    const started = Date.now();
    for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
      try {
        await ensureFolderFor(lock, () => writeFile(lock, content, { flag: 'wx' }));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      if (await breakIfStale(lock)) continue;
      if (Date.now() - started > LOCK_WAIT_LIMIT_MS) throw new StageError(this.describe(path), `the lock ${lock} on ${this.describe(path)} was held for over a minute; if no dpf process is writing this stage, delete the lock file`);
      await sleep(wait);
    }
    try {
      return await fn();
    } finally {
      // Remove our lock only: a lock broken as stale and taken by another must stay.
      const current = await readFile(lock, 'utf8').catch(() => '');
      if (current === content) await unlink(lock).catch(() => undefined);
    }
  }
}

/** Breaks a lock whose holder is gone; true when the lock is no longer in the way. */
async function breakIfStale(lock: string): Promise<boolean> {
  let text: string;
  let age: number;
  try {
    [text, age] = await Promise.all([readFile(lock, 'utf8'), stat(lock).then((info) => Date.now() - info.mtimeMs)]);
  } catch (error) {
    return isMissing(error);
  }
  let holder: { pid?: number; host?: string } = {};
  try {
    holder = JSON.parse(text) as { pid?: number; host?: string };
  } catch {
    // Half-written by a holder that died while writing it: stale once old.
  }
  const deadHere = holder.host === hostname() && holder.pid !== undefined && holder.pid !== process.pid && !processExists(holder.pid);
  if (!deadHere && age < STALE_LOCK_MS) return false;
  // Move it aside, then make sure it was the stale lock that moved and not a fresh one.
  const aside = `${lock}.broken-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lock, aside);
  } catch (error) {
    return isMissing(error);
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== text) await link(aside, lock).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return moved === text;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function versionOf(info: { ino: bigint; mtimeNs: bigint; size: bigint }): string {
  return `${info.ino.toString(36)}.${info.mtimeNs.toString(36)}.${info.size.toString(36)}`;
}

/** Keys sort as S3 lists them: by their UTF-8 bytes. */
/** Whether a folder holds a file somewhere below it (stopping at the first). */
async function holdsFile(folder: string): Promise<boolean> {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => [] as Dirent[]);
  if (entries.some((entry) => entry.isFile())) return true;
  for (const entry of entries) if (entry.isDirectory() && (await holdsFile(join(folder, entry.name)))) return true;
  return false;
}

function byKey(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Runs a file operation, creating the file's folder first when it is missing. */
async function ensureFolderFor<T>(path: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (!isMissing(error)) throw error;
    await mkdir(dirname(path), { recursive: true });
    return operation();
  }
}

function toStagePath(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

/** Whether the file system under `folder` treats names that differ only by case as one. */
async function probeCaseInsensitive(folder: string): Promise<boolean> {
  const name = `case-probe-${randomBytes(4).toString('hex')}`;
  const probe = join(folder, name);
  await writeFile(probe, '');
  try {
    await stat(join(folder, name.toUpperCase()));
    return true;
  } catch {
    return false;
  } finally {
    await unlink(probe).catch(() => undefined);
  }
}
