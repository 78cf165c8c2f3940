/**
 * The queue's defaults, in a module of their own: the CLI names them in its help without loading
 * Redis and BullMQ for every command.
 */

/** The queue's name when none is given: BullMQ queues `dpf` (task batches) and `dpf-drivers` (runs to drive). */
export const DEFAULT_QUEUE_NAME = 'dpf';

/** BullMQ's defaults, dpf worker's too: how long a job lock lasts, and how often a worker looks for jobs whose worker died. */
export const DEFAULT_LOCK_MS = 30_000;
export const DEFAULT_STALLED_CHECK_MS = 30_000;
