/**
 * The partition function of the demo: profiles one data file — rows, and per column its type,
 * nulls, and for numbers min / max / mean — reading it in bounded batches, then saves the profile
 * (and, for files that are not Parquet yet, a Parquet copy) as the partition's artifacts.
 */
import type { DataConnector, PartitionContext } from 'dpf';
import { DataType } from 'apache-arrow';

interface ColumnProfile {
  name: string;
  type: string;
  nulls: number;
  min?: number;
  max?: number;
  mean?: number;
}

export default async function profile(data: DataConnector, context: PartitionContext): Promise<void> {
  const schema = await data.schema();
  const columns: ColumnProfile[] = schema.fields.map((field) => ({ name: field.name, type: String(field.type), nulls: 0 }));
  const sums = new Float64Array(columns.length);
  const counts = new Float64Array(columns.length);
  let rows = 0;
  for await (const batch of data.batches()) {
    context.signal.throwIfAborted();
    rows += batch.numRows;
    schema.fields.forEach((field, c) => {
      const column = batch.getChildAt(c)!;
      const profile = columns[c]!;
      profile.nulls += column.nullCount;
      if (!DataType.isInt(field.type) && !DataType.isFloat(field.type)) return;
      for (const raw of column) {
        if (raw === null) continue;
        const value = Number(raw);
        if (Number.isNaN(value)) continue;
        profile.min = Math.min(profile.min ?? value, value);
        profile.max = Math.max(profile.max ?? value, value);
        sums[c]! += value;
        counts[c]! += 1;
      }
    });
  }
  columns.forEach((column, c) => {
    if (counts[c]! > 0) column.mean = sums[c]! / counts[c]!;
  });
  context.log(`profiled ${rows} rows × ${columns.length} columns`);
  await context.uploadToStage({ file: context.partitionId, rows, columns }, 'profile.json');
  if (!context.partitionId.endsWith('.parquet')) await context.uploadToStage(await data.toArrow(), 'data.parquet');
}
