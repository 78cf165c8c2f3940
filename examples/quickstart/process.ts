import type { DataConnector, PartitionContext } from 'dpf';

// One call per partition (here: per file). What it uploads is kept as the partition's artifacts.
export default async function process(data: DataConnector, context: PartitionContext): Promise<void> {
  const table = await data.toArrow(); // an apache-arrow Table, column types kept
  const amounts = table.getChild('amount')!.toArray() as Float64Array;
  const total = amounts.reduce((sum, amount) => sum + amount, 0);
  context.log(`read ${table.numRows} rows`); // goes to the partition's log (details.logs(), dpf logs)
  await context.uploadToStage({ store: context.partitionId, rows: table.numRows, total }, 'summary.json');
  await context.uploadToStage(table, 'sales.parquet'); // format chosen by the extension
}
