import type { DataConnector, PartitionContext } from 'dpf';

// Appends each partition's rows to one table; the attempt's writes commit only if it succeeds.
export default async function toDatabase(data: DataConnector, context: PartitionContext): Promise<void> {
  const rows = await data.toArrow();
  await context.withSession(async (session) => {
    await session.append('daily_sales', rows); // PostgreSQL: one COPY; DuckDB: the appender
    const [count] = await session.query<{ n: bigint }>('SELECT count(*) AS n FROM daily_sales WHERE store = $1', [context.partitionKey]);
    context.log(`${count?.n} rows of ${context.partitionId} in daily_sales`);
  });
}
