// T1: row count and sum of `x` of one small file.
export default async function fileSum(data, context) {
  const x = (await data.toColumns()).x;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i];
  await context.uploadToStage({ rows: x.length, sum }, 'result.json');
}
