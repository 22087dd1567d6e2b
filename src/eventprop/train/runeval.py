"""Evaluating a finished (or running) run again: ``eventprop eval RUN_DIR``.

The network is rebuilt from the run's own resolved config and the checkpoint's stored shapes,
the data from the same config and seeds, so the numbers match what the run reported. The
result is written next to the run (``eval_<split>_<checkpoint>.json`` and a confusion plot).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eventprop.train.checkpoint import TRAINING_KEYS, load_checkpoint, load_model_state
from eventprop.train.data import load_run_data
from eventprop.train.evaluate import evaluate
from eventprop.train.model import build_loss, build_network
from eventprop.train.runs import RunDirError, RunPaths, read_run_config, write_json
from eventprop.train.seeds import stream_seeds

__all__ = ["evaluate_run"]


def evaluate_run(
    run_dir: str | os.PathLike[str],
    split: str = "test",
    checkpoint: str = "best",
    batch_size: int | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Loss, accuracy and confusion of a run's checkpoint on one of its data splits."""
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split: expected train, validation or test, got {split!r}")
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint: expected best or last, got {checkpoint!r}")
    paths = RunPaths(run_dir)
    cfg = read_run_config(paths.root).model_copy(deep=True)
    ck_path = paths.best if checkpoint == "best" else paths.last
    if not ck_path.is_file():
        raise RunDirError(f"{ck_path}: no such checkpoint (the run has not finished an epoch)")
    ck = load_checkpoint(ck_path, required=TRAINING_KEYS)
    meta = ck["meta"]
    seeds = {k: int(v) for k, v in ck.get("seeds", stream_seeds(cfg)).items()}
    cfg.data.test = True
    data = load_run_data(cfg, seeds, need=(split,))
    subset = data.split(split)
    if subset is None:
        raise RunDirError(f"{paths.root}: this run has no {split} set (see data: in config.yaml)")
    if data.n_channels != meta["n_channels"]:
        raise RunDirError(
            f"{paths.root}: the data now has {data.n_channels} input channels, the checkpoint "
            f"{meta['n_channels']}"
        )
    net = build_network(cfg, meta["n_channels"], meta["n_classes"], seeds["init"])
    load_model_state(net, ck, ck_path, cfg.model_dump(mode="json"))
    result = evaluate(
        net,
        build_loss(cfg),
        subset,
        data,
        batch_size or cfg.train.eval_batch_size,
        [layer.n_out for layer in net.hidden],
    )
    if result.confusion.shape[0] != meta["n_classes"]:
        # the evaluated set may lack the highest labels; pad to the model's classes
        import numpy as np

        k = meta["n_classes"]
        full = np.zeros((k, k), dtype=np.int64)
        m = min(k, result.confusion.shape[0])
        full[:m, :m] = result.confusion[:m, :m]
        result.confusion = full
    out = {
        "run_dir": str(paths.root.resolve()),
        "split": split,
        "checkpoint": checkpoint,
        # numbered from 1 like metrics.csv and summary.json (the checkpoint keeps the 0-based
        # index of its last completed epoch, which resuming needs)
        "epoch": int(ck["epoch"]) + 1,
        **result.as_dict(),
    }
    stem = f"eval_{split}_{checkpoint}"
    write_json(paths.root / f"{stem}.json", out)
    if plots:
        from eventprop.train.plots import plot_confusion

        names = meta.get("class_names") or []
        plot_confusion(
            result.confusion, paths.plots / f"confusion_{split}_{checkpoint}.png", names, split
        )
    out["written"] = str(Path(paths.root / f"{stem}.json"))
    return out
