import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StageDamagedError } from '../errors.js';
import type { StoredRef } from '../model/refs.js';
import { temporaryFolder, writeLocalFile } from './local-file.js';
import type { LocalCopy, Stage } from './stage.js';

/**
 * The one place that reads the bytes a reference points at (an artifact, a log), checking they
 * are all there and unaltered: a missing or cut-short object, or a pack whose bytes changed, is a
 * {@link StageDamagedError} naming the object and what to do — never fewer rows or other bytes.
 */

/** What to do when an artifact or log of a run is gone. */
export const REPAIR_HINT = "resume the run (onExistingArtifacts: 'resume'): partitions whose artifacts are gone run again";

export async function readStoredRef(stage: Stage, ref: StoredRef, what: string): Promise<Buffer> {
  const bytes = ref.offset === undefined ? (await stage.get(ref.key))?.bytes : await stage.getRange(ref.key, ref.offset, ref.length);
  const where = stage.describe(ref.key);
  if (bytes === undefined) throw new StageDamagedError(where, `${what} is missing: ${where} does not exist; ${REPAIR_HINT}`);
  if (bytes.length !== ref.length) {
    const reason = ref.offset === undefined ? `it holds ${bytes.length} bytes, not ${ref.length}` : `it ends before byte ${ref.offset + ref.length}`;
    throw new StageDamagedError(where, `${what} is damaged: ${where} is cut short or was replaced (${reason}); ${REPAIR_HINT}`);
  }
  if (ref.crc !== undefined && crc32(bytes) !== ref.crc) {
    throw new StageDamagedError(where, `${what} is damaged: its bytes in ${where} do not match their checksum; ${REPAIR_HINT}`);
  }
  return bytes;
}

/**
 * Whether every referenced object is on the stage, whole (by its size; one HEAD per object): an
 * attempt adopted from the session ledger must still have its artifacts.
 */
export async function refsPresent(stage: Stage, refs: readonly StoredRef[]): Promise<boolean> {
  const needed = new Map<string, number>();
  for (const ref of refs) needed.set(ref.key, Math.max(needed.get(ref.key) ?? 0, (ref.offset ?? 0) + ref.length));
  const found = await Promise.all([...needed].map(async ([key, size]) => ((await stage.head(key))?.size ?? -1) >= size));
  return found.every(Boolean);
}

/**
 * The bytes of many references at once, reading each object once however many of them it holds
 * (a results query over thousands of packed artifacts reads their few packs, not thousands of
 * ranges), with the same checks as {@link readStoredRef}. `what(i)` names reference `i` in errors.
 */
export async function readStoredRefs(stage: Stage, refs: readonly StoredRef[], what: (index: number) => string): Promise<Buffer[]> {
  const keys = [...new Set(refs.map((ref) => ref.key))];
  const objects = new Map(await Promise.all(keys.map(async (key) => [key, (await stage.get(key))?.bytes] as const)));
  return refs.map((ref, index) => {
    const object = objects.get(ref.key);
    const damaged = (reason: string): StageDamagedError => {
      const where = stage.describe(ref.key);
      return new StageDamagedError(where, `${what(index)} ${reason.replace('{where}', where)}; ${REPAIR_HINT}`);
    };
    if (object === undefined) throw damaged('is missing: {where} does not exist');
    const offset = ref.offset ?? 0;
    const bytes = object.subarray(offset, offset + ref.length);
    if (bytes.length !== ref.length || (ref.offset === undefined && object.length !== ref.length)) throw damaged('is damaged: {where} is cut short or was replaced');
    if (ref.crc !== undefined && crc32(bytes) !== ref.crc) throw damaged('is damaged: its bytes in {where} do not match their checksum');
    return bytes;
  });
}

/**
 * The referenced bytes as a local file (readers choose the format by its extension, and a stored
 * object keeps its artifact's name): the object itself (a local stage), a download, or the packed
 * bytes written out as `name`.
 */
export async function storedRefAsFile(stage: Stage, ref: StoredRef, name: string, what: string): Promise<LocalCopy> {
  if (ref.offset === undefined) {
    const info = await stage.head(ref.key);
    const where = stage.describe(ref.key);
    if (info === undefined) throw new StageDamagedError(where, `${what} is missing: ${where} does not exist; ${REPAIR_HINT}`);
    if (info.size !== ref.length) throw new StageDamagedError(where, `${what} is damaged: ${where} holds ${info.size} bytes, not ${ref.length}; ${REPAIR_HINT}`);
    const copy = await stage.localCopy(ref.key);
    if (copy === undefined) throw new StageDamagedError(where, `${what} is missing: ${where} does not exist; ${REPAIR_HINT}`);
    return copy;
  }
  return temporaryFile(await readStoredRef(stage, ref, what), name);
}

/** `bytes` as a temporary local file called `name`, deleted on release. */
export async function temporaryFile(bytes: Uint8Array, name: string): Promise<LocalCopy> {
  const folder = await temporaryFolder('dpf-artifact-');
  const path = join(folder, name);
  try {
    await writeLocalFile(path, bytes, 'temporary');
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
  return { path, release: () => rm(folder, { recursive: true, force: true }) };
}
