import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { duckdb, POSTGRES_URL, postgres, runNodeScript, tempDir, uniqueName, writeModule } from '../helpers.js';
import { journalFacts } from '../support/journal-facts.js';

/**
 * kill -9 at random moments, many times over, then count what survived: every partition DONE
 * once, its rows in the session database once, its artifact the DONE attempt's. The moments come
 * from a seeded generator, so a failure can be replayed.
 */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Enough work (about 6 s on 2 workers) that 20 kills land before a run can finish.
const PARTITIONS = 200;
const ROWS = 10;
const SOURCE = `SELECT 'k' || lpad((i % ${PARTITIONS})::VARCHAR, 3, '0') AS k, i AS v FROM range(${PARTITIONS * ROWS}) t(i)`;

/** Appends the partition's rows through withSession, takes a while, and says which attempt it was. */
const APPEND = (table: string) => `
  const rows = await data.toArrow();
  await new Promise((resolve) => setTimeout(resolve, 30 + Math.random() * 60));
  await context.withSession((session) => session.append(${JSON.stringify(table)}, rows));
  await context.uploadToStage({ attempt: context.attempt, rows: rows.numRows }, 'seen.json');
`;

function driverScript(module: string, stage: string, runId: string, session: string, options: string, resume: boolean): string {
  return `
    import { existsSync } from 'node:fs';
    import { DPF } from 'dpf';
    const dpf = new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, sessionDatabase: ${JSON.stringify(session)} });
    // A resume gives the source too: a driver killed before the run was published left none to resume,
    // and one killed before it wrote anything left no run ('resume' of no run is an error).
    const resume = ${resume} && existsSync(${JSON.stringify(join(stage, runId))});
    const run = await dpf.run({ partitionBy: 'k', runId: ${JSON.stringify(runId)}, source: ${JSON.stringify(SOURCE)}, ...(resume ? { onExistingArtifacts: 'resume' } : {}), executionOptions: ${options} });
    console.log('STATUS ' + await run.wait());
  `;
}

/** Checks what survived: each partition DONE once, its artifact the DONE attempt's, its rows once. */
async function expectExactlyOnce(stage: string, runId: string, rowsPerKey: Record<string, number>): Promise<void> {
  const run = await DPFRun.restoreFrom(runId, stage);
  expect(run.status).toBe(RunStatus.SUCCESS);
  const { doneRecords, lateSegments } = await journalFacts(stage, runId);
  expect(lateSegments).toEqual([]);
  expect(doneRecords.size).toBe(PARTITIONS);
  expect([...doneRecords.entries()].filter(([, count]) => count !== 1)).toEqual([]);
  for (const details of Object.values(await run.getPartitionDetails())) {
    expect(details.status).toBe(PartitionStatus.DONE);
    expect(await details.artifacts.get('seen.json')).toEqual({ attempt: details.attempts, rows: ROWS });
  }
  const wrong = Object.entries(rowsPerKey).filter(([, n]) => n !== ROWS);
  expect(wrong, 'partitions whose rows are missing or twice').toEqual([]);
  expect(Object.keys(rowsPerKey)).toHaveLength(PARTITIONS);
}

/**
 * Starts and kills the driver of one run again and again at random moments, until `kills` kills
 * or the run finished, then lets a last resume finish it; returns the kills.
 */
async function killDriverRepeatedly(module: string, stage: string, runId: string, session: string, kills: number, next: () => number): Promise<number> {
  let killed = 0;
  for (let round = 0; killed < kills; round++) {
    const driver = runNodeScript(driverScript(module, stage, runId, session, '{ availableCpus: 2 }', round > 0));
    await sleep(150 + next() * 1200);
    driver.kill('SIGKILL');
    const { signal, stdout } = await driver.done;
    if (signal === 'SIGKILL') killed++;
    // A run that finished before the kill is still resumed once more below.
    else if (stdout.includes('STATUS SUCCESS')) break;
    else throw new Error(`round ${round}: the driver exited by itself: ${stdout} ${(await driver.done).stderr}`);
  }
  const last = runNodeScript(driverScript(module, stage, runId, session, '{ availableCpus: 2 }', true));
  const { stdout, stderr } = await last.done;
  expect(stdout, stderr).toContain('STATUS SUCCESS');
  return killed;
}

/**
 * Runs with kills until `target` kills landed (a run the machine finishes before enough kills is
 * followed by another), checking each run with `rowsOf` (rows per key of the run's table).
 */
