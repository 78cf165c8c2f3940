import { DuckDBInstance } from '@duckdb/node-api';
import { DPF } from 'dpf';

// DataFrame mode: each distinct value of the column is one partition. The source is DuckDB SQL
// (Parquet, CSV and JSON files, tables), an Arrow table, records, or { postgres, query }.
const source = "SELECT 'store-' || (i % 3) AS store, i AS day, i * 1.5::DOUBLE AS amount FROM range(300) t(i)";
const dpf = new DPF(new URL('./process.ts', import.meta.url), { stage: './stage' });
const run = await dpf.run({ partitionBy: 'store', source, runId: 'sales-by-store', onExistingArtifacts: 'overwrite' });
console.log(await run.wait());

// One table over what every partition uploaded, with the partition id as a column.
const totals = await run.query('SELECT partition_id, rows, total FROM summaries ORDER BY total DESC', { summaries: 'summary.json' });
console.log(totals.toArray().map((row) => row.toJSON()));

// Writing to a database from the function: context.withSession, on {stage}/dpf.duckdb by default.
const writer = new DPF(new URL('./to-database.ts', import.meta.url), { stage: './stage' }); // or { sessionDatabase: 'postgres://…' }
await (await writer.run({ partitionBy: 'store', source, runId: 'sales-to-db', onExistingArtifacts: 'overwrite' })).wait();
const database = await (await DuckDBInstance.create('./stage/dpf.duckdb')).connect();
console.log((await database.runAndReadAll('SELECT store, count(*) AS days FROM daily_sales GROUP BY store ORDER BY store')).getRowObjectsJS());
database.closeSync();
