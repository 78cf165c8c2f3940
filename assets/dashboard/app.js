// The dashboard's page: a hash router over three views. `#/` lists the runs, `#/runs/ID` shows a
// run, `#/runs/ID/partitions/PID` one of its partitions (ids URL-encoded). Each view renders into
// <main> and returns a function that stops what it started (timers, event streams, charts).
import { fill, notice } from './dom.js';
import { showPartition } from './partition-page.js';
import { showRun } from './run-page.js';
import { showRuns } from './runs-page.js';

const main = document.getElementById('main');
let stopView = () => {};

/** The view a hash names: `[name, ...decoded ids]`. */
function route(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter((part) => part !== '');
  const ids = parts.map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return undefined;
    }
  });
  if (parts.length === 0) return ['runs'];
  if (parts.length === 2 && parts[0] === 'runs' && ids[1] !== undefined) return ['run', ids[1]];
  if (parts.length === 4 && parts[0] === 'runs' && parts[2] === 'partitions' && ids[1] !== undefined && ids[3] !== undefined) return ['partition', ids[1], ids[3]];
  return ['unknown'];
}

function show() {
  stopView();
  stopView = () => {};
  const [name, runId, partitionId] = route(location.hash);
  fill(main);
  window.scrollTo(0, 0);
  if (name === 'runs') stopView = showRuns(main);
  else if (name === 'run') stopView = showRun(main, runId);
  else if (name === 'partition') stopView = showPartition(main, runId, partitionId);
  else fill(main, notice(`Nothing here: ${location.hash}. Go back to the runs list.`, 'error'));
}

window.addEventListener('hashchange', show);
show();
