"""Accuracy table of finished (or partly finished) training runs, as the README quotes it.

    python benchmarks/summarize_runs.py RUN_DIR [RUN_DIR ...]
    python benchmarks/summarize_runs.py runs/small-grid-s* runs/small-exact-s* --markdown

Runs are grouped by (config name, timing, data directory); each group gets test accuracy as
mean +- std over its runs (n shown), the best validation accuracy and its epoch, the epochs
completed and the mean training time per epoch. A run that has not finished yet has no
summary test result: its test accuracy is read from ``eval_test_best.json`` when
``eventprop eval RUN --split test`` wrote one, else shown as "-".
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import yaml


def _test_accuracy(run: Path) -> float | None:
    summary = run / "summary.json"
    if summary.is_file():
        test = json.loads(summary.read_text()).get("test")
        if test and test.get("accuracy") is not None:
            return float(test["accuracy"])
    for name in ("eval_test_best.json", "eval_test.json"):
        path = run / name
        if path.is_file():
            data = json.loads(path.read_text())
            acc = data.get("accuracy", (data.get("metrics") or {}).get("accuracy"))
            if acc is not None:
                return float(acc)
    return None


def describe(run: Path) -> dict:
    """One run's key numbers (from config.yaml, metrics.csv and summary.json)."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    if not rows:
        raise ValueError(f"{run}: metrics.csv has no epochs yet")
    best = max(rows, key=lambda r: float(r["val_accuracy"] or 0.0))
    return {
        "run": str(run),
        "group": (cfg["name"], cfg["model"]["timing"], cfg["data"].get("directory")),
        "seed": cfg.get("seed"),
        "epochs": len(rows),
        "planned": cfg["train"]["epochs"],
        "best_val": float(best["val_accuracy"]),
        "best_epoch": int(best["epoch"]),
        "test": _test_accuracy(run),
        "epoch_s": statistics.mean(float(r["train_time_s"]) for r in rows),
    }


def _pct(values: list[float]) -> str:
    if not values:
        return "-"
    mean = 100 * statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.1f} %"
    return f"{mean:.1f} +- {100 * statistics.stdev(values):.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    groups: dict[tuple, list[dict]] = {}
    for run in args.runs:
        info = describe(run)
        groups.setdefault(info["group"], []).append(info)
    head = ["config", "timing", "data", "runs (seeds)", "test", "best val (epoch)", "epochs",
            "train s/epoch"]  # fmt: skip
    lines = []
    for (name, timing, data), runs in groups.items():
        tests = [r["test"] for r in runs if r["test"] is not None]
        seeds = ",".join(str(r["seed"]) for r in runs)
        vals = "; ".join(f"{100 * r['best_val']:.1f} % ({r['best_epoch']})" for r in runs)
        epochs = ",".join(f"{r['epochs']}/{r['planned']}" for r in runs)
        per_epoch = statistics.mean(r["epoch_s"] for r in runs)
        where = Path(data).name if data else "-"
        test = f"{_pct(tests)} (n={len(tests)})"
        lines.append([name, timing, where, f"{len(runs)} ({seeds})", test, vals, epochs,
                      f"{per_epoch:.0f}"])  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        for line in [head, *lines]:
            print("  ".join(f"{c:>18}" for c in line))


if __name__ == "__main__":
    main()
