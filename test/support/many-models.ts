import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InferenceRun } from 'dpf';
import { tempDir } from '../helpers.js';

/** A project folder with a model module (`model.mjs`), a training module and a scoring module, and a stage. */
export async function modelProject(modules: { model: string; train: string; score: string }): Promise<{ dir: string; stage: string; train: string; score: string }> {
  const dir = await tempDir();
  await writeFile(join(dir, 'model.mjs'), modules.model);
  await writeFile(join(dir, 'train.mjs'), modules.train);
  await writeFile(join(dir, 'score.mjs'), modules.score);
  return { dir, stage: join(dir, 'stage'), train: join(dir, 'train.mjs'), score: join(dir, 'score.mjs') };
}

/** An inference run's predictions (`x`, `predicted`) as plain rows, sorted by partition and x. */
export async function scoredRows(run: InferenceRun): Promise<{ partition_id: string; x: number; predicted: number; model_run_id: string }[]> {
  const table = await run.predictions('SELECT partition_id, x, predicted, model_run_id FROM predictions ORDER BY partition_id, x');
  return table.toArray().map((row) => row.toJSON());
}
