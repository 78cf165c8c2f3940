import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type BenchOptions, duckdb, median, type Result, ROOT, WORK } from '../harness.js';

/**
 * M1: one partition of about 2 GB (64 million rows of four 64-bit columns) read through
 * batches(), with the worker's heap capped at 256 MB. Measured: the peak resident memory of the
 * whole run (driver, worker and DuckDB: one process, threads), from the kernel's high-water mark.
 */
export async function m1(options: BenchOptions): Promise<Result> {
  const rows = options.smoke ? 1_000_000 : 64 * 1024 * 1024;
  const folder = await dataset(rows);
  const peaks: number[] = [];
  const times: number[] = [];
  for (let run = 0; run < Math.min(options.runs, 3); run++) {
    const { peakMb, seconds, rowsRead } = await measureInChild(folder, run);
    if (rowsRead !== rows) throw new Error(`M1: the partition read ${rowsRead} rows, not ${rows}`);
    peaks.push(peakMb);
    times.push(seconds);
  }
  const peak = median(peaks);
  return {
    id: 'M1',
    workload: `one partition of ${((rows * 32) / 2 ** 30).toFixed(1)} GB (${rows.toLocaleString('en')} rows × 4 BIGINT) via batches(), heap capped at 256 MB`,
    dpf: median(times),
    reference: undefined,
    referenceName: '—',
    figure: `peak RSS ${peak.toFixed(0)} MB, completes`,
    target: '≤ 600 MB, completes',
    met: peak <= 600,
    notes: [],
  };
}

async function dataset(rows: number): Promise<string> {
  const folder = join(WORK, 'data', `m1-${rows}`);
  const file = join(folder, 'big.parquet');
  if (!existsSync(file)) {
    await mkdir(folder, { recursive: true });
    await duckdb(`COPY (SELECT i AS a, i * 7 AS b, (hash(i) >> 1)::BIGINT AS c, (i % 1000) AS d FROM range(${rows}) t(i)) TO '${file}' (FORMAT PARQUET)`);
  }
  return folder;
}

/** Runs the partition in a fresh process, so its memory high-water mark is the run's alone. */
function measureInChild(folder: string, run: number): Promise<{ peakMb: number; seconds: number; rowsRead: number }> {
  const script = `
    import { readFileSync } from 'node:fs';
    import { DPF } from 'dpf';
    const started = performance.now();
    const dpf = new DPF(${JSON.stringify(join(ROOT, 'bench/functions/stream-rows.mjs'))}, { stage: ${JSON.stringify(join(WORK, 'stage-m1'))} });
    const run = await dpf.runFromStage({ stageLocation: ${JSON.stringify(folder)}, runId: 'm1-${run}', onExistingArtifacts: 'overwrite',
      executionOptions: { memoryLimitMb: 256, availableCpus: 1, maxRetries: 0 } });
    const status = await run.wait();
    const details = Object.values(await run.getPartitionDetails())[0];
    const rows = status === 'SUCCESS' ? (await details.artifacts.get('result.json')).rows : -1;
    const peak = Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    console.log(JSON.stringify({ peakMb: peak, seconds: (performance.now() - started) / 1000, rowsRead: rows, error: details.error }));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || line === '') return reject(new Error(`M1 child exited with ${code}: ${out}`));
      const result = JSON.parse(line) as { peakMb: number; seconds: number; rowsRead: number; error?: { message: string } };
      if (result.error !== undefined && result.error !== null) return reject(new Error(`M1 partition failed: ${result.error.message}`));
      resolve(result);
    });
  });
}
