import type { ArtifactRef } from '../model/refs.js';
import { decodeArtifact, type ReadFunction, readArtifactFile, withTemporaryFile } from './artifact-format.js';
import type { Stage } from './stage.js';
import { readStoredRef, storedRefAsFile } from './stored-ref.js';

/**
 * The value of a stored artifact: in the format its name's extension says, or what
 * `readFunction(localPath)` makes of it. Bytes that need no file (JSON, Arrow, text, raw) are
 * decoded in memory; Parquet and CSV, and any read function, get a local file (the object itself
 * on a local stage, else a temporary copy, removed afterwards). `what` names the artifact in
 * errors (a missing or damaged object is a StageDamagedError, see stored-ref.ts).
 */
export async function readArtifactRef<T>(stage: Stage, ref: ArtifactRef, name: string, what: string, readFunction?: ReadFunction<T>): Promise<T> {
  if (readFunction === undefined && !needsFile(name)) {
    return (await decodeArtifact(await readStoredRef(stage, ref, what), name, `${what} (${stage.describe(ref.key)})`)) as T;
  }
  if (readFunction !== undefined && ref.offset !== undefined) return withTemporaryFile(await readStoredRef(stage, ref, what), name, readFunction);
  const copy = await storedRefAsFile(stage, ref, name, what);
  try {
    return readFunction !== undefined ? await readFunction(copy.path) : ((await readArtifactFile(copy.path, name)) as T);
  } finally {
    await copy.release();
  }
}

/** Formats DuckDB reads from a file. */
function needsFile(name: string): boolean {
  return /\.(parquet|csv|tsv)$/i.test(name);
}
