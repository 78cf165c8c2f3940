/**
 * The partition function of `npm start`: for one origin airport, the mean departure delay and a
 * least-squares line of delay on distance — a small per-airport model — saved as `model.json`.
 */
import type { DataConnector, PartitionContext } from 'dpf';

export interface DelayModel {
  origin: string;
  flights: number;
  meanDelay: number;
  /** Minutes of delay per mile flown (least squares). */
  slope: number | null;
  intercept: number | null;
}

export default async function delayModel(data: DataConnector, context: PartitionContext): Promise<void> {
  // Sums in one pass over the partition's batches (delay and distance are 64-bit integer columns).
  let n = 0;
  let sumX = 0;
  let sumY = 0;
  let sumXX = 0;
  let sumXY = 0;
  for await (const batch of data.batches()) {
    const delays = batch.getChild('delay')!.toArray() as BigInt64Array;
    const distances = batch.getChild('distance')!.toArray() as BigInt64Array;
    for (let i = 0; i < batch.numRows; i++) {
      const x = Number(distances[i]);
      const y = Number(delays[i]);
      n++;
      sumX += x;
      sumY += y;
      sumXX += x * x;
      sumXY += x * y;
    }
  }
  const varianceX = n * sumXX - sumX * sumX;
  const slope = varianceX === 0 ? null : (n * sumXY - sumX * sumY) / varianceX;
  const model: DelayModel = {
    origin: String(context.partitionKey),
    flights: n,
    meanDelay: sumY / n,
    slope,
    intercept: slope === null ? null : (sumY - slope * sumX) / n,
  };
  context.log(`${model.origin}: ${n} flights, mean delay ${model.meanDelay.toFixed(2)} min`);
  await context.uploadToStage(model, 'model.json');
}
