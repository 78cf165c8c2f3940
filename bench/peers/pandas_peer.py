"""The pandas peer of W1/W2: `python3 pandas_peer.py W1|W2 data.csv runs warm-ups`.

Each run: `pd.read_csv` (load), then `df.groupby(key).apply(fn)` on the loaded frame (in memory),
then -- outside the end-to-end time -- the vectorised groupby.agg. `warm-ups` untimed runs first
(the bench: one; page cache, lazy imports, first-call paths), then `runs` timed runs. Python's start and `import pandas`
are not in any run's time (dpf's process start and imports are not in its times either); the
import time is reported on its own. Prints one JSON line: every time in seconds, and the answers.
"""
import json
import sys
import time

started = time.perf_counter()
sys.dont_write_bytecode = True  # no __pycache__ in bench/peers/
try:  # timed: the import is reported on its own
    import pandas as pd

    from workloads import WORKLOADS, answer, clock, emit
except ImportError as error:  # no pandas here: the bench notes it and goes on
    print(json.dumps({"skipped": f"{sys.executable} cannot import {error.name}"}))
    sys.exit(0)

imported = clock()


def main(workload, csv, runs, warm_ups):
    spec = WORKLOADS[workload]
    load, apply, end_to_end, agg = [], [], [], []
    result = vectorised = None
    for run in range(-warm_ups, runs):
        t0 = clock()
        df = pd.read_csv(csv)
        t1 = clock()
        result = df.groupby(spec["key"]).apply(spec["fn"])
        t2 = clock()
        vectorised = spec["agg"](df)
        t3 = clock()
        if run >= 0:
            load.append(t1 - t0)
            apply.append(t2 - t1)
            end_to_end.append(t2 - t0)
            agg.append(t3 - t2)
    emit({
        "peer": "pandas", "version": pd.__version__, "python": sys.version.split()[0], "rows": len(df),
        "import": imported - started, "load": load, "apply": apply, "endToEnd": end_to_end, "agg": agg,
        "answer": answer(result), "aggAnswer": answer(vectorised),
    })


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
