import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ArtifactNotFoundError } from '../errors.js';
import type { ArtifactRef } from '../model/refs.js';
import type { ReadFunction } from '../stage/artifact-format.js';
import { checkArtifactName } from '../stage/artifact-name.js';
import { localFileError, writeLocalFile } from '../stage/local-file.js';
import { readArtifactRef } from '../stage/read-artifact.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { readStoredRef, storedRefAsFile } from '../stage/stored-ref.js';

/**
 * The artifacts of one partition's DONE attempt (Snowflake DPF's `stage_artifacts_manager`), as
 * its record in the journal lists them — packed or files of their own, read the same way. An
 * artifact that is listed but gone from the stage is a StageDamagedError naming the file.
 *
 * @example
 * ```ts
 * const details = (await run.getPartitionDetails())['ATL'];
 * console.log(await details.artifacts.list());          // ['model.json']
 * const model = await details.artifacts.get('model.json');
 * await details.artifacts.download('model.json', './models/ATL');
 * ```
 */
export class ArtifactsManager {
  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private readonly partitionId: string,
    private readonly refs: readonly ArtifactRef[],
  ) {}

  /** The names of the partition's artifacts (none unless it is DONE). */
  async list(): Promise<string[]> {
    return this.refs.map((ref) => ref.name).sort();
  }

  /** @internal Each artifact's name and size in bytes, sorted by name (the dashboard lists them so). */
  sizes(): Array<{ name: string; bytes: number }> {
    return this.refs.map((ref) => ({ name: ref.name, bytes: ref.length })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Reads an artifact, by its extension's default format or with `readFunction(localPath)`. */
  async get<T = unknown>(name: string, readFunction?: ReadFunction<T>): Promise<T> {
    return readArtifactRef(this.stage, this.find(name), name, this.what(name), readFunction);
  }

  /** Copies an artifact into a local folder (created if missing); returns the file's path. */
  async download(name: string, localDir: string): Promise<string> {
    const ref = this.find(name);
    const target = join(resolve(localDir), name);
    try {
      await mkdir(resolve(localDir), { recursive: true });
    } catch (error) {
      throw localFileError(resolve(localDir), error, 'download');
    }
    if (ref.offset !== undefined) {
      await writeLocalFile(target, await readStoredRef(this.stage, ref, this.what(name)), 'download');
      return target;
    }
    const copy = await storedRefAsFile(this.stage, ref, name, this.what(name));
    try {
      await copyFile(copy.path, target).catch((error: unknown) => {
        throw localFileError(target, error, 'download');
      });
    } finally {
      await copy.release();
    }
    return target;
  }

  private find(name: string): ArtifactRef {
    checkArtifactName(name, 'artifacts');
    const ref = this.refs.find((artifact) => artifact.name === name);
    if (ref === undefined) {
      throw new ArtifactNotFoundError(
        `partition "${this.partitionId}" of run "${this.layout.runId}" has no artifact "${name}"; it has: ${this.refs.map((artifact) => artifact.name).join(', ') || 'no artifacts'}`,
      );
    }
    return ref;
  }

  private what(name: string): string {
    return `the artifact "${name}" of partition "${this.partitionId}" of run "${this.layout.runId}"`;
  }
}
