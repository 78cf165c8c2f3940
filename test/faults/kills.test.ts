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

function driverScript(module: string, stage: string, session: string, options: string, resume: boolean): string {
  return `
    import { DPF } from 'dpf';
    const dpf = new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, sessionDatabase: ${JSON.stringify(session)} });
    // A resume gives the source too: a driver killed before the run was published left none to resume.
    const run = await dpf.run({ partitionBy: 'k', runId: 'kills', source: ${JSON.stringify(SOURCE)}, ${resume ? "onExistingArtifacts: 'resume', " : ''}executionOptions: ${options} });
    console.log('STATUS ' + await run.wait());
  `;
}

/** Checks what survived: each partition DONE once, its artifact the DONE attempt's, its rows once. */
async function expectExactlyOnce(stage: string, rowsPerKey: Record<string, number>): Promise<void> {
  const run = await DPFRun.restoreFrom('kills', stage);
  expect(run.status).toBe(RunStatus.SUCCESS);
  const { doneRecords } = await journalFacts(stage, 'kills');
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

/** Starts and kills the driver again and again at random moments, then lets a last resume finish. */
async function killDriverRepeatedly(module: string, stage: string, session: string, kills: number, seed: number): Promise<number> {
  const next = random(seed);
  let killed = 0;
  for (let round = 0; killed < kills; round++) {
    const driver = runNodeScript(driverScript(module, stage, session, '{ availableCpus: 2 }', round > 0));
    await sleep(150 + next() * 1200);
    driver.kill('SIGKILL');
    const { signal, stdout } = await driver.done;
    if (signal === 'SIGKILL') killed++;
    // A run that finished before the kill is still resumed once more below.
    else if (stdout.includes('STATUS SUCCESS')) break;
    else throw new Error(`round ${round}: the driver exited by itself: ${stdout} ${(await driver.done).stderr}`);
  }
  const last = runNodeScript(driverScript(module, stage, session, '{ availableCpus: 2 }', true));
  const { stdout, stderr } = await last.done;
  expect(stdout, stderr).toContain('STATUS SUCCESS');
  return killed;
}

describe('drivers killed at random moments', () => {
  it('PostgreSQL: 20 kill -9s of the driver, then resume: every partition DONE once, its rows once', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_kills');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    try {
      const killed = await killDriverRepeatedly(await writeModule(dir, APPEND(table)), stage, POSTGRES_URL, 20, 11);
      expect(killed).toBeGreaterThanOrEqual(20);
      const rows = await postgres<{ k: string; n: number }>(`SELECT k, count(*)::int AS n FROM ${table} GROUP BY k`);
      await expectExactlyOnce(stage, Object.fromEntries(rows.map((row) => [row.k, row.n])));
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('the DuckDB session file: 20 kill -9s of the driver, then resume: every partition DONE once, its rows once', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const file = join(dir, 'sessions.duckdb');
    const killed = await killDriverRepeatedly(await writeModule(dir, APPEND('rows')), stage, file, 20, 23);
    expect(killed).toBeGreaterThanOrEqual(20);
    const rows = await duckdb<{ k: string; n: number }>(`ATTACH '${file}' AS s (READ_ONLY); SELECT k, count(*)::INT AS n FROM s.rows GROUP BY k`);
    await expectExactlyOnce(stage, Object.fromEntries(rows.map((row) => [row.k, row.n])));
  });
});

describe('worker processes killed at random moments', () => {
  it('40 kills of random child workers under isolation: process: every partition DONE once, its rows once', async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_child_kills');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, APPEND(table));
    const next = random(5);
    try {
      const driver = runNodeScript(driverScript(module, stage, POSTGRES_URL, "{ isolation: 'process', availableCpus: 2, maxRetries: 1000, retryBackoffMs: 0 }", false));
      let killed = 0;
      let finished = false;
      void driver.done.then(() => (finished = true));
      while (killed < 40 && !finished) {
        await sleep(30 + next() * 150);
        const children = childrenOf(driver.pid);
        if (children.length === 0) continue;
        try {
          process.kill(children[Math.floor(next() * children.length)]!, 'SIGKILL');
          killed++;
        } catch {
          // It exited meanwhile.
        }
      }
      const { stdout, stderr } = await driver.done;
      expect(stdout, stderr).toContain('STATUS SUCCESS');
      expect(killed).toBeGreaterThanOrEqual(40);
      const rows = await postgres<{ k: string; n: number }>(`SELECT k, count(*)::int AS n FROM ${table} GROUP BY k`);
      await expectExactlyOnce(stage, Object.fromEntries(rows.map((row) => [row.k, row.n])));
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
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
