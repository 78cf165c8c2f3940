import { DPF, RunStatus } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactPreview, PartitionsPage, PartitionView, RunsResponse, RunSummary } from '../src/dashboard/api-types.js';
import { startDashboard } from '../dist/dashboard/server.js';
import { getJson, send } from './support/dashboard-client.js';
import { tempDir, writeModule } from './helpers.js';
import { type S3TestServer, startS3Server } from './support/s3-test-server.js';

/**
 * The dashboard over a stage on S3 (s3rver behind test/support/s3-server-main.mjs, reached through
 * the AWS SDK as AWS is, from the standard environment variables this file sets for itself).
 */
let server: S3TestServer;

beforeAll(async () => {
  server = await startS3Server();
  Object.assign(process.env, server.env);
  await server.createBucket('dpf-dash');
});
afterAll(async () => {
  await server?.stop();
});

describe('the dashboard on an S3 stage', () => {
  it('lists the runs and serves partitions, logs, artifacts (packed and not) and previews from S3', async () => {
    const dir = await tempDir();
    const stage = 's3://dpf-dash/stage';
    const module = await writeModule(
      dir,
      `
      const table = await data.toArrow();
      console.log('rows', table.numRows);
      if (context.partitionKey === 'b') throw new Error('b fails');
      await context.uploadToStage({ key: context.partitionKey, rows: table.numRows }, 'small.json');
      await context.uploadToStage(table, 'rows.parquet');
      await context.uploadToStage('z'.repeat(200_000), 'big.txt');
    `,
    );
    const run = await new DPF(module, { stage }).run({ runId: 'on-s3', partitionBy: 'k', source: "SELECT k, i FROM (VALUES ('a'), ('b'), ('c')) t(k), range(3) r(i)", executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const dashboard = await startDashboard({ stage, port: 0 });
    try {
      const { stage: shown, runs } = await getJson<RunsResponse>(dashboard.url, '/api/runs');
      expect(shown).toBe(stage);
      expect(runs).toMatchObject([{ runId: 'on-s3', status: 'PARTIAL_FAILURE', counts: { DONE: 2, FAILED: 1 } }]);
      const page = await getJson<PartitionsPage>(dashboard.url, '/api/runs/on-s3/partitions?status=DONE');
      expect(page.rows.map((row) => [row.id, row.rows])).toEqual([['a', 3], ['c', 3]]);
      const view = await getJson<PartitionView>(dashboard.url, '/api/runs/on-s3/partitions/a');
      expect(view.artifacts.map((artifact) => artifact.name)).toEqual(['big.txt', 'rows.parquet', 'small.json']);
      expect(JSON.parse((await send(dashboard.url, '/api/runs/on-s3/partitions/a/artifacts/small.json')).text)).toEqual({ key: 'a', rows: 3 });
      expect((await send(dashboard.url, '/api/runs/on-s3/partitions/a/artifacts/big.txt')).text).toBe('z'.repeat(200_000));
      expect(await getJson<ArtifactPreview>(dashboard.url, '/api/runs/on-s3/partitions/a/artifacts/rows.parquet/preview')).toEqual({
        kind: 'table',
        columns: ['k', 'i'],
        rows: [['a', '0'], ['a', '1'], ['a', '2']],
        totalRows: 3,
      });
      expect((await send(dashboard.url, '/api/runs/on-s3/partitions/b/log')).text).toContain('[stdout] rows 3');
      expect((await getJson<RunSummary>(dashboard.url, '/api/runs/on-s3')).driver).toBe('ended');
    } finally {
      await dashboard.close();
    }
  });
});
