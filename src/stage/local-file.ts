import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFileError } from '../errors.js';

/**
 * The local files dpf writes outside the stage — temporary copies in `os.tmpdir()` and the
 * targets of downloads — written so that a failure (a full disk, a permission) names the file and
 * what to do, not Node's bare `ENOSPC: no space left on device, write`.
 */

/** What the file is for, which decides the advice. */
export type LocalFileUse = 'temporary' | 'download';

/** A new, empty folder in the temporary folder, `{tmpdir}/{prefix}XXXXXX`. */
export async function temporaryFolder(prefix: string): Promise<string> {
  const parent = tmpdir();
  try {
    return await mkdtemp(join(parent, prefix));
  } catch (error) {
    throw localFileError(join(parent, `${prefix}…`), error, 'temporary');
  }
}

/** Writes a local file; a failure is a {@link LocalFileError} naming it. */
export async function writeLocalFile(path: string, data: Uint8Array | string, use: LocalFileUse): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (error) {
    throw localFileError(path, error, use);
  }
}

/** A failed write of a local file as a {@link LocalFileError} that names it and says what to do. */
export function localFileError(path: string, error: unknown, use: LocalFileUse): LocalFileError {
  const cause = error as NodeJS.ErrnoException;
  const elsewhere = use === 'temporary' ? 'set TMPDIR to a folder on a disk with room' : 'download to another folder';
  const advice =
    cause.code === 'ENOSPC' || cause.code === 'EDQUOT'
      ? `the disk is full: free space there, or ${elsewhere}`
      : cause.code === 'EACCES' || cause.code === 'EPERM' || cause.code === 'EROFS'
        ? `dpf may not write there: fix the folder's permissions, or ${elsewhere}`
        : `check the folder, or ${elsewhere}`;
  const code = cause.code === undefined ? '' : `${cause.code} `;
  // Node's own text for a failed write ("ENOSPC: no space left on device, write") without the repeated code.
  const reason = (cause.message ?? String(error)).replace(/^[A-Z]+: /, '');
  return new LocalFileError(path, `writing ${path} failed: ${code}${reason}; ${advice}`, { cause: error });
}
