import { stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { glob } from 'tinyglobby';
import { InputLocationError } from '../errors.js';
import { encodePartitionFolder, type FolderEncoding } from '../stage/partition-folder.js';
import type { PlannedPartition } from './partition.js';

/** What stage mode plans from. */
export interface StagePlanRequest {
  /** The input folder (path or `file:` URL). */
  stageLocation: string | URL;
  /** Glob of the files to process, relative to the input folder. */
  filePattern: string;
  /** Exactly these files (paths relative to the input folder), ignoring the pattern. */
  partitionIds: readonly string[] | undefined;
  /** The stage's own folder: never read as input, even when it lies inside the input folder. */
  stageFolder: string;
  encoding: Omit<FolderEncoding, 'keepSlashes'>;
}

/**
 * Stage mode's plan: every file under the input folder that matches the glob is one partition,
 * named by its path relative to the folder (sub-folders kept). Nothing is copied; a partition's
 * size is its file's size, so the largest files are scheduled first.
 */
export async function planStagePartitions(request: StagePlanRequest): Promise<{ location: string; partitions: PlannedPartition[] }> {
  const location = await inputFolder(request.stageLocation);
  const ids = request.partitionIds !== undefined ? await checkListedFiles(location, request.partitionIds) : await matchFiles(location, request);
  const encoding: FolderEncoding = { ...request.encoding, keepSlashes: true };
  const sizes = await Promise.all(ids.map(async (id) => (await stat(join(location, id))).size));
  const partitions = ids.map((id, i) => ({
    id,
    folder: encodePartitionFolder(id, encoding),
    size: sizes[i]!,
    input: { kind: 'file' as const, path: join(location, id) },
  }));
  return { location, partitions };
}

async function inputFolder(stageLocation: string | URL): Promise<string> {
  if (stageLocation instanceof URL ? stageLocation.protocol !== 'file:' : typeof stageLocation !== 'string' || stageLocation.trim() === '') {
    throw new InputLocationError('stageLocation must be the folder holding the files to process, e.g. "./input/"');
  }
  const location = stageLocation instanceof URL ? fileURLToPath(stageLocation) : resolve(stageLocation.startsWith('file:') ? fileURLToPath(stageLocation) : stageLocation);
  const info = await stat(location).catch(() => undefined);
  if (info === undefined) throw new InputLocationError(`stageLocation ${location} does not exist; point it at the folder holding the files to process`);
  if (!info.isDirectory()) throw new InputLocationError(`stageLocation ${location} is a file, not a folder; give its folder and a filePattern that matches it`);
  return location;
}

async function matchFiles(location: string, request: StagePlanRequest): Promise<string[]> {
  const ignore = ['**/node_modules/**'];
  const stageInside = relative(location, request.stageFolder);
  if (stageInside === '') {
    throw new InputLocationError(`stageLocation ${location} is the stage itself; keep input files in another folder`);
  }
  if (!stageInside.startsWith('..') && !isAbsolute(stageInside)) ignore.push(`${stageInside.split(sep).join('/')}/**`);
  const files = (await glob(request.filePattern, { cwd: location, onlyFiles: true, ignore, expandDirectories: false })).sort();
  if (files.length > 0) return files;
  const everything = await glob('**/*', { cwd: location, onlyFiles: true, ignore, expandDirectories: false });
  const hint =
    everything.length === 0
      ? 'the folder holds no files'
      : `it holds ${everything.length} other file(s), e.g. ${everything.slice(0, 3).join(', ')}` +
        (!request.filePattern.includes('/') && everything.some((file) => file.includes('/'))
          ? `; files in sub-folders need a pattern like "**/${request.filePattern}"`
          : '; pass a filePattern that matches them');
  throw new InputLocationError(`No file under ${location} matches filePattern "${request.filePattern}": ${hint}`);
}

async function checkListedFiles(location: string, partitionIds: readonly string[]): Promise<string[]> {
  if (!Array.isArray(partitionIds) || partitionIds.length === 0) {
    throw new InputLocationError('partitionIds is empty; list the files to run (paths relative to stageLocation) or leave it out to run every matching file');
  }
  const ids = [...new Set(partitionIds)];
  const missing: string[] = [];
  for (const id of ids) {
    if (typeof id !== 'string' || id === '' || isAbsolute(id) || id.split(/[\\/]/).includes('..')) {
      throw new InputLocationError(`partitionIds: ${JSON.stringify(id)} is not a path relative to stageLocation; use ids as the run reported them`);
    }
    const info = await stat(join(location, id)).catch(() => undefined);
    if (info === undefined || !info.isFile()) missing.push(id);
  }
  if (missing.length > 0) {
    throw new InputLocationError(`partitionIds names ${missing.length} file(s) that do not exist under ${location}: ${missing.slice(0, 5).join(', ')}`);
  }
  return ids;
}
