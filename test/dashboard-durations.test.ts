import { describe, expect, it } from 'vitest';
import { histogramOf } from '../src/dashboard/durations.js';

const histogram = (durations: number[]) => histogramOf(Float64Array.from(durations).sort());

describe("the dashboard's histogram of partition durations", () => {
  it('bins durations of one order of magnitude in equal bins', () => {
    const result = histogram([10, 12, 14, 16, 18, 20, 11, 13, 15]);
    expect(result.scale).toBe('linear');
    expect(result.edges[0]).toBe(10);
    expect(result.edges.at(-1)).toBe(20);
    const widths = result.edges.slice(1).map((edge, k) => edge - result.edges[k]!);
    for (const width of widths) expect(width).toBeCloseTo(widths[0]!, 9);
    expect(result.counts.reduce((sum, count) => sum + count, 0)).toBe(9);
    expect(result).toMatchObject({ n: 9, p50: 14, max: 20 });
  });

  it('bins skewed durations on a log scale, so the slow tail is not one bar among empty ones', () => {
    // 200 partitions of 0–2 ms, 20 of about 30 ms, one of 2 s.
    const durations = [...Array.from({ length: 200 }, (_, k) => k % 3), ...Array.from({ length: 20 }, () => 30), 2000];
    const result = histogram(durations);
    expect(result.scale).toBe('log');
    expect(result.edges[0]).toBe(1);
    expect(result.edges.at(-1)).toBe(2000);
    const ratios = result.edges.slice(1).map((edge, k) => edge / result.edges[k]!);
    for (const ratio of ratios) expect(ratio).toBeCloseTo(ratios[0]!, 9);
    // Every duration in the bin its edges say (0 ms ones in the first).
    const binOf = (d: number) => Math.max(0, result.edges.findIndex((edge, k) => k + 1 < result.edges.length && d >= edge && (d < result.edges[k + 1]! || k + 2 === result.edges.length)));
    const expected = new Array<number>(result.counts.length).fill(0);
    for (const d of durations) expected[binOf(d)]!++;
    expect(result.counts).toEqual(expected);
    expect(result.counts.at(-1)).toBe(1);
    expect(result).toMatchObject({ n: 221, p50: 1, max: 2000 });
  });

  it('has one bin when every partition took as long, and none when none finished', () => {
    expect(histogram([5, 5, 5])).toMatchObject({ counts: [3], n: 3, scale: 'linear' });
    expect(histogram([])).toEqual({ edges: [], counts: [], n: 0, scale: 'linear' });
  });
});
