import { describe, expect, it } from 'vitest';
import { ProgressBar, type ProgressStream } from '../src/run/progress-bar.js';
import { RunState } from '../src/run/run-state.js';
import { PartitionStatus } from '../src/status.js';

/** A terminal of `columns` columns that keeps what is drawn on it. */
function fakeTerminal(columns: number): ProgressStream & { writes: string[]; columns: number } {
  const writes: string[] = [];
  return { isTTY: true, columns, writes, write: (chunk: string) => writes.push(chunk) > 0 };
}

/** The lines a terminal shows for what was written: each `\r` starts the line again, each `\n` a new one. */
function drawnLines(writes: readonly string[]): string[] {
  return writes
    .join('')
    .replaceAll('\u001b[K', '')
    .split(/[\r\n]/)
    .filter((line) => line !== '');
}

/** A run of `total` partitions with some finished, some running. */
function stateOf(total: number): RunState {
  const state = new RunState(total);
  const at = Date.now();
  state.apply([
    { t: 'running', i: [0, 1, 2, 3, 4], a: [1, 1, 1, 1, 1], d: [0, 1, 2, 3, 4], at },
    { t: 'partition', i: 0, s: PartitionStatus.DONE, a: 1, at },
    { t: 'partition', i: 1, s: PartitionStatus.DONE, a: 1, at },
    { t: 'partition', i: 2, s: PartitionStatus.FAILED, a: 1, at },
  ]);
  return state;
}

describe('the progress bar', () => {
  it.each([120, 80, 60, 40, 20])('fits a terminal of %i columns on every redraw', (columns) => {
    const terminal = fakeTerminal(columns);
    const bar = new ProgressBar('store-sales-by-region-and-week-2024', stateOf(1_000_000), terminal);
    for (let n = 0; n < 5; n++) bar.render(false);
    bar.render(true);
    const lines = drawnLines(terminal.writes);
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const line of lines) expect([...line].length).toBeLessThan(columns);
    // What matters most stays: how far the run is.
    if (columns >= 40) for (const line of lines) expect(line).toContain('3/1000000');
  });

  it('shows everything, with the full bar, on a wide terminal', () => {
    const terminal = fakeTerminal(200);
    new ProgressBar('run', stateOf(10), terminal).render(true);
    expect(drawnLines(terminal.writes)).toEqual([expect.stringMatching(/^run \[█{9}░{21}\] 3\/10 · 2 done · 1 failed · 2 running · \d+\.\ds$/)]);
  });

  it('follows the terminal when it is resized', () => {
    const terminal = fakeTerminal(200);
    const bar = new ProgressBar('run', stateOf(10), terminal);
    bar.render(false);
    terminal.columns = 50;
    bar.render(false);
    const [wide, narrow] = drawnLines(terminal.writes);
    expect([...wide!].length).toBeGreaterThanOrEqual(50);
    expect([...narrow!].length).toBeLessThan(50);
  });
});
