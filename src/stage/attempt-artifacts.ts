import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactNameError, ArtifactNotFoundError, AttemptEndedError } from '../errors.js';
import type { ArtifactRef } from '../model/refs.js';
import { decodeArtifact, encodeArtifact, type ReadFunction, readArtifactFile, withTemporaryFile, type WriteFunction, writeArtifactFile } from './artifact-format.js';
import { checkArtifactName } from './artifact-name.js';
import { PACK_LIMIT_BYTES } from './artifact-pack.js';
import type { RunLayout } from './run-layout.js';
import { joinStagePath, type Stage } from './stage.js';
import { readArtifactRef } from './read-artifact.js';

/**
 * Finds the artifacts of other runs' partitions (for `downloadFromStage` with a `stagePath` or a
 * `runId`, and for readers of a run's models): run/run-indexes.ts. Each method names `operation`
 * (default `downloadFromStage`) in its errors.
 */
export interface ArtifactFinder {
  /**
   * The artifact `name` of the run partition whose folder is `folder` (`{runId}/{partition
   * folder}`, or `{runId}/{partition id}` when no partition of that run has that folder);
   * undefined when `folder` is not a partition of a run (a plain folder of the stage). Throws
   * ArtifactNotFoundError when it is one that is not DONE or has no such artifact.
   */
  find(folder: string, name: string, operation?: string): Promise<ArtifactRef | undefined>;
  /**
   * The artifact `name` of partition `partitionId` of run `runId`. Throws RunNotFoundError when
   * the stage has no such run, and ArtifactNotFoundError when the run has no such partition, the
   * partition is not DONE, or it has no artifact `name` (each message says which, and what it has).
   * Read the reference with readArtifactRef (stage/read-artifact.ts), storedRefAsFile or
   * readStoredRef (stage/stored-ref.ts).
   */
  findByPartition(runId: string, partitionId: string, name: string, operation?: string): Promise<ArtifactRef>;
}

/**
 * Where a download reads from: this attempt's own uploads (undefined), a folder of the stage, or
 * a partition of another run by its id.
 */
export type ArtifactSource = undefined | { stagePath: string } | { runId: string; partitionId: string };

/**
 * The artifacts one attempt of one partition uploads. Until the function has returned they are
 * kept by the attempt — small ones in memory for the worker's pack, others in a local file of the
 * attempt's own scratch folder — so a failed, timed-out or cancelled attempt leaves nothing on the
 * stage. Once it succeeded, {@link AttemptArtifacts.store} writes the files to the stage, each
 * under its own name if that is free (created only if absent, so no attempt ever overwrites
 * another's), else in the attempt's folder `.dpf-attempt-{token}/`. Only the partition's DONE
 * record makes them part of the run: readers find artifacts through it, never by listing.
 */
