/**
 * Where a run's bytes live. Paths are relative to the stage's root and always use `/`.
 *
 * The local folder is the one implementation today; an S3-compatible store plugs in here. The
 * interface is kept to what both can do: whole-object reads and atomic replacing writes, an append
 * (a real append on a file system; a new numbered object on S3), listing by prefix, and moving
 * local files in and out.
 */
export interface Stage {
  /** The stage as the user named it, resolved: an absolute folder, or `s3://bucket/prefix`. */
  readonly location: string;
  /** Whether names that differ only by case collide on this stage. */
  readonly caseInsensitive: boolean;
  /** The whole content of a file, or undefined when it does not exist. */
  read(path: string): Promise<Buffer | undefined>;
  /** Writes a file so a reader sees the old content or the new one, never a mix. */
  write(path: string, data: string | Uint8Array): Promise<void>;
  /** Creates a file only if it does not exist yet; false when it already did. */
  create(path: string, data: string | Uint8Array): Promise<boolean>;
  /** Adds to the end of a file, creating it when missing. */
  append(path: string, data: string | Uint8Array): Promise<void>;
  /** The size of a file, or undefined when it does not exist. */
  size(path: string): Promise<number | undefined>;
  /** Bytes `[start, start + length)` of a file (fewer at its end). */
  readRange(path: string, start: number, length: number): Promise<Buffer>;
  /** The paths (relative to the stage root) of every file under a folder, recursively. */
  list(folder: string): Promise<string[]>;
  /** Whether a file or folder exists. */
  exists(path: string): Promise<boolean>;
  /** Deletes a file or a whole folder; nothing when it does not exist. */
  remove(path: string): Promise<void>;
  /** Moves a file or folder; fails when the target exists (a folder target must be absent). */
  move(from: string, to: string): Promise<void>;
  /**
   * A local file path where the content of `path` can be read, downloading it first when the
   * stage is remote.
   */
  localFile(path: string): Promise<string>;
  /**
   * A local path to write the future content of `path` to (its folder exists);
   * {@link Stage.commitLocalFile} puts it in place, {@link Stage.discardLocalFile} drops it.
   */
  localFileFor(path: string): Promise<string>;
  /** Puts a file written at a {@link Stage.localFileFor} path in place under `path`, replacing what was there. */
  commitLocalFile(localPath: string, path: string): Promise<void>;
  /** Deletes a file written at a {@link Stage.localFileFor} path without putting it in place. */
  discardLocalFile(localPath: string): Promise<void>;
}

/** Joins stage path segments with `/`, ignoring empty ones. */
export function joinStagePath(...segments: string[]): string {
  return segments.filter((segment) => segment !== '').join('/');
}
