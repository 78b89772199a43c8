"""Benchmark: TemporalAnomalyScorer vs a windowed-Gaussian baseline on labelled streams.

Protocol per stream: ``fit`` on a prefix, ``anomaly_score`` (streaming, the reference
updating as it goes) on the rest; the baseline scores each point by its z-score against
the mean and standard deviation of the previous ``W`` points (the windowed Gaussian of
the anomaly-detection literature), for several W (the best W per stream is reported, which
favours the baseline). Metrics on the scored part: average precision (PR-AUC) of the
point labels, ROC-AUC, and *hit*: the highest score lies within ``margin`` points of a
labelled anomaly (the UCR archive's accuracy rule).

Corpus (read at run time from installed packages; no data file is copied into this
repository). No public labelled corpus of real-world *operational* streams (CPU,
latency, traffic) ships inside a PyPI, Debian or npm package that we could find; the
Numenta Anomaly Benchmark is deliberately not used (kept for an independent check).
What is used:

* ``ucr_internal_bleeding16`` — real physiological signal, UCR/KDD-21 anomaly archive
  stream 135 with its official train prefix (``aeon``: ``aeon/datasets/data/KDD-TSAD_135``);
* ``mitdb`` — real ECG (MIT-BIH arrhythmia) with a labelled abnormal segment (``sktime``:
  ``sktime/datasets/data/mitdb/mitdb.csv``; the first 40 % is the prefix);
* ``spliced:<set>`` — real recorded instances of UCR classification sets shipped by
  ``aeon`` (ItalyPowerDemand, GunPoint, ArrowHead): instances of one class in a seeded
  order with three of another class in their place after the prefix, as several
  KDD-21 streams were made (reported apart: the values are real, the stream is built);
* ``yahoo_synthetic`` — ``sktime/datasets/data/yahoo/yahoo.csv``: trend + season + spikes,
  undocumented provenance matching Yahoo S5's synthetic sets (reported apart: synthetic);
* ``injected:<series>`` — real-world series shipped by ``aeon`` (airline passengers, lynx,
  solar, Longley, …) with spikes, level shifts and variance changes injected at seeded
  positions after the prefix (reported apart: the anomalies are artificial).

Install the two corpora without their dependencies (nothing is imported from them)::

    .venv/bin/pip install --no-deps aeon sktime
    nice -n 10 .venv/bin/python benchmarks/bench_anomaly_streams.py [--json out.json]
        [--groups real,spliced,synthetic] [--params '{"combine": "max"}']

Each group ends with its wins (ours above the baseline's best W) and medians.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from guardian_lib.models.temporal import TemporalAnomalyScorer

WINDOWS = (20, 50, 100, 400)


def _file(package: str, rel: str) -> str:
    try:
        path = distribution(package).locate_file(rel)
    except PackageNotFoundError as exc:
        raise SystemExit(
            f"package {package!r} is not installed: pip install --no-deps {package}"
        ) from exc
    if not path.exists():
        raise SystemExit(f"{package} does not ship {rel} (another version?)")
    return str(path)


def real_streams() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """name → (values, labels, prefix length) of the real-world labelled streams."""
    out = {}
    base = "aeon/datasets/data/KDD-TSAD_135/135_UCR_Anomaly_InternalBleeding16_"
    train = pd.read_csv(_file("aeon", base + "TRAIN.csv"))
    test = pd.read_csv(_file("aeon", base + "TEST.csv"))
    # The TEST file is the whole series; its first len(TRAIN) points are the train part.
    out["ucr_internal_bleeding16"] = (
        test["value"].to_numpy(float),
        test["is_anomaly"].to_numpy(int),
        len(train),
    )
    mit = pd.read_csv(_file("sktime", "sktime/datasets/data/mitdb/mitdb.csv"))
    out["mitdb"] = (mit["data"].to_numpy(float), mit["label"].to_numpy(int), int(0.4 * len(mit)))
    return out


def synthetic_streams(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """The synthetic Yahoo-like stream and real series with injected anomalies."""
    out = {}
    y = pd.read_csv(_file("sktime", "sktime/datasets/data/yahoo/yahoo.csv"))
    out["yahoo_synthetic"] = (y["data"].to_numpy(float), y["label"].to_numpy(int), 300)
    rng = np.random.default_rng(seed)
    for name, rel in (
        ("airline", "aeon/datasets/data/Airline/Airline.csv"),
        ("lynx", "aeon/datasets/data/Lynx/Lynx.csv"),
        ("solar", "aeon/datasets/data/solar/solar.csv"),
        ("shampoo", "aeon/datasets/data/ShampooSales/ShampooSales.csv"),
    ):
        try:
            frame = pd.read_csv(_file("aeon", rel))
        except SystemExit:
            continue
        numeric = frame.select_dtypes("number")
        if numeric.empty or len(numeric) < 60:
            continue
        x = numeric.iloc[:, -1].to_numpy(float).copy()
        labels = np.zeros(len(x), dtype=int)
        prefix = len(x) // 3
        sd = np.nanstd(np.diff(x)) or 1.0
        free = np.arange(prefix + 5, len(x) - 8)
        spots = np.sort(rng.choice(free, size=min(3, len(free) // 10), replace=False))
        for j, pos in enumerate(spots):
            kind = j % 3
            if kind == 0:  # spike
                x[pos] += rng.choice([-1, 1]) * 6 * sd
                labels[pos] = 1
            elif kind == 1:  # level shift lasting 5 points
                x[pos : pos + 5] += rng.choice([-1, 1]) * 4 * sd
                labels[pos : pos + 5] = 1
            else:  # variance burst
                x[pos : pos + 5] += rng.normal(0, 4 * sd, 5)
                labels[pos : pos + 5] = 1
        out[f"injected:{name}"] = (x, labels, prefix)
    return out


#: UCR classification sets shipped by aeon whose instances are spliced into streams:
#: (name, class of the normal instances). [-]
SPLICED = (("ItalyPowerDemand", "1"), ("GunPoint", "1"), ("ArrowHead", "0"))


def _ucr_instances(name: str) -> tuple[list[np.ndarray], list[str]]:
    """Instances and class labels of a univariate UCR set (TRAIN then TEST) in aeon."""
    series, labels = [], []
    for part in ("TRAIN", "TEST"):
        with open(_file("aeon", f"aeon/datasets/data/{name}/{name}_{part}.ts")) as fh:
            lines = fh.read().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data")
        for line in lines[start + 1 :]:
            if not line.strip():
                continue
            values, label = line.rsplit(":", 1)
            series.append(np.array(values.split(","), dtype=float))
            labels.append(label.strip())
    return series, labels


def spliced_streams(
    seed: int = 0, max_rows: int = 6000, n_anomalies: int = 3
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Streams of real recorded instances of one class with a few of another class.

    As several streams of the UCR/KDD-21 anomaly archive were made: instances of the
    normal class (winter days of Italian power demand, the "gun" gesture, one arrowhead
    type) in a seeded order, with ``n_anomalies`` instances of another class in their
    place after the prefix (the first 40 %). The values are real; the stream is
    constructed (reported apart from the real streams).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, normal in SPLICED:
        try:
            series, labels = _ucr_instances(name)
        except SystemExit:
            continue
        normal_idx = [i for i, c in enumerate(labels) if c == normal]
        other_idx = [i for i, c in enumerate(labels) if c != normal]
        length = len(series[normal_idx[0]])
        count = min(len(normal_idx), max_rows // length)
        order = rng.permutation(normal_idx)[:count]
        prefix_instances = int(0.4 * count)
        # Anomalous instances at least two apart, after the prefix.
        slots = np.arange(prefix_instances + 1, count - 1, 2)
        chosen = np.sort(rng.choice(slots, size=min(n_anomalies, len(slots)), replace=False))
        pieces, marks = [], []
        for pos, idx in enumerate(order):
            if pos in chosen:
                idx = int(rng.choice(other_idx))
            pieces.append(series[idx])
            marks.append(np.full(length, int(pos in chosen)))
        out[f"spliced:{name}"] = (
            np.concatenate(pieces),
            np.concatenate(marks),
            prefix_instances * length,
        )
    return out


def windowed_gaussian(x: np.ndarray, window: int) -> np.ndarray:
    """|z| of each point against the previous ``window`` points (0 until there are 2)."""
    s = pd.Series(x)
    mean = s.shift(1).rolling(window, min_periods=2).mean()
    std = s.shift(1).rolling(window, min_periods=2).std()
    z = ((s - mean).abs() / std.replace(0, np.nan)).fillna(0.0)
    return z.to_numpy()


def _metrics(labels: np.ndarray, score: np.ndarray, margin: int) -> dict[str, float]:
    if labels.min() == labels.max():
        return {"ap": float("nan"), "roc_auc": float("nan"), "hit": float("nan")}
    top = int(np.argmax(score))
    where = np.flatnonzero(labels)
    hit = float(np.min(np.abs(where - top)) <= margin)
    return {
        "ap": float(average_precision_score(labels, score)),
        "roc_auc": float(roc_auc_score(labels, score)),
        "hit": hit,
    }


def evaluate_stream(
    x: np.ndarray, labels: np.ndarray, prefix: int, params: dict | None = None
) -> dict:
    """Scorer and baseline metrics on one stream (scored part only).

    ``params`` are passed to :class:`TemporalAnomalyScorer` (defaults otherwise, with
    the period searched up to a third of the prefix).
    """
    margin = max(10, int(0.01 * len(x)))
    kw = {"max_period": min(400, prefix // 3), **(params or {})}
    started = time.process_time()
    scorer = TemporalAnomalyScorer(**kw).fit(pd.DataFrame({"value": x[:prefix]}))
    ours = scorer.raw_score(pd.DataFrame({"value": x[prefix:]}))
    cpu = time.process_time() - started
    rest = labels[prefix:]
    res = {"n": int(len(x)), "prefix": int(prefix), "anomalous_points": int(rest.sum()),
           "period": int(scorer.period_), "members": list(scorer.members_),
           "cpu_s": round(cpu, 2), "temporal": _metrics(rest, ours, margin)}  # fmt: skip
    base = {}
    for w in WINDOWS:
        z = windowed_gaussian(x, w)[prefix:]
        base[w] = _metrics(rest, z, margin)
    best_w = max(base, key=lambda w: (np.nan_to_num(base[w]["ap"]), base[w]["roc_auc"]))
    res["baseline_best_window"] = best_w
    res["baseline"] = base[best_w]
    res["baseline_w100"] = base[100]
    return res


def summarise(rows: dict[str, dict]) -> dict[str, float]:
    """Wins (ours above the baseline's best W) and medians over a group of streams."""
    ap = np.array([[r["temporal"]["ap"], r["baseline"]["ap"]] for r in rows.values()])
    roc = np.array([[r["temporal"]["roc_auc"], r["baseline"]["roc_auc"]] for r in rows.values()])
    return {
        "streams": len(rows),
        "ap_wins": int((ap[:, 0] > ap[:, 1]).sum()),
        "roc_wins": int((roc[:, 0] > roc[:, 1]).sum()),
        "median_ap": [float(np.median(ap[:, 0])), float(np.median(ap[:, 1]))],
        "median_roc_auc": [float(np.median(roc[:, 0])), float(np.median(roc[:, 1]))],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--groups", default="real,spliced,synthetic", help="comma-separated stream groups"
    )
    ap.add_argument(
        "--params", default="{}", help="JSON of TemporalAnomalyScorer parameters (ablations)"
    )
    a = ap.parse_args()
    params = json.loads(a.params)
    loaders = {
        "real": real_streams,
        "spliced": lambda: spliced_streams(a.seed),
        "synthetic": lambda: synthetic_streams(a.seed),
    }
    results = {}
    for group in a.groups.split(","):
        results[group] = {
            name: evaluate_stream(x, labels, prefix, params)
            for name, (x, labels, prefix) in loaders[group]().items()
        }
    print(f"{'stream':<28}{'AP ours':>9}{'AP base':>9}{'ROC ours':>10}{'ROC base':>10}"
          f"{'hit ours':>10}{'hit base':>10}  base W  cpu s")  # fmt: skip
    for group, rows in results.items():
        print(f"-- {group}")
        for name, r in rows.items():
            t, b = r["temporal"], r["baseline"]
            print(f"{name:<28}{t['ap']:>9.3f}{b['ap']:>9.3f}{t['roc_auc']:>10.3f}"
                  f"{b['roc_auc']:>10.3f}{t['hit']:>10.0f}{b['hit']:>10.0f}"
                  f"  {r['baseline_best_window']:>6}  {r['cpu_s']:.1f}")  # fmt: skip
        sm = summarise(rows)
        results[group]["_summary"] = sm
        print(f"   wins AP {sm['ap_wins']}/{sm['streams']}, ROC {sm['roc_wins']}/{sm['streams']}; "
              f"median AP {sm['median_ap'][0]:.3f} / {sm['median_ap'][1]:.3f}, "
              f"ROC {sm['median_roc_auc'][0]:.3f} / {sm['median_roc_auc'][1]:.3f}")  # fmt: skip
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