export class AttemptArtifacts {
  private readonly files = new Map<string, string>();
  private readonly packed = new Map<string, Uint8Array>();
  /** What {@link AttemptArtifacts.store} put on the stage. */
  private stored: string[] | undefined;
  private closed = false;
  /** Whether the attempt wrote to its scratch folder (most tiny partitions never do). */
  private usedScratch = false;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private readonly folder: string,
    private readonly token: string,
    /** A local folder for this worker's attempts' files. */
    private readonly scratchRoot: string,
    /** Keep small artifacts in memory for the worker's pack instead of writing files. */
    private readonly pack: boolean,
    private readonly finder: ArtifactFinder,
  ) {}

  /** This attempt's own local folder. */
  private get scratch(): string {
    return join(this.scratchRoot, this.token);
  }

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
    await mkdir(this.scratch, { recursive: true });
    this.usedScratch = true;
    const local = join(this.scratch, name);
    if (writeFunction !== undefined) await writeFunction(value, local);
    else if (bytes !== undefined) await writeFile(local, bytes);
    else await writeArtifactFile(value, name, local);
    this.assertOpen('uploadToStage');
    this.packed.delete(name);
    this.files.set(name, local);
  }

  /** The attempt's function has ended: later uploads are refused (what it uploaded is kept for {@link AttemptArtifacts.store}). */
  end(): void {
    this.closed = true;
  }

  /** The small artifacts to pack, once the attempt has succeeded. */
  takePacked(): Array<{ name: string; bytes: Uint8Array }> {
    this.closed = true;
    const packed: Array<{ name: string; bytes: Uint8Array }> = [];
    for (const [name, bytes] of this.packed) packed.push({ name, bytes });
    this.packed.clear();
    return packed;
  }

  /** Writes the attempt's files to the stage (see the class comment); where each one went. */
  async store(): Promise<ArtifactRef[]> {
    this.closed = true;
    const refs: ArtifactRef[] = [];
    if (this.files.size === 0) return refs;
    for (const [name, local] of this.files) {
      const length = (await stat(local)).size;
      let key = this.layout.artifact(this.folder, name);
      // A file too big for one conditional write (a multipart upload on S3) goes to the attempt's
      // own folder, which no other attempt writes; so does one whose name an earlier attempt
      // that was never recorded (its worker died) holds.
      if (length > this.stage.largestConditionalFile || (await this.stage.create(key, { file: local })) === undefined) {
        key = this.layout.attemptFile(this.folder, this.token, name);
        await this.stage.put(key, { file: local });
      }
      (this.stored ??= []).push(key);
      refs.push({ name, key, length });
    }
    return refs;
  }

  /**
   * Reads an artifact: this attempt's own upload of that name; with `stagePath` (a folder
   * relative to the stage root, such as another run's partition or a shared `models/`), the
   * artifact or file there; with `runId` and `partitionId`, that partition's artifact.
   */
  async download<T>(name: string, source: ArtifactSource, readFunction: ReadFunction<T> | undefined): Promise<T> {
    checkArtifactName(name, 'downloadFromStage');
    if (source === undefined) {
      const bytes = this.packed.get(name);
      if (bytes !== undefined) return readBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), name, readFunction);
      const local = this.files.get(name);
      if (local === undefined) {
        throw new ArtifactNotFoundError(`downloadFromStage: this attempt has not uploaded "${name}"; give { runId, partitionId } to read another run's partition, or stagePath for a shared file`);
      }
      return readFunction !== undefined ? await readFunction(local) : ((await readArtifactFile(local, name)) as T);
    }
    if ('runId' in source) {
      const ref = await this.finder.findByPartition(source.runId, source.partitionId, name);
      return readArtifactRef(this.stage, ref, name, `the artifact "${name}" of partition "${source.partitionId}" of run "${source.runId}"`, readFunction);
    }
    const { stagePath } = source;
    if (stagePath.split(/[\\/]/).includes('..')) {
      throw new ArtifactNameError(`downloadFromStage: stagePath "${stagePath}" must stay inside the stage; give a folder relative to its root`);
    }
    const folder = stagePath.replace(/^\/+|\/+$/g, '');
    const ref: ArtifactRef = (await this.finder.find(folder, name)) ?? (await this.plainObject(joinStagePath(folder, name)));
    return readArtifactRef(this.stage, ref, name, `"${name}" under ${stagePath}`, readFunction);
  }

  /** Deletes what {@link AttemptArtifacts.store} wrote (the attempt failed after it). */
  async unstore(): Promise<void> {
    const stored = this.stored ?? [];
    this.stored = undefined;
    await Promise.all(stored.map((key) => this.stage.delete(key).catch(() => undefined)));
  }

  /** Drops the uploads of an attempt that failed (or whose files were stored: their local copies). */
  async discard(): Promise<void> {
    this.closed = true;
    this.packed.clear();
    this.files.clear();
    if (this.usedScratch) await rm(this.scratch, { recursive: true, force: true });
  }

  private async plainObject(path: string): Promise<ArtifactRef> {
    const info = await this.stage.head(path);
    if (info === undefined) throw new ArtifactNotFoundError(`downloadFromStage: ${this.stage.describe(path)} does not exist on the stage`);
    return { name: path.slice(path.lastIndexOf('/') + 1), key: path, length: info.size };
  }

  private async forgetFile(name: string): Promise<void> {
    const local = this.files.get(name);
    if (local === undefined) return;
    this.files.delete(name);
    await rm(local, { force: true });
  }

  private assertOpen(operation: string): void {
    if (this.closed) {
      throw new AttemptEndedError(
        `${operation} was called after this attempt had ended — after its function returned (from a timer or callback that outlived it), or after it timed out or was cancelled; ` +
          'nothing was stored. Upload inside the function and await it',
      );
    }
  }
}

async function readBytes<T>(bytes: Buffer, name: string, readFunction: ReadFunction<T> | undefined): Promise<T> {
  return readFunction === undefined ? ((await decodeArtifact(bytes, name)) as T) : withTemporaryFile(bytes, name, readFunction);
}
