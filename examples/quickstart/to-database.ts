import type { DataConnector, PartitionContext } from 'dpf';

// Puts each partition's rows in one table; the attempt's writes commit only if it succeeds. dpf
// never deletes rows a run wrote ('overwrite' neither), so the function replaces its partition's
// rows, in the same transaction: running it again does not add them a second time.
export default async function toDatabase(data: DataConnector, context: PartitionContext): Promise<void> {
  const rows = await data.toArrow();
  await context.withSession(async (session) => {
    const [table] = await session.query<{ n: bigint }>("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'daily_sales'");
    if (Number(table?.n) > 0) await session.query('DELETE FROM daily_sales WHERE store = $1', [context.partitionKey]);
    await session.append('daily_sales', rows); // PostgreSQL: one COPY; DuckDB: the appender; creates a missing table
    const [count] = await session.query<{ n: bigint }>('SELECT count(*) AS n FROM daily_sales WHERE store = $1', [context.partitionKey]);
    context.log(`${count?.n} rows of ${context.partitionId} in daily_sales`);
  });
}
