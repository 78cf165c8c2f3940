#!/usr/bin/env node
/**
 * The `dpf` command: look at runs on a stage from any shell, during or after the run.
 *
 *   dpf runs [--json]                        the runs on the stage: status, partition counts, times
 *   dpf status RUN_ID [--json]               the run (whether its driver is gone, how to resume it)
 *                                            and a table of its first 50 partitions (--json: all, as JSON)
 *       [--status DONE,FAILED,…] [--limit N | --all]
 *   dpf logs RUN_ID PARTITION_ID             the partition's log
 *   dpf artifacts RUN_ID PARTITION_ID [NAME] its artifacts, or one of them printed (binary only
 *       [--out DIR]                          when redirected) or copied into DIR
 *   dpf run MODULE --run-id ID               run a partition function here, with a progress bar and a summary:
 *       (--partition-by COL --source SQL | --from DIR [--pattern GLOB])   exit 0 only when it ends SUCCESS
 *       [--export NAME] [--resume | --overwrite] [--args JSON] [--max-retries N] [--timeout-ms N]
 *       [--isolation process] [--concurrency N]
 *   dpf rerun RUN_ID --failed                rerun the partitions not DONE, keeping the DONE ones
 *   dpf export RUN_ID --out DIR              the DONE partitions' artifacts as files DIR/{partition}/{name},
 *       [--format files|parquet] [--force]   or one Parquet table per artifact name (with partition_id)
 *   dpf cancel RUN_ID                        stop a run another process is executing
 *   dpf worker --queue redis://…             run queue runs' partitions (and drive their runs) here,
 *       [--concurrency N] [--isolation process] until SIGTERM or Ctrl-C, which drain it
 *   dpf dashboard [--port 8610] [--host H]   a web page of the stage's runs at http://127.0.0.1:8610/
 *       [--token T]                          until Ctrl-C (another --host needs --token or DPF_DASHBOARD_TOKEN)
 *
 * Every command takes `--stage DIR` (a folder or s3://bucket/prefix); without it, the environment
 * variable DPF_STAGE, else `./stage`. A partition id shown in quotes (`"two\nlines"`: it holds
 * characters a terminal would act on) is taken as shown.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DPFError, RunNotFoundError } from '../errors.js';
import { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { restoreStageRun, stageFolders } from '../run/stage-runs.js';
import { PARTITION_STATUSES, type PartitionStatus } from '../status.js';
import { artifactOutput } from './artifact-output.js';
import { displayText, shellWord, shownId } from './display-text.js';
import { formatRuns, type ListedRun, listedRun } from './format-runs.js';
import { formatStatus } from './format-status.js';
import type { ExportFlags } from './export-command.js';
import { parseArgs, parseColumns, type RunFlags } from './run-flags.js';
import { runsJson, statusJson } from './status-json.js';
import { DEFAULT_LOCK_MS, DEFAULT_QUEUE_NAME, DEFAULT_STALLED_CHECK_MS } from '../execute/queue/queue-defaults.js';

/** Rows `dpf status` shows unless told otherwise. */
const DEFAULT_LIMIT = 50;
const DEFAULT_STAGE = './stage';

const program = new Command()
  .name('dpf')
  .description(`Inspect and control dpf runs stored on a stage (--stage, else $DPF_STAGE, else ${DEFAULT_STAGE}).`)
  .showHelpAfterError();

function stageOption(what: string): Option {
  return new Option('--stage <dir>', `the stage holding ${what}: a folder or s3://bucket/prefix`).env('DPF_STAGE').default(DEFAULT_STAGE);
}

program
  .command('runs')
  .description('list the runs on the stage: status, partition counts, start and end times')
  .addOption(stageOption('the runs'))
  .option('--json', 'print them as a JSON array, oldest first: runId, status, abandoned, waitingForDriver, numPartitions, counts (by partition status), createdAt, finishedAt (or runId and damaged for a run that cannot be read)')
  .action(async (options: { stage: string; json?: boolean }) => {
    const { location, folders } = await stageFolders(options.stage);
    const runs: ListedRun[] = [];
    // One run at a time: a run of a million partitions takes memory while it is read.
    for (const runId of folders) {
      const found = await restoreStageRun(runId, options.stage);
      if (found !== undefined) runs.push('run' in found ? listedRun(found.run) : found);
    }
    process.stdout.write(options.json === true ? runsJson(runs) : formatRuns(runs, location));
  });

