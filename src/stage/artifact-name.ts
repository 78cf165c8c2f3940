import { ArtifactNameError } from '../errors.js';
import { ATTEMPT_FOLDER_PREFIX, PARTITION_LOG } from './run-layout.js';

/**
 * Checks a filename given to `uploadToStage` / `downloadFromStage`: a flat name that stays in the
 * partition's folder. dpf already gives every partition its own folder, so a name never needs a
 * path — and a partition id (which may hold slashes) must never be put into one.
 */
export function checkArtifactName(name: unknown, operation: string): string {
  if (typeof name !== 'string' || name === '') {
    throw new ArtifactNameError(`${operation}: the filename must be a non-empty string such as "result.json"`);
  }
  if (name.includes('/') || name.includes('\\') || name === '.' || name === '..' || name.includes('\u0000')) {
    throw new ArtifactNameError(
      `${operation}: "${name}" is not a flat filename. dpf puts each partition's files in its own folder ` +
        '({runId}/{partition}/) already; use a name without "/" or "\\" such as "result.json"',
    );
  }
  if (name === PARTITION_LOG || name.startsWith(ATTEMPT_FOLDER_PREFIX)) {
    throw new ArtifactNameError(`${operation}: "${name}" is reserved by dpf for its own files; choose another name`);
  }
  if (Buffer.byteLength(name) > 200) {
    throw new ArtifactNameError(`${operation}: "${name.slice(0, 40)}…" is longer than 200 bytes; choose a shorter name`);
  }
  return name;
}
