import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DPF, type ExecutionOptions, PartitionStatus, RunStatus, SessionDatabaseError } from 'dpf';
import { describe, expect, it } from 'vitest';
import { duckdb, listFiles, POSTGRES_URL, postgres, tempDir, uniqueName, writeFiles, writeModule } from './helpers.js';

/** 8 partitions (k0…k7) of 25 rows each. */
const SOURCE = "SELECT 'k' || (i % 8) AS k, i AS v, i * 0.5::DOUBLE AS w FROM range(200) t(i)";

async function runWithSessions(body: string, options: { sessionDatabase?: string; executionOptions?: ExecutionOptions } = {}) {
  const dir = await tempDir();
  const module = await writeModule(dir, body);
  const stage = join(dir, 'stage');
  const dpf = new DPF(module, { stage, ...(options.sessionDatabase !== undefined ? { sessionDatabase: options.sessionDatabase } : {}) });
  const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'sessions', executionOptions: { retryBackoffMs: 0, availableCpus: 4, ...options.executionOptions } });
  const status = await run.wait();
  return { dir, stage, run, status, details: await run.getPartitionDetails() };
}

/** Appends the partition's rows to `table` and reads its own count back inside the transaction. */
const APPEND = (table: string) => `
  const rows = await data.toArrow();
  const seen = await context.withSession(async (session) => {
    const appended = await session.append(${JSON.stringify(table)}, rows);
    const [{ n }] = await session.query('SELECT count(*) AS n FROM ${table} WHERE k = $1', [context.partitionKey]);
    return { dialect: session.dialect, appended, n: Number(n) };
  });
  await context.uploadToStage(seen, 'seen.json');
`;

/** Appends, then fails on the first attempt: only the second attempt's rows may remain. */
const APPEND_THEN_FAIL_ONCE = (table: string) => `
  await context.withSession((session) => session.append(${JSON.stringify(table)}, [{ k: context.partitionKey, attempt: context.attempt }]));
  if (context.attempt === 1) throw new Error('fails after writing');
`;

describe('context.withSession on the embedded DuckDB file', () => {
  it('lets many partitions append to one table at once, each reading its own writes', async () => {
    const { status, stage, details } = await runWithSessions(APPEND('copied'));
    expect(status).toBe(RunStatus.SUCCESS);
    expect(await details['k3']!.artifacts.get('seen.json')).toEqual({ dialect: 'duckdb', appended: 25, n: 25 });
    const rows = await duckdb<{ n: bigint; keys: bigint; total: bigint }>(
      `ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); SELECT count(*) AS n, count(DISTINCT k) AS keys, sum(v) AS total FROM s.copied`,
    );
    expect(rows).toEqual([{ n: 200n, keys: 8n, total: 19900n }]);
  });

  it('rolls back the writes of an attempt that fails, keeping the retry\'s', async () => {
    const { status, stage } = await runWithSessions(APPEND_THEN_FAIL_ONCE('attempts'), { executionOptions: { maxRetries: 1 } });
    expect(status).toBe(RunStatus.SUCCESS);
    const rows = await duckdb(`ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); SELECT attempt, count(*) AS n FROM s.attempts GROUP BY attempt`);
    expect(rows).toEqual([{ attempt: 2, n: 8n }]);
  });

  it('works from child processes too, and rolls back the writes of a worker that dies', async () => {
    const body = `
      await context.withSession((session) => session.append('deaths', [{ k: context.partitionKey, attempt: context.attempt }]));
      if (context.partitionKey === 'k5' && context.attempt === 1) process.exit(9);
    `;
    const { status, stage, details } = await runWithSessions(body, { executionOptions: { isolation: 'process', maxRetries: 1 } });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(details['k5']).toMatchObject({ status: PartitionStatus.DONE, attempts: 2 });
    const rows = await duckdb<{ k: string; attempt: number }>(`ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); SELECT k, attempt FROM s.deaths ORDER BY k`);
    expect(rows).toHaveLength(8);
    expect(rows.find((row) => row.k === 'k5')).toEqual({ k: 'k5', attempt: 2 });
  });

  it('reports a SQL error to the function as a failure of its attempt', async () => {
    const { details } = await runWithSessions(`await context.withSession((session) => session.query('SELEC 1'));`, { executionOptions: { maxRetries: 0 } });
    expect(details['k0']).toMatchObject({ status: PartitionStatus.FAILED, error: { message: expect.stringContaining('syntax error') } });
  });
});

