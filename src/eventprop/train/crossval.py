"""Leave-one-speaker-out cross-validation (the paper's model selection on SHD).

For every speaker of the training set, a full run is trained on the other speakers and
validated on the held-out one (``data.validation: {kind: speaker, speaker: S}``); the test
set is not touched. The result is the mean +- standard deviation over folds of the held-out
speaker's accuracy after the last epoch (the paper's measure: fixed training, then score) and,
for reference, at the best epoch (optimistic: selected on the same speaker).

Folds are ordinary run directories under one cross-validation folder: an interrupted
cross-validation continues where it stopped (finished folds are read back, a fold with a
checkpoint is resumed).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from eventprop.train.config import ExperimentConfig, validate_config
from eventprop.train.data import load_run_data
from eventprop.train.loop import resume, train
from eventprop.train.runs import RunPaths, check_writable, read_summary, write_json
from eventprop.train.seeds import stream_seeds

__all__ = ["CrossValResult", "crossval", "fold_config"]


@dataclass
class CrossValResult:
    """Per-fold results and their mean and standard deviation."""

    out_dir: Path
    folds: list[dict[str, Any]] = field(default_factory=list)

    def _values(self, key: str) -> np.ndarray:
        return np.array([f[key] for f in self.folds if f.get(key) is not None], dtype=float)

    def stats(self, key: str = "final_accuracy") -> tuple[float, float]:
        v = self._values(key)
        if v.size == 0:
            return float("nan"), float("nan")
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0

    def as_dict(self) -> dict[str, Any]:
        m, s = self.stats("final_accuracy")
        bm, bs = self.stats("best_accuracy")
        return {
            "out_dir": str(self.out_dir.resolve()),
            "n_folds": len(self.folds),
            "final_accuracy_mean": m,
            "final_accuracy_std": s,
            "best_accuracy_mean": bm,
            "best_accuracy_std": bs,
            "folds": self.folds,
        }


def fold_config(cfg: ExperimentConfig, speaker: int) -> ExperimentConfig:
    """The config of the fold that holds out ``speaker`` (no test-set evaluation)."""
    raw = cfg.model_dump(mode="python")
    raw["name"] = f"{cfg.name}-speaker{speaker}"
    raw["data"]["validation"] = {**raw["data"]["validation"], "kind": "speaker", "speaker": speaker}
    raw["data"]["test"] = False
    return validate_config(raw, f"fold speaker {speaker}")


def training_speakers(cfg: ExperimentConfig) -> list[int]:
    """Speaker ids of the training set (needs ``extra/speaker`` in the data)."""
    raw = cfg.model_dump(mode="python")
    raw["data"]["validation"] = {"kind": "none"}
    raw["data"]["test"] = False
    probe = validate_config(raw)
    data = load_run_data(probe, stream_seeds(probe), need=("train",))
    assert data.train is not None
    if data.train.speakers is None:
        raise ValueError(
            f"crossval: the {cfg.data.dataset} training data has no speaker ids "
            "(extra/speaker); leave-one-speaker-out needs them"
        )
    ids = sorted(int(s) for s in np.unique(data.train.speakers) if s >= 0)
    if len(ids) < 2:
        raise ValueError(
            f"crossval: the training data has {len(ids)} speaker(s); leave-one-speaker-out "
            "needs at least 2"
        )
    return ids


def crossval(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    speakers: list[int] | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> CrossValResult:
    """Run (or continue) leave-one-speaker-out cross-validation of ``cfg``."""
    out = (
        Path(out_dir)
        if out_dir is not None
        else (Path(cfg.run.root) / f"{cfg.name}-crossval-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    check_writable(out)
    available = training_speakers(cfg)
    chosen = available if speakers is None else list(speakers)
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(
            f"--speakers: {unknown} not in the training set "
            f"(speakers: {', '.join(map(str, available))})"
        )
    result = CrossValResult(out)

    def say(text: str) -> None:
        if not quiet:
            print(text, file=stream, flush=True)

    say(f"leave-one-speaker-out over speakers {chosen}; folds in {out}")
    for k, s in enumerate(chosen):
        fold_dir = out / f"speaker-{s}"
        paths = RunPaths(fold_dir)
        summary = read_summary(fold_dir)
        say(f"fold {k + 1}/{len(chosen)}: speaker {s} held out")
        if summary is not None and summary.get("status") == "completed":
            say(f"  already done ({fold_dir})")
        elif paths.last.is_file():
            summary = resume(fold_dir, quiet=quiet, stream=stream).summary
        else:
            if fold_dir.is_dir() and any(fold_dir.iterdir()):
                # a fold that stopped before its first checkpoint: nothing to keep
                say(f"  restarting {fold_dir} (stopped before its first checkpoint)")
                shutil.rmtree(fold_dir)
            summary = train(
                fold_config(cfg, s), run_dir=fold_dir, quiet=quiet, stream=stream
            ).summary
        last = summary.get("last_epoch") or {}
        best = summary.get("best") or {}
        fold = {
            "speaker": s,
            "run_dir": str(fold_dir),
            "n_validation": (summary.get("data") or {}).get("validation"),
            "final_accuracy": last.get("val_accuracy"),
            "best_accuracy": best.get("val_accuracy"),
            "best_epoch": best.get("epoch"),
        }
        result.folds.append(fold)
        say(
            f"  speaker {s}: final {100 * (fold['final_accuracy'] or 0):.2f} %, "
            f"best {100 * (fold['best_accuracy'] or 0):.2f} % (epoch {fold['best_epoch']})"
        )
        write_json(out / "crossval.json", result.as_dict())
    m, sd = result.stats("final_accuracy")
    bm, bsd = result.stats("best_accuracy")
    say(
        f"cross-validation ({len(result.folds)} folds): final accuracy "
        f"{100 * m:.2f} +- {100 * sd:.2f} %, best-epoch accuracy "
        f"{100 * bm:.2f} +- {100 * bsd:.2f} %"
    )
    say(f"results: {out / 'crossval.json'}")
    return result
