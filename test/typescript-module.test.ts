import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { ROOT, runNodeScript, tempDir, writeFiles } from './helpers.js';

/** A partition module using syntax only TypeScript has: types, an interface, an enum, a named export. */
const TS_MODULE = `
import type { DataConnector, PartitionContext } from 'dpf';

interface Summary { id: string; rows: number; level: Level }
enum Level { Small = 'small', Large = 'large' }

export async function summarize(data: DataConnector, context: PartitionContext): Promise<void> {
  const rows: number = (await data.toArrow()).numRows;
  const summary: Summary = { id: context.partitionId, rows, level: rows > 1 ? Level.Large : Level.Small };
  await context.uploadToStage(summary, 'summary.json');
}
`;

async function fixture(): Promise<{ dir: string; module: string }> {
  const dir = await tempDir();
  await writeFiles(dir, { 'summarize.ts': TS_MODULE, 'input/one.csv': 'x\n1\n', 'input/two.csv': 'x\n1\n2\n' });
  return { dir, module: join(dir, 'summarize.ts') };
}

describe('a TypeScript partition module', () => {
  it.each(['thread', 'process'] as const)('runs with no build step (%s isolation)', async (isolation) => {
    const { dir, module } = await fixture();
    const run = await new DPF({ module, exportName: 'summarize' }, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'ts',
      filePattern: '*.csv',
      executionOptions: { isolation },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = await run.getPartitionDetails();
    expect(await details['two.csv']!.artifacts.get('summary.json')).toEqual({ id: 'two.csv', rows: 2, level: 'large' });
  });

  it('runs on Node 24 as well', async () => {
    const node24 = await nodeBinary('24');
    const { dir, module } = await fixture();
    const script = `
      import { DPF } from 'dpf';
      for (const isolation of ['thread', 'process']) {
        const run = await new DPF({ module: ${JSON.stringify(module)}, exportName: 'summarize' }, { stage: ${JSON.stringify(join(dir, 'stage'))} })
          .runFromStage({ stageLocation: ${JSON.stringify(join(dir, 'input'))}, runId: 'ts-' + isolation, filePattern: '*.csv', executionOptions: { isolation } });
        const status = await run.wait();
        const summary = await (await run.getPartitionDetails())['two.csv'].artifacts.get('summary.json');
        console.log(JSON.stringify({ node: process.version, isolation, status, summary }));
      }
    `;
    const { code, stdout, stderr } = await runNodeScript(script, { node: node24 }).done;
    expect(code, stderr).toBe(0);
    const results = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(results).toHaveLength(2);
    for (const result of results) {
      expect(result.node).toMatch(/^v24\./);
      expect(result).toMatchObject({ status: 'SUCCESS', summary: { id: 'two.csv', rows: 2, level: 'large' } });
    }
  });
});

/**
 * A Node binary of the given major version, from the npm registry's `node-<platform>-<arch>`
 * package, cached under node_modules/.cache so only the first run downloads it.
 */
async function nodeBinary(major: string): Promise<string> {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  const pkg = `node-${platform}-${process.arch}`;
  const prefix = join(ROOT, 'node_modules', '.cache', `node${major}`);
  const binary = join(prefix, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(binary)) {
    await mkdir(prefix, { recursive: true });
    try {
      execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, `${pkg}@${major}`], { stdio: 'pipe', timeout: 180_000 });
    } catch (error) {
      throw new Error(`Node ${major} is needed for this test and could not be installed from the npm registry (${pkg}@${major}): ${(error as Error).message}`);
    }
  }
  return binary;
}
