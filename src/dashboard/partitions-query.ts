import type { PlannedPartition } from '../model/partition.js';
import type { DPFRun } from '../run/dpf-run.js';
import type { PartitionState } from '../run/run-state.js';
import { PARTITION_STATUSES, PartitionStatus } from '../status.js';
import type { PartitionRow, PartitionsPage } from './api-types.js';
import { redact } from './redact.js';

/** The most rows one page holds. */
export const MAX_PAGE_ROWS = 1000;

export const SORT_KEYS = ['id', 'status', 'duration', 'rows', 'attempts'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** What the partitions table asks for: a filter, a search, a sort and a page. */
export interface PartitionsQuery {
  /** Only these statuses; every one when undefined. */
  statuses: ReadonlySet<PartitionStatus> | undefined;
  /** Ids containing this text, case-insensitively; every id when empty. */
  search: string;
  sort: SortKey;
  descending: boolean;
  offset: number;
  limit: number;
}

/** What stays the same for a run's partitions (their ids never change): lowercased ids, and their order by id. */
interface IdIndex {
  partitions: readonly PlannedPartition[];
  lowered: string[];
  byId: Uint32Array;
}

const idIndexes = new WeakMap<DPFRun, IdIndex>();

function idIndex(run: DPFRun, partitions: readonly PlannedPartition[]): IdIndex {
  const known = idIndexes.get(run);
  // A resumed run may add partitions (a new partition list): built again then.
  if (known !== undefined && known.partitions === partitions && known.lowered.length === partitions.length) return known;
  const lowered = partitions.map((partition) => partition.id.toLowerCase());
  const byId = Uint32Array.from(partitions.keys());
  byId.sort((a, b) => compareStrings(partitions[a]!.id, partitions[b]!.id) || a - b);
  const index = { partitions, lowered, byId };
  idIndexes.set(run, index);
  return index;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const STATUS_RANK = new Map(PARTITION_STATUSES.map((status, rank) => [status, rank]));

/**
 * One page of a run's partitions table, filtered, searched and sorted on the run's state as last
 * observed. It walks the states in place (a 100,000-partition run makes no object per partition,
 * only an array of the matching indices) and builds rows for the page only.
 */
export function queryPartitions(run: DPFRun, query: PartitionsQuery): PartitionsPage {
  const { partitions, states, abandoned } = run.partitionStates();
  const { lowered, byId } = idIndex(run, partitions);
  const shown = (index: number): PartitionStatus => {
    const status = states[index]!.status;
    return abandoned && status === PartitionStatus.RUNNING ? PartitionStatus.PENDING : status;
  };
  const needle = query.search.toLowerCase();
  const selected = (index: number): boolean => (query.statuses === undefined || query.statuses.has(shown(index))) && (needle === '' || lowered[index]!.includes(needle));

  // In id order, so that every sort breaks its ties by id.
  const matching = new Uint32Array(byId.length);
  let count = 0;
  for (let k = 0; k < byId.length; k++) {
    const index = byId[k]!;
    if (selected(index)) matching[count++] = index;
  }
  let order = matching.subarray(0, count);
  if (query.sort === 'id') {
    if (query.descending) order = order.slice().reverse();
  } else {
    const key = sortKey(query.sort, states, shown);
    // Ties keep the id order (a stable sort); partitions without a value come last either way.
    const direction = query.descending ? -1 : 1;
    const sorted = Array.from(order);
    sorted.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1;
      return (x - y) * direction;
    });
    order = Uint32Array.from(sorted);
  }
  const rows: PartitionRow[] = [];
  const end = Math.min(count, query.offset + query.limit);
  for (let k = query.offset; k < end; k++) rows.push(partitionRow(partitions[order[k]!]!, states[order[k]!]!, shown(order[k]!)));
  return { total: partitions.length, matching: count, offset: query.offset, rows };
}

function sortKey(sort: Exclude<SortKey, 'id'>, states: readonly PartitionState[], shown: (index: number) => PartitionStatus): (index: number) => number | undefined {
  switch (sort) {
    case 'status':
      return (index) => STATUS_RANK.get(shown(index));
    case 'attempts':
      return (index) => states[index]!.attempts;
    case 'rows':
      return (index) => states[index]!.numRows;
    case 'duration':
      return (index) => durationOf(states[index]!);
  }
}

/** How long the partition's last attempt took, once finished. */
export function durationOf(state: PartitionState): number | undefined {
  return state.startedAt !== undefined && state.finishedAt !== undefined ? state.finishedAt - state.startedAt : undefined;
}

function partitionRow(partition: PlannedPartition, state: PartitionState, status: PartitionStatus): PartitionRow {
  const row: PartitionRow = { id: partition.id, status, attempts: state.attempts };
  const duration = durationOf(state);
  if (duration !== undefined) row.durationMs = duration;
  if (state.numRows !== undefined) row.rows = state.numRows;
  if (state.error !== undefined) row.error = redact(`${state.error.name}: ${state.error.message.split('\n')[0]}`);
  return row;
}
