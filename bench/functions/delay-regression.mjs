// W2: mean delay and the least-squares line of delay on distance, per origin airport.
export default async function delayRegression(data, context) {
  let n = 0, sumX = 0, sumY = 0, sumXX = 0, sumXY = 0;
  for await (const batch of data.batches()) {
    const delays = batch.getChild('delay').toArray();
    const distances = batch.getChild('distance').toArray();
    for (let i = 0; i < batch.numRows; i++) {
      const x = Number(distances[i]);
      const y = Number(delays[i]);
      n++; sumX += x; sumY += y; sumXX += x * x; sumXY += x * y;
    }
  }
  const slope = (n * sumXY - sumX * sumY) / (n * sumXX - sumX * sumX);
  await context.uploadToStage({ n, mean: sumY / n, slope, intercept: (sumY - slope * sumX) / n }, 'result.json');
}
