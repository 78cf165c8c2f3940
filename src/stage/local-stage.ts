import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { appendFile, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { Stage } from './stage.js';

/**
 * A stage in a local folder (or a shared file system mounted on every machine).
 *
 * Atomic replacement is write-to-temporary-then-rename, which POSIX file systems make atomic.
 */
export class LocalStage implements Stage {
  readonly location: string;
  readonly caseInsensitive: boolean;

  private constructor(root: string, caseInsensitive: boolean) {
    this.location = root;
    this.caseInsensitive = caseInsensitive;
  }

  /** Opens (creating when missing) a stage folder and probes whether it folds case. */
  static async open(folder: string): Promise<LocalStage> {
    const root = resolve(folder);
    try {
      await mkdir(root, { recursive: true });
    } catch (error) {
      throw new InvalidOptionError('stage', `cannot create the stage folder ${root}: ${(error as Error).message}`);
    }
    const info = await stat(root);
    if (!info.isDirectory()) throw new InvalidOptionError('stage', `${root} exists and is not a folder`);
    return new LocalStage(root, await probeCaseInsensitive(root));
  }

  /** A stage opened by another process already (a worker's view): no folder creation, no probing. */
  static attach(root: string): LocalStage {
    return new LocalStage(resolve(root), false);
  }

  /** The absolute local path of a stage path, refusing any that would leave the stage. */
  resolvePath(path: string): string {
    const absolute = resolve(this.location, path);
    if (absolute !== this.location && !absolute.startsWith(this.location + sep)) {
      throw new InvalidOptionError('path', `${path} is outside the stage ${this.location}`);
    }
    return absolute;
  }

  async read(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.resolvePath(path));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async write(path: string, data: string | Uint8Array): Promise<void> {
    const target = this.resolvePath(path);
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeCreatingFolder(temporary, data);
    try {
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  async create(path: string, data: string | Uint8Array): Promise<boolean> {
    const target = this.resolvePath(path);
    await mkdir(dirname(target), { recursive: true });
    try {
      await writeFile(target, data, { flag: 'wx' });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  async append(path: string, data: string | Uint8Array): Promise<void> {
    const target = this.resolvePath(path);
    try {
      await appendFile(target, data);
    } catch (error) {
      if (!isMissing(error)) throw error;
      await mkdir(dirname(target), { recursive: true });
      await appendFile(target, data);
    }
  }

  async size(path: string): Promise<number | undefined> {
    try {
      return (await stat(this.resolvePath(path))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async readRange(path: string, start: number, length: number): Promise<Buffer> {
    const handle = await open(this.resolvePath(path), fsConstants.O_RDONLY);
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async list(folder: string): Promise<string[]> {
    const base = this.resolvePath(folder);
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    return entries.filter((entry) => entry.isFile()).map((entry) => toStagePath(relative(this.location, join(entry.parentPath, entry.name))));
  }

  async exists(path: string): Promise<boolean> {
    try {
      await stat(this.resolvePath(path));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async remove(path: string): Promise<void> {
    await rm(this.resolvePath(path), { recursive: true, force: true });
  }

  async move(from: string, to: string): Promise<void> {
    const target = this.resolvePath(to);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.resolvePath(from), target);
  }

  async localFile(path: string): Promise<string> {
    return this.resolvePath(path);
  }

  async localFileFor(path: string): Promise<string> {
    const target = this.resolvePath(path);
    await mkdir(dirname(target), { recursive: true });
    return target;
  }

  async commitLocalFile(localPath: string, path: string): Promise<void> {
    const target = this.resolvePath(path);
    if (localPath === target) return;
    await rename(localPath, target);
  }

  async discardLocalFile(localPath: string): Promise<void> {
    await rm(localPath, { force: true });
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

async function writeCreatingFolder(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (error) {
    if (!isMissing(error)) throw error;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
  }
}

function toStagePath(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

/** Whether the file system under `root` treats names that differ only by case as one. */
async function probeCaseInsensitive(root: string): Promise<boolean> {
  const name = `.dpf-case-probe-${randomBytes(4).toString('hex')}`;
  const probe = join(root, name);
  await writeFile(probe, '');
  try {
    await stat(join(root, name.toUpperCase()));
    return true;
  } catch {
    return false;
  } finally {
    await unlink(probe).catch(() => undefined);
  }
}
