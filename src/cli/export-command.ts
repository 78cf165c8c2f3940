import { lstat, mkdir, readdir, realpath } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DPFError, ExportError } from '../errors.js';
import type { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { isTableArtifact } from '../run/results-query.js';
import { localFileError } from '../stage/local-file.js';
import { PartitionStatus } from '../status.js';
import { displayText, formatCount } from './display-text.js';

/** `dpf export`'s flags. */
export interface ExportFlags {
  out: string;
  format: 'files' | 'parquet';
  force?: boolean;
}

/** Artifacts copied at once (a stage on S3 answers each one in a round trip). */
const PARALLEL_COPIES = 8;

/**
 * `dpf export RUN --out DIR`: the DONE partitions' artifacts, as files (`DIR/{partition
 * folder}/{name}`, the partition's folder as the stage names it) or as one Parquet table per
 * artifact name (`DIR/{name without extension}.parquet`, `partition_id` first). Never writes
 * outside DIR, refuses a DIR that is not empty unless `force`, and deletes nothing. Prints what it
 * wrote; returns the exit code (1 when an artifact's table could not be written).
 */
export async function exportCommand(run: DPFRun, flags: ExportFlags, stageFlag: string): Promise<number> {
  const out = await prepareOut(flags.out, flags.force === true);
  const done = run.selectPartitions(new Set([PartitionStatus.DONE]), Infinity).details;
  const notDone = run.numPartitions - done.length;
  const left = notDone === 0 ? '' : `; ${formatCount(notDone)} partition(s) not DONE have no artifacts (\`dpf rerun ${run.runId} --failed${stageFlag}\` runs them)`;
  const code = flags.format === 'parquet' ? await exportTables(run, done, out) : await exportFiles(run, done, out);
  if (left !== '') process.stdout.write(`${left.slice(2)}\n`);
  return code;
}

async function exportFiles(run: DPFRun, done: readonly SinglePartitionDetails[], out: Root): Promise<number> {
  const jobs: Array<{ details: SinglePartitionDetails; folder: string; name: string }> = [];
  for (const details of done) {
    const folder = partitionFolder(run, details);
    for (const name of await details.artifacts.list()) jobs.push({ details, folder, name });
  }
  let next = 0;
  let bytes = 0;
  const copy = async (): Promise<void> => {
    while (next < jobs.length) {
      const { details, folder, name } = jobs[next++]!;
      await out.target(folder, name);
      const written = await details.artifacts.download(name, join(out.path, folder));
      bytes += (await lstat(written)).size;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_COPIES, jobs.length) }, copy));
  const partitions = new Set(jobs.map((job) => job.details.partitionId)).size;
  process.stdout.write(`wrote ${formatCount(jobs.length)} file(s) (${formatCount(bytes)} bytes) of ${formatCount(partitions)} partition(s) of run ${run.runId} to ${out.path}\n`);
  return 0;
}

async function exportTables(run: DPFRun, done: readonly SinglePartitionDetails[], out: Root): Promise<number> {
  // Each artifact name, with how many partitions have it.
  const names = new Map<string, number>();
  for (const details of done) for (const name of await details.artifacts.list()) names.set(name, (names.get(name) ?? 0) + 1);
  const tables = [...names.keys()].filter((name) => isTableArtifact(name));
  // Two artifacts of one stem (`rows.csv`, `rows.json`) keep their extension in their table's name.
  const stems = new Map<string, number>();
  for (const name of tables) stems.set(stem(name), (stems.get(stem(name)) ?? 0) + 1);
  let code = 0;
  let written = 0;
  for (const name of [...names.keys()].sort()) {
    if (!isTableArtifact(name)) {
      process.stdout.write(`skipped ${displayText(name)}: not a table artifact (Parquet, Arrow, CSV, TSV or JSON); --format files exports it as files\n`);
      continue;
    }
    const file = `${stems.get(stem(name))! > 1 || stem(name) === '' ? name : stem(name)}.parquet`;
    const target = await out.target('', file);
    try {
      const rows = await run.exportTable(name, target);
      written++;
      process.stdout.write(`wrote ${displayText(file)}: ${formatCount(rows)} row(s) from the ${displayText(name)} of ${formatCount(names.get(name)!)} partition(s)\n`);
    } catch (error) {
      if (!(error instanceof DPFError)) throw error;
      code = 1;
      process.stdout.write(`failed ${displayText(name)}: ${displayText(error.message)}\n`);
    }
  }
  process.stdout.write(`wrote ${formatCount(written)} table(s) of run ${run.runId} to ${out.path}\n`);
  return code;
}

function stem(name: string): string {
  return name.slice(0, name.length - extname(name).length);
}

/** A partition's folder inside its run, as the stage names it (its id encoded: no `..`, no `/` but a stage-mode id's own sub-folders). */
function partitionFolder(run: DPFRun, details: SinglePartitionDetails): string {
  return details.stagePath.slice(run.runId.length + 1);
}

/** The export folder: its real path, and a check that each file written stays inside it. */
interface Root {
  path: string;
  /** The path of `name` in `folder` under the export folder, its parent created; refused if it would lead outside it. */
  target(folder: string, name: string): Promise<string>;
}

async function prepareOut(dir: string, force: boolean): Promise<Root> {
  const path = resolve(dir);
  const entries = await readdir(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    if (error.code === 'ENOTDIR') throw new ExportError(`--out ${path} is a file, not a folder; give a folder to export into`);
    throw localFileError(path, error, 'download');
  });
  if (entries !== undefined && entries.length > 0 && !force) {
    throw new ExportError(`--out ${path} is not empty (${formatCount(entries.length)} entries); give an empty or new folder, or --force to write into it (files of the same names are replaced, nothing else is touched)`);
  }
  await mkdir(path, { recursive: true }).catch((error: unknown) => {
    throw localFileError(path, error, 'download');
  });
  const root = await realpath(path);
  return {
    path: root,
    async target(folder, name) {
      const parts = [...(folder === '' ? [] : folder.split('/')), name];
      if (parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('\\') || part.includes('\u0000')) || name.includes('/')) {
        throw new ExportError(`refusing to write ${JSON.stringify(join(folder, name))}: it is not a plain path inside ${root}`);
      }
      const target = join(root, ...parts);
      const parent = join(root, ...parts.slice(0, -1));
      await mkdir(parent, { recursive: true }).catch((error: unknown) => {
        throw localFileError(parent, error, 'download');
      });
      // A link already in the folder (--force) must not lead a file out of it.
      if (!inside(root, await realpath(parent))) throw new ExportError(`refusing to write ${target}: ${parent} leads outside ${root}`);
      const existing = await lstat(target).catch(() => undefined);
      if (existing !== undefined && !existing.isFile()) throw new ExportError(`refusing to write ${target}: it exists and is not a plain file`);
      return target;
    },
  };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}