program
  .command('status')
  .description('show a run — whether its driver is gone, and how to resume it — and a table of its partitions')
  .argument('<runId>', 'the run to show')
  .addOption(stageOption('the run'))
  .option('--status <statuses>', `only partitions in these statuses, comma-separated (${PARTITION_STATUSES.join(', ')})`, parseStatuses)
  .option('--limit <rows>', `show at most this many partitions (default: ${DEFAULT_LIMIT})`, parseLimit)
  .option('--all', 'show every partition')
  .option(
    '--json',
    'print the run as one JSON object (every partition unless --status or --limit): runId, status, abandoned, waitingForDriver, driverAlive, driver {pid, host, lastHeardAt}, ' +
      'numPartitions, counts (by partition status), createdAt, startedAt, finishedAt, durationMs, input, stage, queue, matching, and partitions [{id, status, attempts, startedAt, finishedAt, durationMs, rows, error {name, message}}]; absent values are null',
  )
  .action(async (runId: string, options: { stage: string; status?: Set<PartitionStatus>; limit?: number; all?: boolean; json?: boolean }, command: Command) => {
    const run = await restore(runId, command);
    if (options.json === true) {
      for (const part of statusJson(run, options.status, options.all === true ? Infinity : (options.limit ?? Infinity))) process.stdout.write(part);
      return;
    }
    const limit = options.all === true ? Infinity : (options.limit ?? DEFAULT_LIMIT);
    const abandonment = run.abandoned ? `${await run.abandonment()} (\`dpf cancel ${runId}\`)` : undefined;
    process.stdout.write(formatStatus(run, { statuses: options.status, limit }, abandonment));
  });

program
  .command('logs')
  .description("print a partition's log (every attempt, with timestamps)")
  .argument('<runId>', 'the run')
  .argument('<partitionId>', 'the partition, as `dpf status` lists it')
  .addOption(stageOption('the run'))
  .action(async (runId: string, partitionId: string, _options: unknown, command: Command) => {
    const details = findPartition(await restore(runId, command), partitionId);
    process.stdout.write(await details.logs());
  });

program
  .command('artifacts')
  .description("list a partition's artifacts, or write one out (packed ones included)")
  .argument('<runId>', 'the run')
  .argument('<partitionId>', 'the partition, as `dpf status` lists it')
  .argument('[name]', 'the artifact to print (binary ones only to a file or pipe) or, with --out, to copy')
  .addOption(stageOption('the run'))
  .option('--out <dir>', 'copy the artifact into this folder instead of printing it')
  .action(async (runId: string, partitionId: string, name: string | undefined, options: { out?: string }, command: Command) => {
    const details = findPartition(await restore(runId, command), partitionId);
    if (name === undefined) {
      process.stdout.write((await details.artifacts.list()).map((artifact) => `${displayText(artifact)}\n`).join(''));
    } else if (options.out !== undefined) {
      process.stdout.write(`${await details.artifacts.download(name, options.out)}\n`);
    } else {
      const output = artifactOutput(await details.artifacts.get(name, (path) => readFile(path)), name, details.partitionId, process.stdout.isTTY === true);
      if ('refuse' in output) throw new DPFError(output.refuse);
      process.stdout.write(output.write);
    }
  });

