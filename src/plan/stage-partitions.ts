import { stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';
import { glob } from 'tinyglobby';
import { InputLocationError } from '../errors.js';
import type { PlannedPartition } from '../model/partition.js';
import type { FolderEncoding } from '../model/run-spec.js';
import { encodePartitionFolder } from '../stage/partition-folder.js';
import { isS3Location, parseS3Location } from '../stage/s3-location.js';

/** What stage mode plans from. */
export interface StagePlanRequest {
  /** The input folder (path or `file:` URL), or an S3 prefix `s3://bucket/input/`. */
  stageLocation: string | URL;
  /** Glob of the files to process, relative to the input location. */
  filePattern: string;
  /** Exactly these files (paths relative to the input location), ignoring the pattern. */
  partitionIds: readonly string[] | undefined;
  /** The stage's own location (folder or `s3://` prefix): never read as input, even inside the input location. */
  stageFolder: string;
  encoding: Omit<FolderEncoding, 'keepSlashes'>;
}

/** A file found for a partition: its id (path relative to the input location), where it is, its size. */
interface InputFile {
  id: string;
  path: string;
  size: number;
}

/**
 * Stage mode's plan: every file under the input location that matches the glob is one partition,
 * named by its path relative to the location (sub-folders kept). Nothing is copied; a partition's
 * size is its file's size, so the largest files are scheduled first. On S3 the files are listed
 * by prefix and matched with the same glob rules; each partition reads its object itself.
 */
export async function planStagePartitions(request: StagePlanRequest): Promise<{ location: string; partitions: PlannedPartition[] }> {
  const given = request.stageLocation instanceof URL && request.stageLocation.protocol === 's3:' ? request.stageLocation.href : request.stageLocation;
  const { location, files } = isS3Location(given) ? await s3Files(given as string, request) : await localFiles(request);
  const encoding: FolderEncoding = { ...request.encoding, keepSlashes: true };
  const partitions = files.map((file) => ({
    id: file.id,
    folder: encodePartitionFolder(file.id, encoding),
    size: file.size,
    input: { kind: 'file' as const, path: file.path },
  }));
  return { location, partitions };
}

async function localFiles(request: StagePlanRequest): Promise<{ location: string; files: InputFile[] }> {
  const location = await inputFolder(request.stageLocation);
  const ids = request.partitionIds !== undefined ? await checkListedFiles(location, request.partitionIds) : await matchFiles(location, request);
  const sizes = await Promise.all(ids.map(async (id) => (await stat(join(location, id))).size));
  return { location, files: ids.map((id, i) => ({ id, path: join(location, id), size: sizes[i]! })) };
}

/** The objects under an S3 prefix that the glob matches (or the listed ones), with their sizes. */
async function s3Files(url: string, request: StagePlanRequest): Promise<{ location: string; files: InputFile[] }> {
  const { bucket, prefix } = parseS3Location(url, 'stageLocation');
  const location = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  const { S3Stage } = await import('../stage/s3-stage.js');
  const input = new S3Stage({ bucket, prefix });
  // The stage itself, when it lies under the input prefix, is not input.
  const stageInside = request.stageFolder.startsWith(`${location}/`) ? request.stageFolder.slice(location.length + 1) + '/' : undefined;
  const everything = (await input.list('')).filter((entry) => stageInside === undefined || !entry.path.startsWith(stageInside));
  const sizes = new Map(everything.map((entry) => [entry.path, entry.size]));
  const urlOf = (id: string): string => `${location}/${id}`;
  if (request.partitionIds !== undefined) {
    const ids = checkIds(request.partitionIds);
    const missing = ids.filter((id) => !sizes.has(id));
    if (missing.length > 0) throw new InputLocationError(`partitionIds names ${missing.length} object(s) that do not exist under ${location}: ${missing.slice(0, 5).join(', ')}`);
    return { location, files: ids.map((id) => ({ id, path: urlOf(id), size: sizes.get(id)! })) };
  }
  const matches = picomatch(request.filePattern, { dot: false });
  const ids = everything.map((entry) => entry.path).filter((id) => !id.split('/').includes('node_modules') && matches(id));
  if (ids.length === 0) throw noMatch(location, request.filePattern, everything.map((entry) => entry.path));
  return { location, files: ids.map((id) => ({ id, path: urlOf(id), size: sizes.get(id)! })) };
}

async function inputFolder(stageLocation: string | URL): Promise<string> {
  if (stageLocation instanceof URL ? stageLocation.protocol !== 'file:' : typeof stageLocation !== 'string' || stageLocation.trim() === '') {
    throw new InputLocationError('stageLocation must be the folder holding the files to process, e.g. "./input/", or an S3 prefix, e.g. "s3://bucket/input/"');
  }
  const location = stageLocation instanceof URL ? fileURLToPath(stageLocation) : resolve(stageLocation.startsWith('file:') ? fileURLToPath(stageLocation) : stageLocation);
  const info = await stat(location).catch(() => undefined);
  if (info === undefined) throw new InputLocationError(`stageLocation ${location} does not exist; point it at the folder holding the files to process`);
  if (!info.isDirectory()) throw new InputLocationError(`stageLocation ${location} is a file, not a folder; give its folder and a filePattern that matches it`);
  return location;
}

async function matchFiles(location: string, request: StagePlanRequest): Promise<string[]> {
  const ignore = ['**/node_modules/**'];
  if (!isS3Location(request.stageFolder)) {
    const stageInside = relative(location, request.stageFolder);
    if (stageInside === '') {
      throw new InputLocationError(`stageLocation ${location} is the stage itself; keep input files in another folder`);
    }
    if (!stageInside.startsWith('..') && !isAbsolute(stageInside)) ignore.push(`${stageInside.split(sep).join('/')}/**`);
  }
  const files = (await glob(request.filePattern, { cwd: location, onlyFiles: true, ignore, expandDirectories: false })).sort();
  if (files.length > 0) return files;
  throw noMatch(location, request.filePattern, await glob('**/*', { cwd: location, onlyFiles: true, ignore, expandDirectories: false }));
}

function noMatch(location: string, filePattern: string, everything: readonly string[]): InputLocationError {
  const hint =
    everything.length === 0
      ? 'the folder holds no files'
      : `it holds ${everything.length} other file(s), e.g. ${everything.slice(0, 3).join(', ')}` +
        (!filePattern.includes('/') && everything.some((file) => file.includes('/'))
          ? `; files in sub-folders need a pattern like "**/${filePattern}"`
          : '; pass a filePattern that matches them');
  return new InputLocationError(`No file under ${location} matches filePattern "${filePattern}": ${hint}`);
}

function checkIds(partitionIds: readonly string[]): string[] {
  if (!Array.isArray(partitionIds) || partitionIds.length === 0) {
    throw new InputLocationError('partitionIds is empty; list the files to run (paths relative to stageLocation) or leave it out to run every matching file');
  }
  const ids = [...new Set(partitionIds)];
  for (const id of ids) {
    if (typeof id !== 'string' || id === '' || isAbsolute(id) || id.split(/[\\/]/).includes('..')) {
      throw new InputLocationError(`partitionIds: ${JSON.stringify(id)} is not a path relative to stageLocation; use ids as the run reported them`);
    }
  }
  return ids;
}

async function checkListedFiles(location: string, partitionIds: readonly string[]): Promise<string[]> {
  const ids = checkIds(partitionIds);
  const missing: string[] = [];
  for (const id of ids) {
    const info = await stat(join(location, id)).catch(() => undefined);
    if (info === undefined || !info.isFile()) missing.push(id);
  }
  if (missing.length > 0) {
    throw new InputLocationError(`partitionIds names ${missing.length} file(s) that do not exist under ${location}: ${missing.slice(0, 5).join(', ')}`);
  }
  return ids;
}
