import { Worker } from 'node:worker_threads';

/** How often the watchdog looks for its driver. */
const CHECK_INTERVAL_MS = 250;

/**
 * Makes this child process (`isolation: 'process'`) die with its driver, even while a partition
 * blocks its event loop (`for (;;) {}`, a long synchronous computation) and even when the driver
 * was killed with SIGKILL and could clean nothing up.
 *
 * A child whose main thread is free notices at once: its IPC channel closes ('disconnect'). A
 * blocked one cannot run JavaScript on its main thread at all, so the check runs outside it: in
 * a small worker thread of the child, which keeps running while the main thread is blocked.
 * Every CHECK_INTERVAL_MS it asks whether the driver is still the parent — on POSIX an orphan is
 * handed to init or a subreaper, so `process.ppid` changes; on Windows the parent's pid is probed
 * — and when it is not, it kills the whole process with SIGKILL (nothing is left to report to).
 *
 * Chosen over the alternatives: Linux's `prctl(PR_SET_PDEATHSIG)` needs a native addon (and is
 * Linux-only); a process group the driver kills on exit does nothing when the driver is killed
 * with SIGKILL; a watchdog process of its own would be one more process to orphan.
 */
export function exitWithDriver(): void {
  const driver = process.ppid;
  const watchdog = new Worker(
    `
    const { workerData } = require('node:worker_threads');
    const gone = () => {
      if (process.ppid !== workerData.driver) return true;
      try { process.kill(workerData.driver, 0); return false; } catch (error) { return error.code === 'ESRCH'; }
    };
    setInterval(() => { if (gone()) process.kill(workerData.child, 'SIGKILL'); }, ${CHECK_INTERVAL_MS});
    `,
    {
      eval: true,
      workerData: { driver, child: process.pid },
      // Nothing of the driver's loaders or flags: a few lines of plain JavaScript in a small heap.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
    },
  );
  // It must never keep the child alive, nor take it down if it fails itself.
  watchdog.unref();
  watchdog.on('error', () => undefined);
}
