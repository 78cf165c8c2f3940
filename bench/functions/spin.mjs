import { performance } from 'node:perf_hooks';

// S1: about 50 ms of CPU-bound work.
export default async function spin() {
  const until = performance.now() + 50;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
}
