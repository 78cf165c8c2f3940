import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { RunLayout } from './run-layout.js';
import type { Stage } from './stage.js';

/**
 * Small artifacts and logs are packed: instead of one object per partition — a write each, then a
 * read per partition for every reader — a worker puts the small artifacts and logs of the
 * partitions it reports together into one new, write-once pack object, and each partition's record
 * in the journal says where its bytes are (offset, length, CRC-32). Readers (the artifacts
 * manager, `downloadFromStage`, `run.query`, the CLI) find them there as if they were files.
 * Artifacts written by a `writeFunction`, Parquet and CSV artifacts, and anything larger than
 * {@link PACK_LIMIT_BYTES} are objects of their own.
 */

/** Artifacts and logs up to this size are packed. */
export const PACK_LIMIT_BYTES = 64 * 1024;

/** Writes one worker's packs for one run: each write is a new object. */
export class PackWriter {
  private readonly writer = randomBytes(6).toString('hex');
  private written = 0;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
  ) {}

  /**
   * Writes the items as one pack; resolves, once it is durable, with the pack's key and where each
   * item starts, and its CRC-32 (columns, not an object per item: tiny partitions make many).
   */
  async write(items: ReadonlyArray<Uint8Array>): Promise<{ key: string; offsets: number[]; crcs: number[] }> {
    const key = this.layout.pack(this.writer, this.written++);
    const offsets: number[] = new Array(items.length);
    const crcs: number[] = new Array(items.length);
    let offset = 0;
    for (let i = 0; i < items.length; i++) {
      offsets[i] = offset;
      crcs[i] = crc32(items[i]!);
      offset += items[i]!.byteLength;
    }
    const created = await this.stage.create(key, Buffer.concat(items as Uint8Array[], offset));
    if (created === undefined) throw new Error(`the pack ${this.stage.describe(key)} already exists, written by another worker`);
    return { key, offsets, crcs };
  }
}
