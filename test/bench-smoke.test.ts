import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

describe('npm run bench', () => {
  it('runs every workload at smoke size and prints the table (timings are not asserted)', () => {
    const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'bench/main.ts'), '--smoke'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    expect(result.status, result.stderr).toBe(0);
    const rows = result.stdout.split('\n').filter((line) => /^\| (W1|W2|W2C|O1|S1|M1|T1|Q1|W1Q|W2Q) \|/.test(line));
    expect(rows.map((row) => row.split(' | ')[0]!.slice(2))).toEqual(['W1', 'W2', 'W2C', 'O1', 'S1', 'M1', 'T1', 'Q1', 'W1Q', 'W2Q']);
    // The queue workloads measured dpf through the queue, not only their reference.
    for (const row of rows.slice(7)) expect(row, row).not.toContain('not built yet');
    // M2: training, inference and the model cache measured (a ratio each), the layer's models and predictions equal to the plain run's.
    for (const id of ['M2', 'M2 infer', 'M2 cache']) {
      const row = result.stdout.split('\n').find((line) => line.startsWith(`| ${id} |`));
      expect(row, result.stdout).toBeDefined();
      expect(row!.split(' | ')[4], row).toMatch(/^\d+\.\d+×$/);
    }
    expect(result.stdout).toMatch(/M2 done in .*µs\/model over the plain run .*equal to DuckDB's regression to (\S+)/);
    expect(Number(/equal to DuckDB's regression to (\S+)/.exec(result.stdout)![1])).toBeLessThanOrEqual(1e-9);
    // W2 (every column, and only the function's) checks its answers against DuckDB's; at smoke size they must still agree.
    for (const id of ['W2', 'W2C']) {
      const difference = new RegExp(`${id} done in .*max rel\\. diff (\\S+)`).exec(result.stdout);
      expect(difference, result.stdout).not.toBeNull();
      expect(Number(difference![1])).toBeLessThanOrEqual(1e-9);
    }
    // The peers (pandas on W1 and W2, Dask on W1 at smoke size): measured — a ratio, so they ran
    // and their answers equal DuckDB's — where Python has them, skipped with a note where not.
    for (const [workload, peer, name] of [['W1', 'pandas', 'pandas'], ['W2', 'pandas', 'pandas'], ['W1', 'dask', 'Dask']] as const) {
      const row = result.stdout.split('\n').find((line) => line.startsWith(`| ${workload} ${peer} |`));
      if (row === undefined) expect(result.stdout).toContain(`- ${workload}: ${name} peer skipped: `);
      else expect(row.split(' | ')[4], row).toMatch(/^\d+\.\d+×$/);
    }
  }, 300_000);
});
