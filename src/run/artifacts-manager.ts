import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ArtifactNotFoundError } from '../errors.js';
import { type ReadFunction, readArtifactFile } from '../stage/artifact-format.js';
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
  ) {}

  /** The names of the partition's artifacts (its log and unfinished uploads left out). */
  async list(): Promise<string[]> {
    const folder = this.layout.partitionFolder(this.folder);
    const files = await this.stage.list(folder);
    return files
      .map((file) => file.path.slice(folder.length + 1))
      .filter((name) => !name.includes('/') && name !== PARTITION_LOG && !name.startsWith(STAGING_PREFIX))
      .sort();
  }

  /** Reads an artifact, by its extension's default format or with `readFunction(localPath)`. */
  async get<T = unknown>(name: string, readFunction?: ReadFunction<T>): Promise<T> {
    const local = await this.localPath(name);
    return readFunction !== undefined ? await readFunction(local) : ((await readArtifactFile(local, name)) as T);
  }

  /** Copies an artifact into a local folder (created if missing); returns the file's path. */
  async download(name: string, localDir: string): Promise<string> {
    const local = await this.localPath(name);
    const target = join(resolve(localDir), name);
    await mkdir(resolve(localDir), { recursive: true });
    await copyFile(local, target);
    return target;
  }

  private async localPath(name: string): Promise<string> {
    checkArtifactName(name, 'artifacts');
    const path = this.layout.artifact(this.folder, name);
    if (!(await this.stage.exists(path))) {
      const available = await this.list();
      throw new ArtifactNotFoundError(`artifact "${name}" does not exist in ${path}; this partition has: ${available.join(', ') || 'no artifacts'}`);
    }
    return this.stage.localFile(path);
  }
}