describe('context.withSession on PostgreSQL (needs PostgreSQL on 127.0.0.1:5432)', () => {
  it('lets many partitions COPY into one table at once, creating it once', async () => {
    await postgres('SELECT 1'); // says clearly when the server is not there
    const table = uniqueName('dpf_copied');
    try {
      const { status, details } = await runWithSessions(APPEND(table), { sessionDatabase: POSTGRES_URL });
      expect(status).toBe(RunStatus.SUCCESS);
      expect(await details['k6']!.artifacts.get('seen.json')).toEqual({ dialect: 'postgres', appended: 25, n: 25 });
      expect(await postgres(`SELECT count(*)::int AS n, count(DISTINCT k)::int AS keys, sum(v)::bigint AS total FROM ${table}`)).toEqual([
        { n: 200, keys: 8, total: '19900' },
      ]);
      const columns = await postgres<{ column_name: string; data_type: string }>(
        'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
        [table],
      );
      expect(columns).toEqual([
        { column_name: 'k', data_type: 'text' },
        { column_name: 'v', data_type: 'bigint' },
        { column_name: 'w', data_type: 'double precision' },
      ]);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('keeps one small pool per worker across runs, not a new one per run', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_pool');
    const dir = await tempDir();
    // Named connections: other tests' dpf connections to the same server are not counted.
    const url = `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}application_name=${table}`;
    const dpf = new DPF(await writeModule(dir, APPEND(table)), { stage: join(dir, 'stage'), sessionDatabase: url });
    try {
      for (let run = 0; run < 4; run++) {
        const handle = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: `pool-${run}`, executionOptions: { availableCpus: 2 } });
        expect(await handle.wait()).toBe(RunStatus.SUCCESS);
      }
      // Two workers with at most 4 connections each, whatever the number of runs.
      const [connections] = await postgres<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [table]);
      expect(connections!.n).toBeLessThanOrEqual(8);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('commits an attempt\'s transaction only when the attempt succeeds', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_attempts');
    try {
      const { status } = await runWithSessions(APPEND_THEN_FAIL_ONCE(table), { sessionDatabase: POSTGRES_URL, executionOptions: { maxRetries: 1 } });
      expect(status).toBe(RunStatus.SUCCESS);
      expect(await postgres(`SELECT attempt::int, count(*)::int AS n FROM ${table} GROUP BY attempt`)).toEqual([{ attempt: 2, n: 8 }]);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});

describe('the session database is checked before any work', () => {
  it('refuses a DuckDB file another DuckDB instance of this process has open: two instances lose each other\'s writes', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const file = join(stage, 'dpf.duckdb');
    await mkdir(stage, { recursive: true });
    const dpf = new DPF(await writeModule(dir, APPEND('copied')), { stage });
    const mine = await DuckDBInstance.create(file);
    try {
      const refused = dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'shared' });
      await expect(refused).rejects.toBeInstanceOf(SessionDatabaseError);
      await expect(refused).rejects.toThrow(`The session database ${file} is open in this process by another DuckDB instance`);
      await expect(refused).rejects.toThrow(/Close that instance \(closeSync\(\)\) before the run, and open it again once run\.wait\(\) has returned/);
      const fromStage = dpf.runFromStage({ stageLocation: dir, filePattern: '*.mjs', runId: 'shared' });
      await expect(fromStage).rejects.toBeInstanceOf(SessionDatabaseError);
      expect((await listFiles(stage)).filter((path) => path.startsWith('shared/'))).toEqual([]);
    } finally {
      mine.closeSync();
    }
    // Closed, the file is dpf's: every row lands.
    const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'shared' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await duckdb(`ATTACH '${file}' AS s (READ_ONLY); SELECT count(*) AS n FROM s.copied`)).toEqual([{ n: 200n }]);
  });

  it('fails the attempts that would write when such an instance is opened after the run started', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const file = join(stage, 'dpf.duckdb');
    const go = join(dir, 'go');
    // Each partition waits for the barrier, then writes: the file is opened by the test in between.
    const body = `
      while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((resolve) => setTimeout(resolve, 5));
      await context.withSession((session) => session.append('late', [{ k: context.partitionKey }]));
    `;
    const dpf = new DPF(await writeModule(dir, body, { prelude: "import fs from 'node:fs';" }), { stage });
    const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'late', executionOptions: { maxRetries: 0, availableCpus: 2 } });
    const mine = await DuckDBInstance.create(file);
    try {
      await writeFiles(dir, { go: '' });
      expect(await run.wait()).toBe(RunStatus.FAILURE);
      for (const details of Object.values(await run.getPartitionDetails())) {
        expect(details).toMatchObject({ status: PartitionStatus.FAILED, error: { name: 'SessionDatabaseError', message: expect.stringContaining(`The session database ${file} is open in this process by another DuckDB instance`) } });
      }
    } finally {
      mine.closeSync();
    }
  });

  it('refuses a PostgreSQL database that does not exist with one error, leaving no run behind (needs PostgreSQL on 127.0.0.1:5432)', async () => {
    await postgres('SELECT 1');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, APPEND('never'));
    const missing = POSTGRES_URL.replace(/\/[^/?]+(\?|$)/, '/does_not_exist$1');
    const dpf = new DPF(module, { stage, sessionDatabase: missing });
    for (const start of [() => dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'pg' }), () => dpf.runFromStage({ stageLocation: dir, filePattern: '*.mjs', runId: 'pg' })]) {
      const refused = start();
      await expect(refused).rejects.toBeInstanceOf(SessionDatabaseError);
      await expect(refused).rejects.toThrow(/^The session database \(PostgreSQL postgres:\/\/\S+\/does_not_exist\) cannot be used: database "does_not_exist" does not exist; check sessionDatabase/);
    }
    expect(await listFiles(stage)).toEqual([]);
    // No half-made run is left in the way: the same runId starts with a database that is there.
    const table = uniqueName('dpf_after');
    try {
      const run = await new DPF(await writeModule(dir, APPEND(table), { name: 'after.mjs' }), { stage, sessionDatabase: POSTGRES_URL }).run({ partitionBy: 'k', source: SOURCE, runId: 'pg' });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});

describe('a run whose source is the session database itself', () => {
  it('reads its input from the file and writes its rows to it (dpf\'s own read of the file is not "another instance")', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await mkdir(stage, { recursive: true });
    const file = join(stage, 'dpf.duckdb');
    await duckdb(`ATTACH '${file}' AS s; CREATE TABLE s.sales AS SELECT 's' || (i % 20) AS store, i AS amount, repeat('x', 50) AS pad FROM range(1000000) t(i)`);
    const body = `
      const rows = await data.toRecords();
      await context.withSession((session) => session.append('totals', [{ store: context.partitionKey, total: rows.reduce((sum, row) => sum + Number(row.amount), 0) }]));
    `;
    const run = await new DPF(await writeModule(dir, body), { stage }).run({ database: file, source: 'sales', partitionBy: 'store', runId: 'chain', executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(run.warnings.filter((warning) => warning.includes('session database'))).toEqual([]);
    expect(await duckdb(`ATTACH '${file}' AS s (READ_ONLY); SELECT count(*) AS n, sum(total) AS t FROM s.totals`)).toEqual([{ n: 20n, t: 499999500000 }]);
  });
});
