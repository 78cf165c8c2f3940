import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, tempDir, writeModule } from './helpers.js';

/** Ids that name properties every plain JavaScript object has. */
const NAMES = ['__proto__', 'toString', 'constructor'];

describe('partition ids that are JavaScript property names', () => {
  it('are partitions like any other, in the API and the dpf command', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, `console.log('saw', context.partitionId); await context.uploadToStage({ id: context.partitionId }, 'seen.json');`);
    const source = [...NAMES, 'plain'].map((name) => ({ name, x: 1 }));
    const run = await new DPF(module, { stage }).run({ partitionBy: 'name', source, runId: 'names' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);

    for (const handle of [run, await DPFRun.restoreFrom('names', stage)]) {
      const details = await handle.getPartitionDetails();
      expect(Object.keys(details).sort()).toEqual([...NAMES, 'plain'].sort());
      for (const name of NAMES) {
        expect(Object.hasOwn(details, name)).toBe(true);
        expect(details[name]!.partitionId).toBe(name);
        expect(await details[name]!.logs()).toContain(`saw ${name}`);
      }
      // An id the run does not have is not found in what every object inherits.
      expect(details['hasOwnProperty']).toBeUndefined();
      expect(details['valueOf']).toBeUndefined();
    }

    for (const name of NAMES) {
      const logs = dpfCommand('logs', 'names', name, '--stage', stage);
      expect(logs.stderr).toBe('');
      expect(logs.stdout).toContain(`saw ${name}`);
      const artifact = dpfCommand('artifacts', 'names', name, 'seen.json', '--stage', stage);
      expect(JSON.parse(artifact.stdout)).toEqual({ id: name });
    }
    const missing = dpfCommand('logs', 'names', 'hasOwnProperty', '--stage', stage);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('run "names" has no partition "hasOwnProperty"');
  });
});
