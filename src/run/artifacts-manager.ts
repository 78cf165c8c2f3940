import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ArtifactNotFoundError } from '../errors.js';
import { decodeArtifact, type ReadFunction, readArtifactFile, withTemporaryFile } from '../stage/artifact-format.js';
import { type PackedArtifact, readPacked } from '../stage/artifact-pack.js';
import { checkArtifactName } from '../stage/artifact-name.js';
import { PARTITION_LOG, type RunLayout, STAGING_PREFIX } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';

/**
 * The committed artifacts of one partition (Snowflake DPF's `stage_artifacts_manager`).
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
    private readonly folder: string,
    /** The partition's packed artifacts (small ones, kept in the run's pack files). */
    private readonly packed: readonly PackedArtifact[] = [],
  ) {}

  /** The names of the partition's artifacts (its log and unfinished uploads left out). */
  async list(): Promise<string[]> {
    const folder = this.layout.partitionFolder(this.folder);
    const files = (await this.stage.list(folder))
      .map((file) => file.slice(folder.length + 1))
      .filter((name) => !name.includes('/') && name !== PARTITION_LOG && !name.startsWith(STAGING_PREFIX));
    return [...new Set([...files, ...this.packed.map((artifact) => artifact.name)])].sort();
  }

  /** Reads an artifact, by its extension's default format or with `readFunction(localPath)`. */
  async get<T = unknown>(name: string, readFunction?: ReadFunction<T>): Promise<T> {
    const packed = this.findPacked(name);
    if (packed !== undefined) {
      const bytes = await readPacked(this.stage, packed);
      return readFunction !== undefined ? withTemporaryFile(bytes, name, readFunction) : ((await decodeArtifact(bytes, name)) as T);
    }
    const local = await this.localPath(name);
    return readFunction !== undefined ? await readFunction(local) : ((await readArtifactFile(local, name)) as T);
  }

  /** Copies an artifact into a local folder (created if missing); returns the file's path. */
  async download(name: string, localDir: string): Promise<string> {
    const target = join(resolve(localDir), name);
    await mkdir(resolve(localDir), { recursive: true });
    const packed = this.findPacked(name);
    if (packed !== undefined) await writeFile(target, await readPacked(this.stage, packed));
    else await copyFile(await this.localPath(name), target);
    return target;
  }

  private findPacked(name: string): PackedArtifact | undefined {
    checkArtifactName(name, 'artifacts');
    return this.packed.find((artifact) => artifact.name === name);
  }

  private async localPath(name: string): Promise<string> {
    const path = this.layout.artifact(this.folder, name);
    if (!(await this.stage.exists(path))) {
      const available = await this.list();
      throw new ArtifactNotFoundError(`artifact "${name}" does not exist in ${path}; this partition has: ${available.join(', ') || 'no artifacts'}`);
    }
    return this.stage.localFile(path);
  }
}
