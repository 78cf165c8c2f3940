import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DPF } from '../dpf.js';
import { InvalidOptionError } from '../errors.js';
import type { ExecutionOptions } from '../execution-options.js';
import type { OnExistingArtifacts } from '../run/start-run.js';
import { followRun, RunInterrupts } from './follow-run.js';
import type { RunFlags } from './run-flags.js';

/** The run's options' names as `dpf run` spells them, for errors the API raises about them. */
const FLAG_OF_OPTION: Record<string, string> = {
  runId: '--run-id',
  partitionBy: '--partition-by',
  source: '--source',
  stageLocation: '--from',
  filePattern: '--pattern',
  args: '--args',
  'module.exportName': '--export',
  'executionOptions.maxRetries': '--max-retries',
  'executionOptions.timeoutMs': '--timeout-ms',
  'executionOptions.isolation': '--isolation',
  'executionOptions.availableCpus': '--concurrency',
};

/**
 * `dpf run MODULE …`: checks the flags (before any work: a wrong one creates no run), starts the
 * run, shows its progress and summary, and returns the exit code (0 only when it ends SUCCESS).
 */
export async function runCommand(modulePath: string, flags: RunFlags, stageFlag: string): Promise<number> {
  const input = checkInput(flags);
  const module = checkModule(modulePath);
  if (flags.resume === true && flags.overwrite === true) {
    throw new InvalidOptionError('--overwrite', "cannot be given with --resume: --resume keeps the run's DONE partitions and runs the rest, --overwrite replaces the run; give one of them");
  }
  const onExistingArtifacts: OnExistingArtifacts = flags.resume === true ? 'resume' : flags.overwrite === true ? 'overwrite' : 'error';
  const executionOptions: ExecutionOptions = {};
  if (flags.maxRetries !== undefined) executionOptions.maxRetries = flags.maxRetries;
  if (flags.timeoutMs !== undefined) executionOptions.timeoutMs = flags.timeoutMs;
  if (flags.isolation !== undefined) executionOptions.isolation = flags.isolation;
  if (flags.concurrency !== undefined) executionOptions.availableCpus = flags.concurrency;
  const common = { runId: flags.runId, onExistingArtifacts, executionOptions, ...(flags.args !== undefined ? { args: flags.args } : {}) };

  const interrupts = new RunInterrupts('dpf run');
  try {
    const run = await withFlagNames(async () => {
      const dpf = new DPF(flags.export === undefined ? module : { module, exportName: flags.export }, { stage: flags.stage });
      if (input.mode === 'stage') return dpf.runFromStage({ ...common, stageLocation: input.from, ...(input.pattern !== undefined ? { filePattern: input.pattern } : {}) });
      return dpf.run({ ...common, partitionBy: input.partitionBy, ...(input.source !== undefined ? { source: input.source } : {}) });
    });
    return await followRun(run, interrupts, stageFlag);
  } finally {
    interrupts.dispose();
  }
}

type RunInput = { mode: 'stage'; from: string; pattern: string | undefined } | { mode: 'dataframe'; partitionBy: string[]; source: string | undefined };

/** The run's input, from --partition-by/--source (DataFrame mode) or --from/--pattern (stage mode). */
function checkInput(flags: RunFlags): RunInput {
  const dataframe = flags.source !== undefined || flags.partitionBy !== undefined;
  if (dataframe && flags.from !== undefined) {
    const given = flags.source !== undefined ? '--source' : '--partition-by';
    throw new InvalidOptionError('--from', `cannot be given with ${given}: give --partition-by COL --source SQL (a table, one partition per distinct value) or --from DIR --pattern GLOB (one partition per file), not both`);
  }
  if (flags.pattern !== undefined && flags.from === undefined) {
    throw new InvalidOptionError('--pattern', 'chooses files under the folder --from names; give --from DIR with it (or leave --pattern out)');
  }
  if (flags.from !== undefined) return { mode: 'stage', from: flags.from, pattern: flags.pattern };
  if (!dataframe) {
    throw new InvalidOptionError('--source/--from', 'neither is given, and the run needs its input: give --partition-by COL --source SQL (one partition per distinct value of COL) or --from DIR [--pattern GLOB] (one partition per file)');
  }
  if (flags.partitionBy === undefined) throw new InvalidOptionError('--partition-by', 'is needed with --source: the column (or comma-separated columns) whose distinct values are the partitions');
  if (flags.source === undefined && flags.resume !== true) {
    throw new InvalidOptionError('--source', "is needed with --partition-by: DuckDB SQL such as \"SELECT * FROM 'sales.parquet'\" (with --resume it may be left out: the run's planned input is used)");
  }
  return { mode: 'dataframe', partitionBy: flags.partitionBy, source: flags.source };
}

function checkModule(path: string): string {
  const absolute = resolve(path);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    throw new InvalidOptionError('MODULE', `${absolute} is not a file; give the .ts, .js or .mjs module that exports the partition function`);
  }
  return absolute;
}

/** The API's errors about an option, naming the flag that gave it. */
async function withFlagNames<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof InvalidOptionError && FLAG_OF_OPTION[error.option] !== undefined) {
      const flag = FLAG_OF_OPTION[error.option]!;
      const renamed = new InvalidOptionError(flag, error.message.slice(error.option.length + 2));
      renamed.stack = error.stack;
      throw renamed;
    }
    throw error;
  }
}
