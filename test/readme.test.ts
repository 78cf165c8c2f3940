import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { S3Stage, s3ClientConfig } from '../src/stage/s3-stage.js';
import { ROOT, tempDir } from './helpers.js';
import { startS3Server } from './support/s3-test-server.js';

describe('the README', () => {
  it('starts with exactly the two quick-start commands', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const quickStart = readme.split('## Quick start')[1]!.split('```sh\n')[1]!.split('```')[0]!;
    expect(quickStart.trim().split('\n')).toEqual(['npm install && npm start', 'npm test']);
  });

  it('shows the quick-start example files exactly as they are, and they run', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    for (const file of ['process.ts', 'run.ts', 'dataframe.ts', 'to-database.ts']) {
      const source = await readFile(join(ROOT, 'examples/quickstart', file), 'utf8');
      expect(readme, `README shows examples/quickstart/${file}`).toContain('```ts\n' + source + '```');
    }
    const cwd = await tempDir();
    const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/quickstart/run.ts')], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('SUCCESS');
    expect(lines[1]).toBe('3 done, 0 failed');
    expect(result.stdout).toContain("{ store: 'berlin.csv', rows: 100, total: 7425 }");
    expect(result.stdout).toMatch(/\[attempt 1\] \[log\] read 100 rows/);

    const dataframe = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/quickstart/dataframe.ts')], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(dataframe.status, dataframe.stderr).toBe(0);
    expect(dataframe.stdout).toContain("{ partition_id: 'store-2', rows: 100, total: 22575 }");
    expect(dataframe.stdout).toContain("{ store: 'store-0', days: 100n }");
  });
});

describe('the README\'s S3 example', () => {
  it('runs against an S3-compatible server, configured by the standard AWS environment', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const source = await readFile(join(ROOT, 'examples/s3/run.ts'), 'utf8');
    expect(readme, 'README shows examples/s3/run.ts').toContain('```ts\n' + source + '```');
    const server = await startS3Server();
    try {
      await server.createBucket('readme-bucket');
      const input = new S3Stage({ bucket: 'readme-bucket', prefix: 'input' }, new S3Client({ ...s3ClientConfig(server.env), credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }));
      for (const store of ['berlin', 'lisbon', 'oslo']) {
        const rows = Array.from({ length: 100 }, (_, i) => `${i},${(i * 1.5).toFixed(2)}`);
        await input.put(`${store}.csv`, ['day,amount', ...rows].join('\n'));
      }
      const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/s3/run.ts')], {
        cwd: await tempDir(),
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ...server.env, DPF_BUCKET: 'readme-bucket' },
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout.split('\n')[0]).toBe('SUCCESS');
      expect(result.stdout).toContain("{ store: 'berlin.csv', rows: 100, total: 7425 }");
    } finally {
      await server.stop();
    }
  });
});

describe('npm start', () => {
  it('fits a delay model per airport and agrees with DuckDB', async () => {
    const cwd = await tempDir();
    const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/main.ts')], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Status: SUCCESS — 229 airports done, 0 failed/);
    expect(result.stdout).toMatch(/All 229 models agree with DuckDB's avg and regr_slope/);
  });
});
