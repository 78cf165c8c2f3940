"""The Dask peer of W1/W2: `python3 dask_peer.py W1|W2 data.csv runs warm-ups cluster-timeout-seconds`.

A LocalCluster of 2 worker processes with one thread each (dpf's default is one worker per CPU;
this machine's bench has 2), started once and timed on its own; if it is not up within the
timeout (the bench: 60 s) the script says so and exits rather than waiting. Then `warm-ups` untimed
runs (the bench: one) and `runs` timed runs, each of:

- end to end: `dd.read_csv(csv).groupby(key).apply(fn, meta=...).compute()`, one graph;
- load: `dd.read_csv(csv).persist()` until the workers hold every partition;
- apply in memory: `groupby(key).apply(fn, meta=...).compute()` on that persisted frame.

The CSV is read in 4 blocks (2 per worker) so both workers read and the groupby shuffles, as
it would on data that needs a cluster; Dask's 64 MB default would make W1 a single partition.
Prints one JSON line: every time in seconds, and the answers.
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

started = time.perf_counter()
sys.dont_write_bytecode = True  # no __pycache__ in bench/peers/
try:  # timed: the imports are reported on their own
    import dask
    import dask.dataframe as dd
    import distributed
    import pandas as pd
    from distributed import Client, LocalCluster, wait

    from workloads import WORKLOADS, answer, clock, emit
except ImportError as error:  # no Dask here: the bench notes it and goes on
    print(json.dumps({"skipped": f"{sys.executable} cannot import {error.name}"}))
    sys.exit(0)

imported = clock()
WORKERS = 2


def start_cluster(timeout):
    """A LocalCluster, or None if it is not up within `timeout` seconds (started in a thread, so
    a cluster that hangs cannot hold the bench)."""
    box = {}

    def start():
        try:
            box["cluster"] = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None)
        except BaseException as error:  # reported, not raised: the bench goes on without Dask
            box["error"] = f"{type(error).__name__}: {error}"

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None, f"LocalCluster({WORKERS} worker processes) did not come up within {timeout:g} s"
    return box.get("cluster"), box.get("error")


def main(workload, csv, runs, warm_ups, timeout):
    spec = WORKLOADS[workload]
    scratch = tempfile.mkdtemp(prefix="dpf-bench-dask-")
    dask.config.set({"temporary-directory": scratch})
    t0 = clock()
    cluster, error = start_cluster(timeout)
    cluster_start = clock() - t0
    if cluster is None:
        emit({"peer": "dask", "failed": error, "clusterStart": cluster_start})
        os._exit(3)  # a cluster half up may hold threads and processes: do not wait for them
    client = Client(cluster)
    # Dask cuts a file into size // blocksize equal blocks.
    blocksize = max(1, os.path.getsize(csv) // (2 * WORKERS))
    partitions = dd.read_csv(csv, blocksize=blocksize).npartitions
    meta = {column: "f8" for column in spec["columns"]}
    load, apply, end_to_end = [], [], []
    result = None
    try:
        for run in range(-warm_ups, runs):
            t0 = clock()
            result = dd.read_csv(csv, blocksize=blocksize).groupby(spec["key"]).apply(spec["fn"], meta=meta).compute()
            t1 = clock()
            frame = dd.read_csv(csv, blocksize=blocksize).persist()
            wait(frame)
            t2 = clock()
            in_memory = frame.groupby(spec["key"]).apply(spec["fn"], meta=meta).compute()
            t3 = clock()
            del frame
            if len(in_memory) != len(result):
                raise RuntimeError(f"the persisted frame gave {len(in_memory)} groups, the one-graph run {len(result)}")
            if run >= 0:
                end_to_end.append(t1 - t0)
                load.append(t2 - t1)
                apply.append(t3 - t2)
        emit({
            "peer": "dask", "version": dask.__version__, "distributed": distributed.__version__, "pandas": pd.__version__,
            "python": sys.version.split()[0], "workers": WORKERS, "partitions": partitions,
            "import": imported - started, "clusterStart": cluster_start,
            "load": load, "apply": apply, "endToEnd": end_to_end, "answer": answer(result),
        })
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
