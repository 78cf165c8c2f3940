import { ArtifactNameError, ArtifactNotFoundError, AttemptEndedError } from '../errors.js';
import { type ReadFunction, readArtifactFile, type WriteFunction, writeArtifactFile } from './artifact-format.js';
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
  private closed = false;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private readonly folder: string,
    private readonly attempt: number,
  ) {}

  async upload(value: unknown, name: string, writeFunction?: WriteFunction): Promise<void> {
    checkArtifactName(name, 'uploadToStage');
    this.assertOpen('uploadToStage');
    const local = await this.stage.localFileFor(this.layout.stagedArtifact(this.folder, this.attempt, name));
    if (writeFunction !== undefined) await writeFunction(value, local);
    else await writeArtifactFile(value, name, local);
    this.assertOpen('uploadToStage');
    this.staged.set(name, local);
  }

  /**
   * Reads an artifact: from `stagePath` (a folder relative to the stage root) when given, else
   * this attempt's own upload of that name, else the partition's committed artifact.
   */
  async download<T>(name: string, stagePath: string | undefined, readFunction: ReadFunction<T> | undefined): Promise<T> {
    checkArtifactName(name, 'downloadFromStage');
    let local: string | undefined;
    let where: string;
    if (stagePath !== undefined) {
      if (stagePath.split(/[\\/]/).includes('..')) {
        throw new ArtifactNameError(`downloadFromStage: stagePath "${stagePath}" must stay inside the stage; give a folder relative to its root`);
      }
      where = joinStagePath(stagePath.replace(/^\/+|\/+$/g, ''), name);
      local = (await this.stage.exists(where)) ? await this.stage.localFile(where) : undefined;
    } else {
      where = this.layout.artifact(this.folder, name);
      local = this.staged.get(name) ?? ((await this.stage.exists(where)) ? await this.stage.localFile(where) : undefined);
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
    await Promise.all([...this.staged.values()].map((local) => this.stage.discardLocalFile(local)));
    this.staged.clear();
  }

  private async clearStaleFiles(): Promise<void> {
    const folder = this.layout.partitionFolder(this.folder);
    const mine = new Set([...this.staged.keys()].map((name) => `${STAGING_PREFIX}${this.attempt}-${name}`));
    const files = await this.stage.list(folder);
    for (const file of files) {
      const name = file.path.slice(folder.length + 1);
      if (name.includes('/') || name === PARTITION_LOG || mine.has(name)) continue;
      await this.stage.remove(file.path);
    }
  }

  private assertOpen(operation: string): void {
    if (this.closed) {
      throw new AttemptEndedError(`${operation} was called after the attempt ended (timed out, cancelled or returned); await every upload inside the function`);
    }
  }
}
