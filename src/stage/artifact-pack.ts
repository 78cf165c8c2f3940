import { randomBytes } from 'node:crypto';
import type { RunLayout } from './run-layout.js';
import { joinStagePath, type Stage } from './stage.js';

/**
 * Small artifacts are packed: instead of one file per partition — a file create, write and
 * rename each, then one file open per partition for every reader — a worker appends the small
 * artifacts of the partitions it finished to its own pack file in one write, and each
 * partition's DONE record in the journal says where its artifacts are. Readers (the artifacts
 * manager, `downloadFromStage`, `run.query`, the CLI) find them there as if they were files.
 * Artifacts written by a `writeFunction`, Parquet and CSV artifacts, and anything larger than
 * {@link PACK_LIMIT_BYTES} stay files in the partition's folder.
 */

/** Artifacts up to this size are packed. */
export const PACK_LIMIT_BYTES = 64 * 1024;

/** Where a packed artifact's bytes are. */
export interface PackedArtifact {
  name: string;
  /** The pack file, as a stage path. */
  pack: string;
  offset: number;
  length: number;
}

/** The pack file of one worker in one run: appended to, never rewritten. */
export class PackWriter {
  private path: string;
  private size = 0;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
  ) {
    this.path = this.newPath();
  }

  /** Appends artifacts in one write; resolves, once they are durable, with where each one is. */
  async write(items: ReadonlyArray<{ name: string; bytes: Uint8Array }>): Promise<PackedArtifact[]> {
    if (items.length === 0) return [];
    const located = items.map(({ name, bytes }) => {
      const entry = { name, pack: this.path, offset: this.size, length: bytes.byteLength };
      this.size += bytes.byteLength;
      return entry;
    });
    try {
      await this.stage.append(this.path, Buffer.concat(items.map(({ bytes }) => bytes)));
    } catch (error) {
      // The file may hold part of the write: later writes go to a new one, with offsets from 0.
      this.path = this.newPath();
      this.size = 0;
      throw error;
    }
    return located;
  }

  private newPath(): string {
    return joinStagePath(this.layout.stateFolder, 'packs', `${randomBytes(8).toString('hex')}.pack`);
  }
}

/** The bytes of a packed artifact. */
export function readPacked(stage: Stage, artifact: PackedArtifact): Promise<Buffer> {
  return stage.readRange(artifact.pack, artifact.offset, artifact.length);
}
