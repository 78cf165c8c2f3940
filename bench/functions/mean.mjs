// W1: row count and mean of `value`, saved as the partition's result.
export default async function mean(data, context) {
  const values = (await data.toColumns()).value;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  await context.uploadToStage({ rows: values.length, mean: sum / values.length }, 'result.json');
}
