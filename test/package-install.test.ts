import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, writeFiles } from './helpers.js';

/**
 * dpf as a user gets it: packed by `npm pack` (whose `prepare` builds dist/), installed from the
 * tarball into a project of its own — outside this checkout, so nothing resolves through it — with
 * the packages the README names, and used from CommonJS, from ES modules and from TypeScript.
 */

const folders: string[] = [];
afterEach(async () => {
  while (folders.length > 0) await rm(folders.pop()!, { recursive: true, force: true });
});

/** A temporary folder outside the project (the helpers' tempDir is inside it, where `dpf` resolves to this checkout). */
async function outsideTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dpf-install-'));
  folders.push(dir);
  return dir;
}

/** The environment of a command run as a user would: without the variables `npm test` sets for this package. */
function userEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_(package|lifecycle)_/.test(name) && name !== 'INIT_CWD'));
}

function run(command: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: userEnvironment(), timeout: 120_000 });
  expect(result.status, `${command} ${args.join(' ')} in ${cwd}:\n${result.stdout}\n${result.stderr}`).toBe(0);
  return result;
}

/** The README's commands for installing dpf in one's own project (its first sh block after the heading). */
async function readmeInstallCommands(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('## Use dpf in your own project')[1];
  expect(section, 'README has a section "Use dpf in your own project"').toBeDefined();
  return section!.split('```sh\n')[1]!.split('```')[0]!.split('\n').map((line) => line.replace(/#.*$/, '').trim()).filter((line) => line !== '');
}

describe('dpf installed from its tarball into a project of its own', () => {
  it('packs with its build, installs with its dependencies, and runs from ES modules, CommonJS and TypeScript', async () => {
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    const tarballName = `dpf-${manifest.version}.tgz`;
    const commands = await readmeInstallCommands();
    // The README's commands, as this test runs them.
    expect(commands).toContain('npm pack');
    const install = commands.find((line) => line.startsWith(`npm install /path/to/${tarballName}`));
    expect(install, `README: npm install /path/to/${tarballName} …`).toBeDefined();
    const extras = install!.split(/\s+/).slice(3);
    expect(extras).toEqual([`@duckdb/node-api@${manifest.dependencies['@duckdb/node-api']}`, 'tsx']);

    // npm pack in a copy of the package's sources: its prepare script builds dist/ there (this
    // checkout's dist/ is in use by other tests).
    const work = await outsideTempDir();
    const source = join(work, 'dpf');
    await mkdir(source);
    for (const file of ['package.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'src']) await cp(join(ROOT, file), join(source, file), { recursive: true });
    await symlink(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
    run('npm', ['pack', '--pack-destination', work], source);
    const listing = run('tar', ['tzf', join(work, tarballName)], work).stdout.split('\n').filter((line) => line !== '' && !line.endsWith('/'));
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/execute/worker-main.js']) expect(listing).toContain(`package/${file}`);
    expect(listing.filter((file) => !file.startsWith('package/dist/'))).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md']));
    expect(listing.filter((file) => !file.startsWith('package/dist/') && !['package/package.json', 'package/README.md'].includes(file))).toEqual([]);

    // A project as `npm init -y` makes it (CommonJS), outside this checkout, installing what the
    // README says — from npm's cache where it can.
    const project = join(work, 'project');
    await mkdir(project);
    run('npm', ['init', '-y'], project);
    expect(JSON.parse(await readFile(join(project, 'package.json'), 'utf8')).type ?? 'commonjs').toBe('commonjs');
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarballName), ...extras], project);
    expect((await readdir(join(project, 'node_modules'))).includes('dpf')).toBe(true);

    await writeFiles(project, {
      'input/a.csv': 'x\n1\n',
      'input/b.csv': 'x\n1\n2\n',
      'input/c.csv': 'x\n1\n2\n3\n',
      // The partition function in TypeScript, run as is (dpf brings tsx for its modules).
      'count.ts': [
        "import type { DataConnector, PartitionContext } from 'dpf';",
        'export default async function count(data: DataConnector, context: PartitionContext): Promise<void> {',
        "  await context.uploadToStage({ rows: (await data.toRecords()).length }, 'count.json');",
        '}',
        '',
      ].join('\n'),
      // CommonJS: require() on Node 20.19+, and import() anywhere, give the same module.
      'job.cjs': [
        "const { DPF } = require('dpf');",
        '(async () => {',
        "  const imported = await import('dpf');",
        "  console.log('same module', imported.DPF === DPF);",
        "  const run = await new DPF(require('node:path').join(__dirname, 'count.ts'), { stage: 'stage' }).runFromStage({ stageLocation: 'input', filePattern: '*.csv', runId: 'job' });",
        '  const status = await run.wait();',
        "  const counts = await run.query('SELECT partition_id, rows FROM counts ORDER BY partition_id', { counts: 'count.json' });",
        "  console.log(status, JSON.stringify(counts.toArray().map((row) => [row.partition_id, Number(row.rows)])));",
        '})();',
        '',
      ].join('\n'),
    });
    const expected = JSON.stringify([['a.csv', 1], ['b.csv', 2], ['c.csv', 3]]);
    expect(run(process.execPath, ['job.cjs'], project).stdout).toBe(`same module true\nSUCCESS ${expected}\n`);

    // The command, as npx dpf.
    expect(run('npx', ['--no-install', 'dpf', 'status', 'job', '--stage', 'stage'], project).stdout).toMatch(/^run job: SUCCESS — 3 partition\(s\): 3 DONE/);

    // The README's quick-start examples (ES modules importing dpf, with TypeScript partition
    // modules), copied into the project, run with the installed packages once the project is made
    // an ES module package, as the README says (they use top-level await).
    expect(commands).toContain('npm pkg set type=module');
    run('npm', ['pkg', 'set', 'type=module'], project);
    const examples = join(project, 'quickstart');
    await cp(join(ROOT, 'examples/quickstart'), examples, { recursive: true });
    const quickstart = run(join(project, 'node_modules/.bin/tsx'), ['run.ts'], examples);
    expect(quickstart.stdout.split('\n').slice(0, 2)).toEqual(['SUCCESS', '3 done, 0 failed']);
    const dataframe = run(join(project, 'node_modules/.bin/tsx'), ['dataframe.ts'], examples);
    expect(dataframe.stdout).toContain("{ store: 'store-0', days: 100n }");

    // The types: a user's TypeScript, checked against the installed declarations (the TypeScript
    // compiler and Node's types are this checkout's).
    await writeFiles(project, {
      'tsconfig.json': JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] },
        include: ['count.ts', 'typed.mts'],
      }),
      'typed.mts': [
        "import { DPF, RunStatus, type ExecutionOptions } from 'dpf';",
        "const options: ExecutionOptions = { maxRetries: 0, isolation: 'process' };",
        "const run = await new DPF(new URL('./count.ts', import.meta.url), { stage: 'stage' }).runFromStage({ stageLocation: 'input', runId: 'typed', executionOptions: options });",
        'const status: RunStatus = await run.wait();',
        'console.log(status);',
        '',
      ].join('\n'),
    });
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
  }, 240_000);
});
