import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { StageDamagedError } from '../errors.js';

/**
 * An artifact's local file (see ArtifactsManager.get), opened for reading without following a
 * symbolic link: dpf writes files, never links, so a link in a stage's folder was put there by
 * someone else, and may point outside the stage. (A linked folder above the file is not looked at.)
 */
export async function openArtifactFile(path: string, name: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new StageDamagedError(path, `the artifact "${name}" on the stage is a symbolic link, not the file dpf wrote; the dashboard follows no link (it could point outside the stage): replace it with the file, or rerun the partition`);
    }
    throw error;
  }
}

/** The first `length` bytes of an artifact's file, and its size: a preview never reads a big artifact whole. */
export async function readArtifactHead(path: string, name: string, length: number): Promise<{ head: Buffer; size: number }> {
  const file = await openArtifactFile(path, name);
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(length, size));
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return { head: head.subarray(0, bytesRead), size };
  } finally {
    await file.close();
  }
}
