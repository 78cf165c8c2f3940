import { readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DPF, DPFRun, InvalidOptionError, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { DuckDBSessionHost } from '../src/execute/duckdb-session-host.js';
import { PostgresLedger, PostgresSessions } from '../src/execute/postgres-session.js';
import { duckdb, listFiles, POSTGRES_URL, postgres, runNodeScript, tempDir, uniqueName, writeModule } from './helpers.js';

/** 8 partitions (k0…k7) of 25 rows each. */
const SOURCE = "SELECT 'k' || (i % 8) AS k, i AS v FROM range(200) t(i)";

/**
 * A partition function that appends its rows to `table`, and — once, the first time any attempt
 * commits (a marker file says it happened) — kills `target` right after the database answered
 * COMMIT: the moment between the session's commit and the DONE record in the journal.
 */
function appendThenDieAfterCommit(table: string, marker: string, target: 'worker' | 'driver'): { body: string; prelude: string } {
  return {
    prelude: `
      import fs from 'node:fs';
      import { isMainThread } from 'node:worker_threads';
      import pg from 'pg';
      // Only in dpf's workers (the driver imports the module too, to check it).
      const inWorker = ${target === 'worker' ? 'process.send !== undefined' : '!isMainThread'};
      const query = pg.Client.prototype.query;
      if (inWorker) pg.Client.prototype.query = function (...args) {
        const result = query.apply(this, args);
        // (A worker thread kept for later runs keeps this patch: it acts only while this test's folder exists.)
        if (args[0] === 'COMMIT' && fs.existsSync(${JSON.stringify(dirname(marker))}) && !fs.existsSync(${JSON.stringify(marker)})) {
          result.then(() => {
            fs.writeFileSync(${JSON.stringify(marker)}, 'killed');
            ${target === 'worker' ? 'process.exit(9)' : "process.kill(process.pid, 'SIGKILL')"};
          });
        }
        return result;
      };`,
    body: `
      const rows = await data.toArrow();
      await context.withSession((session) => session.append(${JSON.stringify(table)}, rows));
      await context.uploadToStage({ rows: rows.numRows, attempt: context.attempt }, 'seen.json');`,
  };
}

async function rowsPerKey(table: string): Promise<Record<string, number>> {
  const rows = await postgres<{ k: string; n: number }>(`SELECT k, count(*)::int AS n FROM ${table} GROUP BY k ORDER BY k`);
  return Object.fromEntries(rows.map((row) => [row.k, row.n]));
}

const EVERY_KEY_ONCE = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 25]));