async function killRuns(target: number, seed: number, oneRun: (run: number, kills: number, next: () => number) => Promise<number>): Promise<number> {
  const next = random(seed);
  let killed = 0;
  for (let run = 0; killed < target; run++) killed += await oneRun(run, target - killed, next);
  return killed;
}

describe('drivers killed at random moments', () => {
  it('PostgreSQL: 20 kill -9s of the driver, then resume: every partition DONE once, its rows once', async () => {
    await postgres('SELECT 1');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const killed = await killRuns(20, 11, async (run, kills, next) => {
      const table = uniqueName('dpf_kills');
      try {
        const landed = await killDriverRepeatedly(await writeModule(dir, APPEND(table), { name: `fn-${run}.mjs` }), stage, `kills-${run}`, POSTGRES_URL, kills, next);
        const rows = await postgres<{ k: string; n: number }>(`SELECT k, count(*)::int AS n FROM ${table} GROUP BY k`);
        await expectExactlyOnce(stage, `kills-${run}`, Object.fromEntries(rows.map((row) => [row.k, row.n])));
        return landed;
      } finally {
        await postgres(`DROP TABLE IF EXISTS ${table}`);
      }
    });
    expect(killed).toBeGreaterThanOrEqual(20);
  });

  it('the DuckDB session file: 20 kill -9s of the driver, then resume: every partition DONE once, its rows once', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const killed = await killRuns(20, 23, async (run, kills, next) => {
      const file = join(dir, `sessions-${run}.duckdb`);
      const landed = await killDriverRepeatedly(await writeModule(dir, APPEND('rows'), { name: `fn-${run}.mjs` }), stage, `kills-${run}`, file, kills, next);
      const rows = await duckdb<{ k: string; n: number }>(`ATTACH '${file}' AS s (READ_ONLY); SELECT k, count(*)::INT AS n FROM s.rows GROUP BY k`);
      await expectExactlyOnce(stage, `kills-${run}`, Object.fromEntries(rows.map((row) => [row.k, row.n])));
      return landed;
    });
    expect(killed).toBeGreaterThanOrEqual(20);
  });
});

describe('worker processes killed at random moments', () => {
  it('40 kills of random child workers under isolation: process, with PostgreSQL and DuckDB sessions: every partition DONE once, its rows once', async () => {
    await postgres('SELECT 1');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const killed = await killRuns(40, 5, async (run, kills, next) => {
      // Alternate the session database between runs: PostgreSQL, then the DuckDB file the driver serves.
      const onPostgres = run % 2 === 0;
      const table = onPostgres ? uniqueName('dpf_child_kills') : 'rows';
      const file = join(dir, `children-${run}.duckdb`);
      const runId = `kills-${run}`;
      try {
        const module = await writeModule(dir, APPEND(table), { name: `child-${run}.mjs` });
        const options = "{ isolation: 'process', availableCpus: 2, maxRetries: 1000, retryBackoffMs: 0 }";
        const driver = runNodeScript(driverScript(module, stage, runId, onPostgres ? POSTGRES_URL : file, options, false));
        let landed = 0;
        let finished = false;
        void driver.done.then(() => (finished = true));
        // At most 20 kills a run, so both databases get theirs.
        while (landed < Math.min(kills, 20) && !finished) {
          await sleep(30 + next() * 150);
          const children = childrenOf(driver.pid);
          if (children.length === 0) continue;
          try {
            process.kill(children[Math.floor(next() * children.length)]!, 'SIGKILL');
            landed++;
          } catch {
            // It exited meanwhile.
          }
        }
        const { stdout, stderr } = await driver.done;
        expect(stdout, stderr).toContain('STATUS SUCCESS');
        const rows = onPostgres
          ? await postgres<{ k: string; n: number }>(`SELECT k, count(*)::int AS n FROM ${table} GROUP BY k`)
          : await duckdb<{ k: string; n: number }>(`ATTACH '${file}' AS s (READ_ONLY); SELECT k, count(*)::INT AS n FROM s.rows GROUP BY k`);
        await expectExactlyOnce(stage, runId, Object.fromEntries(rows.map((row) => [row.k, row.n])));
        return landed;
      } finally {
        if (onPostgres) await postgres(`DROP TABLE IF EXISTS ${table}`);
      }
    });
    expect(killed).toBeGreaterThanOrEqual(40);
  });
});

/** The process ids of a process's children. */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((child) => child > 0);
  } catch {
    return [];
  }
}
