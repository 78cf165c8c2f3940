import { ArtifactNameError, ArtifactNotFoundError, AttemptEndedError } from '../errors.js';
import { writeFile } from 'node:fs/promises';
import {
  decodeArtifact,
  encodeArtifact,
  type ReadFunction,
  readArtifactFile,
  withTemporaryFile,
  type WriteFunction,
  writeArtifactFile,
} from './artifact-format.js';
import { PACK_LIMIT_BYTES, type PackedArtifact, readPacked } from './artifact-pack.js';

/** Finds packed artifacts of other runs' partitions (for `downloadFromStage` with a `stagePath`). */
export interface PackedArtifactFinder {
  /** The packed artifact `name` of the run partition whose folder is `folder` (`{runId}/{partition}`). */
  find(folder: string, name: string): Promise<PackedArtifact | undefined>;
}
import { checkArtifactName } from './artifact-name.js';
import { PARTITION_LOG, type RunLayout, STAGING_PREFIX } from './run-layout.js';
import { joinStagePath, type Stage } from './stage.js';

/**
 * The artifacts one attempt of one partition uploads. They are written beside their final place
 * under a staging name and only put in place by {@link AttemptArtifacts.commit}, once the
 * function has returned: a failed, timed-out or cancelled attempt leaves nothing behind, and a
 * reader never sees a half-written artifact.
 */
export class AttemptArtifacts {
  private readonly staged = new Map<string, string>();
  private readonly packed = new Map<string, Uint8Array>();
  private closed = false;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private readonly folder: string,
    private readonly attempt: number,
    /** Keep small artifacts in memory for the worker's pack instead of writing files. */
    private readonly pack: boolean,
    private readonly runIndexes: PackedArtifactFinder,
  ) {}

  async upload(value: unknown, name: string, writeFunction?: WriteFunction): Promise<void> {
    checkArtifactName(name, 'uploadToStage');
    this.assertOpen('uploadToStage');
    const bytes = writeFunction === undefined ? await encodeArtifact(value, name) : undefined;
    this.assertOpen('uploadToStage');
    if (bytes !== undefined && this.pack && bytes.byteLength <= PACK_LIMIT_BYTES) {
      await this.forgetFile(name);
      this.packed.set(name, bytes);
      return;
    }
    const local = await this.stage.localFileFor(this.layout.stagedArtifact(this.folder, this.attempt, name));
    if (writeFunction !== undefined) await writeFunction(value, local);
    else if (bytes !== undefined) await writeFile(local, bytes);
    else await writeArtifactFile(value, name, local);
    this.assertOpen('uploadToStage');
    this.packed.delete(name);
    this.staged.set(name, local);
  }

  /** The artifacts to pack, once the attempt has succeeded. */
  takePacked(): Array<{ name: string; bytes: Uint8Array }> {
    const packed: Array<{ name: string; bytes: Uint8Array }> = [];
    for (const [name, bytes] of this.packed) packed.push({ name, bytes });
    this.packed.clear();
    return packed;
  }

  private async forgetFile(name: string): Promise<void> {
    const local = this.staged.get(name);
    if (local === undefined) return;
    this.staged.delete(name);
    await this.stage.discardLocalFile(local);
  }

  /**
   * Reads an artifact: this attempt's own upload of that name, or, with `stagePath` (a folder
   * relative to the stage root, such as another run's partition), the file or packed artifact
   * there.
   */
  async download<T>(name: string, stagePath: string | undefined, readFunction: ReadFunction<T> | undefined): Promise<T> {
    checkArtifactName(name, 'downloadFromStage');
    let bytes: Uint8Array | undefined;
    let local: string | undefined;
    let where: string;
    if (stagePath !== undefined) {
      if (stagePath.split(/[\\/]/).includes('..')) {
        throw new ArtifactNameError(`downloadFromStage: stagePath "${stagePath}" must stay inside the stage; give a folder relative to its root`);
      }
      const folder = stagePath.replace(/^\/+|\/+$/g, '');
      where = joinStagePath(folder, name);
      local = (await this.stage.exists(where)) ? await this.stage.localFile(where) : undefined;
      if (local === undefined) {
        const packed = await this.runIndexes.find(folder, name);
        if (packed !== undefined) bytes = await readPacked(this.stage, packed);
      }
    } else {
      where = this.layout.artifact(this.folder, name);
      bytes = this.packed.get(name);
      local = bytes !== undefined ? undefined : this.staged.get(name);
    }
    if (bytes !== undefined) {
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return readFunction !== undefined ? withTemporaryFile(buffer, name, readFunction) : ((await decodeArtifact(buffer, name)) as T);
    }
    if (local === undefined) throw new ArtifactNotFoundError(`downloadFromStage: ${where} does not exist on the stage ${this.stage.location}`);
    return readFunction !== undefined ? await readFunction(local) : ((await readArtifactFile(local, name)) as T);
  }

  /** Puts the uploads in place, first removing files an earlier, interrupted attempt left when `clearFolder`. */
  async commit(clearFolder: boolean): Promise<void> {
    this.closed = true;
    if (clearFolder) await this.clearStaleFiles();
    for (const [name, local] of this.staged) {
      await this.stage.commitLocalFile(local, this.layout.artifact(this.folder, name));
    }
  }

  /** Drops the uploads of a failed attempt. */
  async discard(): Promise<void> {
    this.closed = true;
    this.packed.clear();
    await Promise.all([...this.staged.values()].map((local) => this.stage.discardLocalFile(local)));
    this.staged.clear();
  }

  private async clearStaleFiles(): Promise<void> {
    const folder = this.layout.partitionFolder(this.folder);
    const mine = new Set([...this.staged.keys()].map((name) => `${STAGING_PREFIX}${this.attempt}-${name}`));
    const files = await this.stage.list(folder);
    for (const file of files) {
      const name = file.slice(folder.length + 1);
      if (name.includes('/') || name === PARTITION_LOG || mine.has(name)) continue;
      await this.stage.remove(file);
    }
  }

  private assertOpen(operation: string): void {
    if (this.closed) {
      throw new AttemptEndedError(`${operation} was called after the attempt ended (timed out, cancelled or returned); await every upload inside the function`);
    }
  }
}