describe('exactly-once rows through withSession on PostgreSQL', () => {
  it('a worker that dies right after its commit: the committed attempt is adopted, not run again', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_worker_dies');
    const dir = await tempDir();
    const { body, prelude } = appendThenDieAfterCommit(table, join(dir, 'killed'), 'worker');
    try {
      const dpf = new DPF(await writeModule(dir, body, { prelude }), { stage: join(dir, 'stage'), sessionDatabase: POSTGRES_URL });
      const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'dies', executionOptions: { isolation: 'process', maxRetries: 2, retryBackoffMs: 0 } });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
      expect(await readFile(join(dir, 'killed'), 'utf8')).toBe('killed');
      expect(await rowsPerKey(table)).toEqual(EVERY_KEY_ONCE);
      for (const details of Object.values(await run.getPartitionDetails())) {
        expect(details.status).toBe(PartitionStatus.DONE);
        // The adopted attempt's artifacts are the ones the partition shows.
        expect(await details.artifacts.get('seen.json')).toEqual({ rows: 25, attempt: 1 });
      }
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('a driver killed between the commit and the journal: resume adopts the committed attempt', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_driver_dies');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const { body, prelude } = appendThenDieAfterCommit(table, join(dir, 'killed'), 'driver');
    const module = await writeModule(dir, body, { prelude });
    try {
      const driver = runNodeScript(`
        import { DPF } from 'dpf';
        const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, sessionDatabase: ${JSON.stringify(POSTGRES_URL)} })
          .run({ partitionBy: 'k', source: ${JSON.stringify(SOURCE)}, runId: 'killed', executionOptions: { availableCpus: 1 } });
        await run.wait();
      `);
      const { signal } = await driver.done;
      expect(signal).toBe('SIGKILL');
      // One partition's rows are committed, and the journal does not say it is DONE.
      const before = await rowsPerKey(table);
      const restored = await DPFRun.restoreFrom('killed', stage);
      const notDone = new Set(Object.values(await restored.getPartitionDetails()).filter((details) => details.status !== PartitionStatus.DONE).map((details) => details.partitionId));
      const committedNotRecorded = Object.keys(before).filter((key) => notDone.has(key));
      expect(committedNotRecorded).toHaveLength(1);
      expect(before[committedNotRecorded[0]!]).toBe(25);

      const resumed = await new DPF(module, { stage, sessionDatabase: POSTGRES_URL }).run({ partitionBy: 'k', runId: 'killed', onExistingArtifacts: 'resume' });
      expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
      expect(await rowsPerKey(table)).toEqual(EVERY_KEY_ONCE);
      const adopted = (await resumed.getPartitionDetails())[committedNotRecorded[0]!]!;
      expect(adopted.attempts).toBe(1);
      expect(await adopted.artifacts.get('seen.json')).toEqual({ rows: 25, attempt: 1 });
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('a DONE partition whose artifacts are gone runs again on resume: its new artifacts, its rows still once', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_lost_artifacts');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, `
      const rows = await data.toArrow();
      await context.withSession((session) => session.append(${JSON.stringify(table)}, rows));
      await context.uploadToStage({ rows: rows.numRows, attempt: context.attempt }, 'seen.json');`);
    try {
      const dpf = new DPF(module, { stage, sessionDatabase: POSTGRES_URL });
      expect(await (await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'lost' })).wait()).toBe(RunStatus.SUCCESS);
      for (const pack of await readdir(join(stage, 'lost/_dpf/packs'))) await rm(join(stage, 'lost/_dpf/packs', pack));
      const resumed = await dpf.run({ partitionBy: 'k', runId: 'lost', onExistingArtifacts: 'resume' });
      expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
      for (const details of Object.values(await resumed.getPartitionDetails())) {
        expect(details.attempts).toBe(2);
        expect(await details.artifacts.get('seen.json')).toEqual({ rows: 25, attempt: 2 });
      }
      expect(await rowsPerKey(table)).toEqual(EVERY_KEY_ONCE);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('refuses a commit from a driver that was replaced, and adopts the first of two attempts to commit', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_fence');
    const runUid = uniqueName('run');
    const sessions = new PostgresSessions(POSTGRES_URL);
    const ledger = new PostgresLedger(POSTGRES_URL);
    const entry = (token: string) => ({ attempt: 1, token, artifacts: [], logs: [], startedAt: 0, finishedAt: 1 });
    try {
      const first = await sessions.begin();
      await first.append(table, await (await import('../src/data/records.js')).recordsToTable([{ k: 'k0' }]));
      expect(await first.commit({ runUid, epoch: 1, partition: 0, partitionId: 'k0', entry: entry('a.1') })).toEqual({ committed: true });
      const second = await sessions.begin();
      await second.append(table, await (await import('../src/data/records.js')).recordsToTable([{ k: 'k0' }]));
      expect(await second.commit({ runUid, epoch: 1, partition: 0, partitionId: 'k0', entry: entry('a.2') })).toEqual({ adopted: entry('a.1') });
      expect(await postgres(`SELECT count(*)::int AS n FROM ${table}`)).toEqual([{ n: 1 }]);
      expect([...(await ledger.committed(runUid)).keys()]).toEqual([0]);

      // A session whose attempt ended runs nothing more (a timed-out function still running).
      const ended = await sessions.begin();
      await ended.rollback();
      await expect(ended.query('SELECT 1', [])).rejects.toThrow(/the attempt has ended .* this statement was not run/);

      await ledger.fence(runUid, 2);
      const stale = await sessions.begin();
      await stale.append(table, await (await import('../src/data/records.js')).recordsToTable([{ k: 'k1' }]));
      await expect(stale.commit({ runUid, epoch: 1, partition: 1, partitionId: 'k1', entry: entry('b.1') })).rejects.toThrow(/taken over by a newer driver \(epoch 2\)/);
      expect(await postgres(`SELECT count(*)::int AS n FROM ${table}`)).toEqual([{ n: 1 }]);
    } finally {
      await sessions.close();
      await ledger.close();
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});

describe('exactly-once rows through withSession on the DuckDB file', () => {
  it('commits an attempt with its ledger row, adopts the first committed attempt, and refuses a replaced driver', async () => {
    const dir = await tempDir();
    const path = join(dir, 'sessions.duckdb');
    // Every run of a process that writes to one file shares its host (two DuckDB instances on one file lose writes).
    const host = DuckDBSessionHost.acquire(path);
    expect(DuckDBSessionHost.acquire(path)).toBe(host);
    const entry = (token: string) => ({ attempt: 1, token, artifacts: [], logs: [], startedAt: 0, finishedAt: 1 });
    const run = { runUid: 'run-1', epoch: 1 };
    const ipc = (await import('apache-arrow')).tableToIPC(await (await import('../src/data/records.js')).recordsToTable([{ k: 'k0' }]), 'stream');
    try {
      expect(await host.handle({ op: 'append', attempt: 'a.1', table: 'rows', ipc })).toEqual({ value: 1 });
      expect(await host.handle({ op: 'commit', attempt: 'a.1', ...run, partition: 0, partitionId: 'k0', entry: entry('a.1') })).toEqual({ value: { committed: true } });
      expect(await host.handle({ op: 'append', attempt: 'a.2', table: 'rows', ipc })).toEqual({ value: 1 });
      expect(await host.handle({ op: 'commit', attempt: 'a.2', ...run, partition: 0, partitionId: 'k0', entry: entry('a.2') })).toEqual({ value: { adopted: entry('a.1') } });
      expect([...(await host.committed('run-1')).keys()]).toEqual([0]);
      // An attempt rolled back while its commit waited (its worker died) commits nothing, not an empty transaction.
      expect(await host.handle({ op: 'append', attempt: 'c.1', table: 'rows', ipc })).toEqual({ value: 1 });
      await host.rollback(['c.1']);
      const late = await host.handle({ op: 'commit', attempt: 'c.1', ...run, partition: 2, partitionId: 'k2', entry: entry('c.1') });
      expect(late.error?.message).toMatch(/the attempt's transaction was rolled back/);
      expect((await host.handle({ op: 'query', attempt: 'c.1', sql: 'SELECT 1', params: [] })).error?.name).toBe('AttemptEndedError');
      expect([...(await host.committed('run-1')).keys()]).toEqual([0]);
      await host.fence('run-1', 2);
      expect(await host.handle({ op: 'append', attempt: 'b.1', table: 'rows', ipc })).toEqual({ value: 1 });
      const refused = await host.handle({ op: 'commit', attempt: 'b.1', ...run, partition: 1, partitionId: 'k1', entry: entry('b.1') });
      expect(refused.error?.message).toMatch(/taken over by a newer driver \(epoch 2\)/);
    } finally {
      await host.release();
      await host.release();
    }
    expect(await duckdb(`ATTACH '${path}' AS s (READ_ONLY); SELECT count(*)::INT AS n FROM s.rows`)).toEqual([{ n: 1 }]);
  });
});

describe('nothing secret on the stage', () => {
  it('records the database URL without its password; a resume gives its own, and must name the same database', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_secret');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    // The test server trusts every connection, so any password is accepted: this one must not be written down.
    const secret = 's3cretPW';
    const url = POSTGRES_URL.replace('postgres://postgres@', `postgres://postgres:${secret}@`);
    expect(url).toContain(secret);
    const module = await writeModule(dir, `
      if (context.partitionKey === 'k3' && context.attempt === 1) throw new Error('fails once, to be resumed');
      await context.withSession(async (session) => session.append(${JSON.stringify(table)}, await data.toArrow()));
    `);
    try {
      // A URL with the password in the source's SQL (a comment here) is not written down either.
      const source = `${SOURCE} -- copied from ${url}`;
      const run = await new DPF(module, { stage, sessionDatabase: url }).run({ partitionBy: 'k', source, runId: 'secret', executionOptions: { maxRetries: 0 } });
      expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
      // Resumed by another process, which passes the URL (with the password) itself.
      const resumer = runNodeScript(`
        import { DPF } from 'dpf';
        const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, sessionDatabase: ${JSON.stringify(url)} })
          .run({ partitionBy: 'k', runId: 'secret', onExistingArtifacts: 'resume' });
        console.log('STATUS ' + await run.wait());
      `);
      const resumed = await resumer.done;
      expect(resumed.stdout, resumed.stderr).toContain('STATUS SUCCESS');
      expect(await rowsPerKey(table)).toEqual(EVERY_KEY_ONCE);
      for (const file of await listFiles(stage)) {
        expect((await readFile(join(stage, file))).includes(secret), `${file} holds the password`).toBe(false);
      }
      // Another database would split the ledger: refused before any work.
      await expect(new DPF(module, { stage }).run({ partitionBy: 'k', runId: 'secret', onExistingArtifacts: 'resume' })).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(new DPF(module, { stage }).run({ partitionBy: 'k', runId: 'secret', onExistingArtifacts: 'resume' })).rejects.toThrow(
        /sessionDatabase: run "secret" wrote its sessions to PostgreSQL postgres:\/\/postgres@127\.0\.0\.1:5432\/test, not the DuckDB file .*; resume it with the same sessionDatabase/,
      );
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});
