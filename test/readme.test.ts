import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { S3Stage, s3ClientConfig } from '../src/stage/s3-stage.js';
import { DPF, RunStatus } from 'dpf';
import { ROOT, tempDir, writeFiles, writeModule } from './helpers.js';
import { startS3Server } from './support/s3-test-server.js';
import { startWorker } from './support/queue-workers.js';
import { startRedisServer } from './support/redis-server.js';

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

    // Run again over the same stage ('overwrite'): the database keeps what the first run wrote,
    // and the example's function replaces its partition's rows rather than adding them again.
    const again = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/quickstart/dataframe.ts')], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain("{ store: 'store-0', days: 100n }");
  });
});

describe("the README's many-models example", () => {
  it('is shown as it is, and trains, inspects, scores, retrains and scores ONNX models on stocks.csv', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    for (const file of ['train.ts', 'score.ts', 'main.ts', 'onnx.ts']) {
      const source = await readFile(join(ROOT, 'examples/many-models', file), 'utf8');
      expect(readme, `README shows examples/many-models/${file}`).toContain('```ts\n' + source + '```');
    }
    const cwd = await tempDir();
    const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/many-models/main.ts')], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('training: SUCCESS');
    expect(result.stdout).toMatch(/trend lines of 5 symbols equal DuckDB's regr_slope\/regr_intercept: true/);
    expect(result.stdout).toContain('scoring: SUCCESS');
    // Twelve held-out months per symbol, each scored by the first training run's model.
    for (const symbol of ['AAPL', 'AMZN', 'GOOG', 'IBM', 'MSFT']) expect(result.stdout).toMatch(new RegExp(`'${symbol}' +│ 12 +│ [0-9.]+ +│ 'stocks-train'`));
    expect(result.stdout).toMatch(/GOOG: 'stocks-retrain'/);
    expect(result.stdout).toMatch(/AAPL: 'stocks-train'/);
    expect(result.stdout).toContain('ONNX scoring: SUCCESS (60 predictions)');
  });
});

describe('the README\'s reference', () => {
  it('names the columns the view `partitions` of run.query really has', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const bullet = readme.split('- **`run.query(sql, views)`**')[1]!.split('\n- ')[0]!;
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n' });
    const run = await new DPF(await writeModule(dir, 'await data.toArrow();'), { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'columns', filePattern: '*.csv' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const columns = (await run.query('SELECT * FROM partitions', {})).schema.fields.map((field) => field.name);
    expect(columns.length).toBeGreaterThan(0);
    for (const column of columns) expect(bullet, `the README's run.query bullet names the column ${column}`).toContain('`' + column + '`');
  });

  it("gives filePattern's default, the one runFromStage uses", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain("`filePattern` defaults to `'*.parquet'`");
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.parquet': 'not read', 'b.csv': 'x\n1\n', 'sub/c.parquet': 'not read' });
    const run = await new DPF(await writeModule(dir, ''), { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'default-pattern' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(Object.keys(await run.getPartitionDetails())).toEqual(['a.parquet']);
  });

  it("says what 'overwrite' does not undo: rows written through withSession", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const decision = readme.split("- **`'resume'`**")[1]!.split('\n- ')[0]!;
    expect(decision).toMatch(/`'overwrite'`[^]*rows[^]*`withSession`[^]*stay in\s+the database/);
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

describe('Scale out', () => {
  it('runs the queue example on two dpf worker processes', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const source = await readFile(join(ROOT, 'examples/queue/submit.ts'), 'utf8');
    expect(readme, 'README shows examples/queue/submit.ts').toContain('```ts\n' + source + '```');
    const redis = await startRedisServer();
    try {
      await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
      const dir = await tempDir();
      const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'examples/queue/submit.ts')], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, DPF_QUEUE: redis.url, DPF_STAGE: join(dir, 'stage') },
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout.split('\n').slice(0, 2)).toEqual(['submitted store-sales-queue', 'SUCCESS']);
      expect(result.stdout).toContain("{ store: 'oslo.csv', rows: 100, total: 7425 }");
    } finally {
      await redis.stop();
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