program
  .command('run')
  .description('run a partition function over a table (--partition-by, --source) or a folder of files (--from, --pattern), here, with a progress bar and a summary; exits 0 only when the run ends SUCCESS; Ctrl-C or SIGTERM cancels it (finished partitions keep their results)')
  .argument('<module>', 'the .ts, .js or .mjs module exporting the partition function (its default export, or --export)')
  .requiredOption('--run-id <id>', 'names the run: letters, digits, ".", "_" and "-"')
  .option('--partition-by <columns>', 'DataFrame mode: the column whose distinct values are the partitions (several: comma-separated)', parseColumns)
  .option('--source <sql>', "DataFrame mode: what to partition, as DuckDB SQL (\"SELECT * FROM 'sales.parquet'\") or a table name")
  .option('--from <dir>', 'stage mode: the folder (or s3://bucket/prefix) whose files are the partitions')
  .option('--pattern <glob>', 'stage mode: which files under --from (default: *.parquet; **/*.csv includes sub-folders)')
  .option('--export <name>', 'the named export of the module to call (default: its default export)')
  .option('--resume', "a run of this id exists: keep its DONE partitions and run the rest (as it was started: same module, input and args)")
  .option('--overwrite', 'a run of this id exists: replace it')
  .option('--args <json>', 'parameters for the function, as JSON: it reads them as context.args', parseArgs)
  .option('--max-retries <n>', 'tries after the first failure of a partition (default: 1)', parseWhole('--max-retries', 0))
  .option('--timeout-ms <ms>', 'per attempt: its signal aborts, and it fails with PartitionTimeoutError', parseWhole('--timeout-ms', 1))
  .addOption(new Option('--isolation <kind>', "'process' runs partitions in child processes, so a crash costs one attempt (default: 'thread')").choices(['thread', 'process']))
  .option('--concurrency <n>', 'partitions run at once (default: the CPUs)', parsePositive('--concurrency'))
  .addOption(stageOption('the run'))
  .action(async (module: string, options: RunFlags, command: Command) => {
    const { runCommand } = await import('./run-command.js');
    process.exitCode = await runCommand(module, options, stageHint(command));
  });

program
  .command('rerun')
  .description("rerun a run's partitions that are not DONE — FAILED, INTERNAL_ERROR, CANCELLED, PENDING — keeping the DONE ones, with the function, args and options it was made with (--failed); exits 0 only when the run ends SUCCESS")
  .argument('<runId>', 'the run')
  .option('--failed', 'rerun its partitions that are not DONE')
  .addOption(stageOption('the run'))
  .action(async (runId: string, options: { stage: string; failed?: boolean }, command: Command) => {
    if (options.failed !== true) {
      throw new DPFError(`rerun needs --failed: it reruns the partitions of run "${runId}" that are not DONE (FAILED, INTERNAL_ERROR, CANCELLED, PENDING), keeping the DONE ones — dpf rerun ${runId} --failed`);
    }
    await restore(runId, command);
    const { rerunCommand } = await import('./rerun-command.js');
    process.exitCode = await rerunCommand(runId, options.stage, stageHint(command));
  });

program
  .command('export')
  .description("write a run's results to a folder: every DONE partition's artifacts as files DIR/{partition}/{name} (--format files), or one Parquet table per artifact name, DIR/{name}.parquet, its first column partition_id (--format parquet)")
  .argument('<runId>', 'the run')
  .requiredOption('--out <dir>', 'the folder to write to: new or empty (else --force)')
  .addOption(new Option('--format <format>', "'files': the artifacts as they are; 'parquet': a table per table artifact (Parquet, Arrow, CSV, TSV, JSON)").choices(['files', 'parquet']).default('files'))
  .option('--force', 'write into a folder that is not empty (files of the same names are replaced; nothing else is touched)')
  .addOption(stageOption('the run'))
  .action(async (runId: string, options: ExportFlags, command: Command) => {
    const run = await restore(runId, command);
    const { exportCommand } = await import('./export-command.js');
    process.exitCode = await exportCommand(run, options, stageHint(command));
  });

program
  .command('cancel')
  .description('stop a run; finished partitions keep their results')
  .argument('<runId>', 'the run to stop')
  .addOption(stageOption('the run'))
  .action(async (runId: string, _options: unknown, command: Command) => {
    const run = await restore(runId, command);
    await run.cancel();
    process.stdout.write(`${runId}: ${run.status}\n`);
  });

