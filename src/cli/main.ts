#!/usr/bin/env node
/**
 * The `dpf` command: look at runs on a stage from any shell, during or after the run.
 *
 *   dpf status RUN_ID --stage DIR            the run and a table of its partitions
 *   dpf logs RUN_ID PARTITION_ID --stage DIR the partition's log
 *   dpf artifacts RUN_ID PARTITION_ID [NAME] --stage DIR [--out DIR]
 *   dpf cancel RUN_ID --stage DIR            stop a run another process is executing
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { DPFError } from '../errors.js';
import { DPFRun } from '../run/dpf-run.js';
import { formatStatus } from './format-status.js';

const program = new Command()
  .name('dpf')
  .description('Inspect and control dpf runs stored on a stage.')
  .showHelpAfterError();

program
  .command('status')
  .description('show a run and a table of its partitions')
  .argument('<runId>', 'the run to show')
  .requiredOption('--stage <dir>', 'the stage holding the run: a folder or s3://bucket/prefix')
  .option('--status <status>', 'only partitions in this status (DONE, FAILED, …)')
  .action(async (runId: string, options: { stage: string; status?: string }) => {
    const run = await DPFRun.restoreFrom(runId, options.stage);
    process.stdout.write(formatStatus(run, await run.getPartitionDetails(), options.status?.toUpperCase()));
  });

program
  .command('logs')
  .description("print a partition's log (every attempt, with timestamps)")
  .argument('<runId>', 'the run')
  .argument('<partitionId>', 'the partition, as `dpf status` lists it')
  .requiredOption('--stage <dir>', 'the stage holding the run: a folder or s3://bucket/prefix')
  .action(async (runId: string, partitionId: string, options: { stage: string }) => {
    const run = await DPFRun.restoreFrom(runId, options.stage);
    const details = (await run.getPartitionDetails())[partitionId];
    if (details === undefined) throw new DPFError(`run "${runId}" has no partition "${partitionId}"; \`dpf status ${runId} --stage ${options.stage}\` lists them`);
    process.stdout.write(await details.logs());
  });

program
  .command('artifacts')
  .description("list a partition's artifacts, or write one out (packed ones included)")
  .argument('<runId>', 'the run')
  .argument('<partitionId>', 'the partition, as `dpf status` lists it')
  .argument('[name]', 'the artifact to print (or, with --out, to copy to a file)')
  .requiredOption('--stage <dir>', 'the stage holding the run: a folder or s3://bucket/prefix')
  .option('--out <dir>', 'copy the artifact into this folder instead of printing it')
  .action(async (runId: string, partitionId: string, name: string | undefined, options: { stage: string; out?: string }) => {
    const run = await DPFRun.restoreFrom(runId, options.stage);
    const details = (await run.getPartitionDetails())[partitionId];
    if (details === undefined) throw new DPFError(`run "${runId}" has no partition "${partitionId}"; \`dpf status ${runId} --stage ${options.stage}\` lists them`);
    if (name === undefined) {
      process.stdout.write((await details.artifacts.list()).map((artifact) => `${artifact}\n`).join(''));
    } else if (options.out !== undefined) {
      process.stdout.write(`${await details.artifacts.download(name, options.out)}\n`);
    } else {
      process.stdout.write(await details.artifacts.get(name, (path) => readFile(path)));
    }
  });

program
  .command('cancel')
  .description('stop a run; finished partitions keep their results')
  .argument('<runId>', 'the run to stop')
  .requiredOption('--stage <dir>', 'the stage holding the run: a folder or s3://bucket/prefix')
  .action(async (runId: string, options: { stage: string }) => {
    const run = await DPFRun.restoreFrom(runId, options.stage);
    await run.cancel();
    process.stdout.write(`${runId}: ${run.status}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`dpf: ${error instanceof DPFError ? error.message : String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
}
