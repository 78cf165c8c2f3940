"""W1 and W2 as a pandas user writes them, shared by the pandas and Dask peers of `npm run bench`.

Each workload has the per-group function handed to `groupby(key).apply(fn)` -- the analogue of
the DPF partition function in bench/functions/ (mean.mjs, delay-regression.mjs), doing the same
arithmetic -- and, for comparison only, the vectorised `groupby.agg` a pandas expert would write.
Answers leave as columns named as dpf's results are ({key: [...], rows: [...], mean: [...]} for W1,
{origin: [...], n: [...], mean: [...], ...} for W2); the bench checks them against DuckDB's.
"""
import json
import math
import sys
import time

import numpy as np
import pandas as pd


def mean_per_key(part):
    """W1, per key: the row count and the mean of `value` (bench/functions/mean.mjs)."""
    values = part["value"]
    return pd.Series({"rows": float(len(values)), "mean": values.mean()})


def delay_regression(part):
    """W2, per origin: n, mean delay, least-squares slope and intercept of delay on distance
    (bench/functions/delay-regression.mjs: the same sums, the same formula)."""
    x = part["distance"].to_numpy(dtype=np.float64)
    y = part["delay"].to_numpy(dtype=np.float64)
    n = float(len(x))
    sx, sy, sxx, sxy = x.sum(), y.sum(), np.dot(x, x), np.dot(x, y)
    # An airport whose flights all have one distance has no slope: NaN (DuckDB: NULL).
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    return pd.Series({"n": n, "mean": sy / n, "slope": slope, "intercept": (sy - slope * sx) / n})


def w1_agg(df):
    """W1 vectorised: one groupby.agg, no Python per key."""
    return df.groupby("key")["value"].agg(rows="count", mean="mean")


def w2_agg(df):
    """W2 vectorised: the four sums per origin in one groupby.agg, then the formula on columns."""
    x = df["distance"].astype(np.float64)
    y = df["delay"].astype(np.float64)
    s = pd.DataFrame({"origin": df["origin"], "x": x, "y": y, "xx": x * x, "xy": x * y}).groupby("origin").agg(
        n=("x", "size"), sx=("x", "sum"), sy=("y", "sum"), sxx=("xx", "sum"), sxy=("xy", "sum"))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (s.n * s.sxy - s.sx * s.sy) / (s.n * s.sxx - s.sx * s.sx)
    return pd.DataFrame({"n": s.n, "mean": s.sy / s.n, "slope": slope, "intercept": (s.sy - slope * s.sx) / s.n})


WORKLOADS = {
    "W1": {"key": "key", "fn": mean_per_key, "agg": w1_agg, "columns": ["rows", "mean"]},
    "W2": {"key": "origin", "fn": delay_regression, "agg": w2_agg, "columns": ["n", "mean", "slope", "intercept"]},
}


def answer(frame):
    """A result frame indexed by the key, as JSON-ready columns (non-finite numbers: null)."""
    frame = frame.reset_index()
    out = {}
    for column in frame.columns:
        values = frame[column].tolist()
        out[column] = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    return out


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 == 1 else (ordered[middle - 1] + ordered[middle]) / 2


def clock():
    return time.perf_counter()


def emit(record):
    """The one JSON line the bench reads: the last line of stdout."""
    sys.stdout.write(json.dumps(record, allow_nan=False) + "\n")
    sys.stdout.flush()