program
  .command('worker')
  .description("run the partitions of queue runs (new DPF(module, { stage, queue })) on this machine, and drive their runs; SIGTERM or Ctrl-C drains it: running partitions finish, the rest go back to the queue")
  // Not commander's requiredOption: its error would not say that DPF_QUEUE gives the queue too (checked in the action).
  .addOption(new Option('--queue <url>', "the queue's Redis: redis://host:6379 (or rediss://)").env('DPF_QUEUE'))
  .option('--queue-name <name>', 'the queue (runs name theirs with queue: { url, name })', DEFAULT_QUEUE_NAME)
  .option('--concurrency <n>', 'partitions run at once here (default: the CPUs)', parsePositive('--concurrency'))
  .addOption(new Option('--isolation <kind>', "'thread', or 'process' for a child process per worker (a crash costs one attempt); default: each run's own").choices(['thread', 'process']))
  .option('--project <dir>', "the project the runs' modules are found in (where package.json is); default: the one the current folder is in")
  .option('--no-drive', 'only run partitions; leave driving runs to other workers')
  .option('--lock-ms <ms>', 'how long a job lock lasts: a worker silent this long is taken for dead and its partitions run elsewhere', parsePositive('--lock-ms'), DEFAULT_LOCK_MS)
  .option('--stalled-check-ms <ms>', 'how often this worker looks for jobs whose worker died', parsePositive('--stalled-check-ms'), DEFAULT_STALLED_CHECK_MS)
  .action(async (options: { queue?: string; queueName: string; concurrency?: number; isolation?: 'thread' | 'process'; project?: string; drive: boolean; lockMs: number; stalledCheckMs: number }, command: Command) => {
    if (options.queue === undefined) command.error("error: dpf worker needs the queue's Redis: give --queue redis://host:6379, or set the environment variable DPF_QUEUE");
    const { runQueueWorker } = await import('./queue-worker-command.js');
    await runQueueWorker({ ...options, queue: options.queue });
  });

program
  .command('dashboard')
  .description("serve a web page of the stage's runs — progress, partitions, logs, artifacts, cancel — until Ctrl-C")
  .addOption(stageOption('the runs'))
  .option('--port <n>', 'the port to listen on (0: any free one)', parsePort, 8610)
  .option('--host <address>', 'the address to listen on; anything but 127.0.0.1/localhost needs --token', '127.0.0.1')
  .addOption(new Option('--token <token>', 'a secret every request must carry (open the page with ?token=…)').env('DPF_DASHBOARD_TOKEN'))
  .action(async (options: { stage: string; port: number; host: string; token?: string }) => {
    const { runDashboard } = await import('./dashboard-command.js');
    await runDashboard(options);
  });

/** The run on the command's stage; a run not found on the default stage says which stage that was. */
async function restore(runId: string, command: Command): Promise<DPFRun> {
  const stage = command.opts<{ stage: string }>().stage;
  try {
    return await DPFRun.restoreFrom(runId, stage);
  } catch (error) {
    if (error instanceof RunNotFoundError && command.getOptionValueSource('stage') === 'default') {
      throw new RunNotFoundError(`${error.message} (the default stage, ${DEFAULT_STAGE}: --stage or DPF_STAGE names another)`);
    }
    throw error;
  }
}

/** ` --stage DIR` for the commands a summary suggests, unless the stage is the default one. */
function stageHint(command: Command): string {
  const stage = command.opts<{ stage: string }>().stage;
  return command.getOptionValueSource('stage') === 'cli' ? ` --stage ${shellWord(stage)}` : '';
}

/** A partition by its id, or by the id as `dpf status` shows it in quotes. */
function findPartition(run: DPFRun, argument: string): SinglePartitionDetails {
  const quoted = shownId(argument);
  const details = run.partitionDetails(argument) ?? (quoted === undefined ? undefined : run.partitionDetails(quoted));
  if (details === undefined) throw new DPFError(`run "${run.runId}" has no partition "${displayText(argument)}"; \`dpf status ${run.runId}\` lists them`);
  return details;
}

function parseStatuses(value: string): Set<PartitionStatus> {
  const statuses = new Set<PartitionStatus>();
  for (const part of value.split(',')) {
    const status = part.trim().toUpperCase() as PartitionStatus;
    if (!PARTITION_STATUSES.includes(status)) {
      throw new InvalidArgumentError(`"${part}" is not a partition status; the statuses are ${PARTITION_STATUSES.join(', ')} (several: comma-separated)`);
    }
    statuses.add(status);
  }
  return statuses;
}

function parsePositive(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError(`${flag} takes a whole number of at least 1, such as 4; not "${value}"`);
    return Number(value);
  };
}

function parsePort(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) > 65535) throw new InvalidArgumentError(`--port takes a port number from 0 (any free one) to 65535, such as 8610; not "${value}"`);
  return Number(value);
}

function parseWhole(flag: string, least: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < least) throw new InvalidArgumentError(`${flag} takes a whole number of at least ${least}, such as ${least + 2}; not "${value}"`);
    return Number(value);
  };
}

function parseLimit(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`--limit takes a whole number of rows, such as 100; not "${value}"`);
  return Number(value);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`dpf: ${error instanceof DPFError ? error.message : String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
}
