"""The training loop: epochs of EventProp (or BPTT) updates, validation, checkpoints, reports.

One epoch is::

    data   = augment(train set, augment seed, epoch)        # pure function of (seed, epoch)
    for batch in order(data, order seed, epoch):            # pure function of (seed, epoch)
        loss = readout loss + spike-count regulariser
        stop if the loss or a gradient is NaN/inf           # names epoch and batch
        Adam step, time constants projected onto their bounds
    lift the incoming weights of silent hidden neurons      # rewiring (optional)
    validate; step the learning-rate schedule (EMA rule)
    append metrics; save best.pt if it improved; save last.pt

Every random draw of an epoch is a function of the config's seeds and the epoch number, and a
checkpoint holds everything else that changes (weights, optimiser and schedule state, history),
so ``--resume`` after ``kill -9`` ends bit for bit where the uninterrupted run ends (on CPU).
A failure never touches the last good checkpoint, and writes a summary saying what happened.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from tqdm import tqdm

import eventprop
from eventprop.engine.exact_spec import SpikeLimitError
from eventprop.train.checkpoint import (
    TRAINING_KEYS,
    capture_rng_state,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
)
from eventprop.train.config import ExperimentConfig
from eventprop.train.data import RunData, load_run_data
from eventprop.train.distributed import DistContext
from eventprop.train.evaluate import EvalResult, evaluate, sample_activity
from eventprop.train.health import training_warnings
from eventprop.train.metrics import EpochAccumulator, MetricsLog
from eventprop.train.model import (
    build_loss,
    build_network,
    build_optimizer,
    build_regularizer,
    check_method,
    wrap_for_method,
)
from eventprop.train.rewire import lift_silent
from eventprop.train.runs import (
    RunDirError,
    RunLock,
    RunPaths,
    clear_failed_start,
    create_run_dir,
    is_failed_start,
    read_run_config,
    read_summary,
    write_config,
    write_json,
)
from eventprop.train.schedule import LRSchedule
from eventprop.train.seeds import stream_seeds

__all__ = ["RunResult", "Trainer", "TrainingDiverged", "resume", "train"]


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or infinite; training stopped before the update."""

    def __init__(self, epoch: int, batch: int, what: str) -> None:
        self.epoch, self.batch, self.what = epoch, batch, what
        super().__init__(
            f"training diverged at epoch {epoch}, batch {batch}: {what}; stopped before the "
            "update, the last good checkpoint is kept"
        )


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    summary: dict[str, Any]


Callback = Callable[..., None]


def _fmt_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f} %"


class Trainer:
    """Trains one run in one run directory (new, or resumed from ``checkpoints/last.pt``)."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        paths: RunPaths,
        *,
        resume: bool = False,
        quiet: bool = False,
        stream: TextIO | None = None,
        on_batch: Callback | None = None,
        on_epoch_end: Callback | None = None,
        dist: DistContext | None = None,
    ) -> None:
        self.cfg = cfg
        #: data-parallel group (``eventprop.train.distributed``): shards batches, sums gradients
        self.dist = dist
        #: ranks share the evaluation sets as they share the batches
        self._evaluate = evaluate if dist is None else dist.evaluate
        #: checkpoint to resume from (ranks other than 0 keep their files elsewhere)
        self.restore_from: Path | None = None
        self.paths = paths
        self.resume = resume
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stdout
        self.on_batch = on_batch
        self.on_epoch_end = on_epoch_end
        self._bar: tqdm | None = None
        self._log_fh: TextIO | None = None

    # ------------------------------------------------------------------ output
    def log(self, text: str) -> None:
        if self._log_fh is not None:
            self._log_fh.write(text + "\n")
            self._log_fh.flush()
        if self.quiet:
            return
        if self._bar is not None and not self._bar.disable:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        cfg = self.cfg
        self.seeds = stream_seeds(cfg)
        self.data: RunData = load_run_data(cfg, self.seeds)
        self.net = build_network(cfg, self.data.n_channels, self.data.n_classes, self.seeds["init"])
        self.model = wrap_for_method(cfg, self.net)
        self.loss_fn = build_loss(cfg)
        self.regularizer = build_regularizer(cfg)
        self.params = dict(self.model.named_parameters())
        self.optimizer = build_optimizer(cfg, list(self.params.values()))
        self.schedule = LRSchedule(self.optimizer, cfg.schedule, cfg.optim.lr, cfg.train.epochs)
        self.hidden_sizes = [layer.n_out for layer in self.net.hidden]
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.start_epoch = 0
        self.prior_elapsed = 0.0
        self.resumed_from: int | None = None

    def _meta(self) -> dict[str, Any]:
        return {
            "n_channels": self.data.n_channels,
            "n_classes": self.data.n_classes,
            "class_names": list(self.data.class_names),
            "hidden_sizes": self.hidden_sizes,
            "config": self.cfg.model_dump(mode="json"),
            "eventprop_version": eventprop.__version__,
        }

    def _state(self, epoch: int, elapsed: float) -> dict[str, Any]:
        return {
            "epoch": epoch,  # 0-based index of the last completed epoch (reports count from 1)
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": capture_rng_state(),
            "history": self.history,
            "best": self.best,
            "elapsed_s": elapsed,
            "seeds": self.seeds,
            "meta": self._meta(),
        }

    def _restore(self) -> None:
        path = self.restore_from or self.paths.last
        ck = load_checkpoint(path, required=TRAINING_KEYS)
        load_model_state(self.net, ck, path, self.cfg.model_dump(mode="json"))
        self.optimizer.load_state_dict(ck["optimizer"])
        self.schedule.load_state_dict(ck["schedule"])
        restore_rng_state(ck["rng"])
        self.history = list(ck["history"])
        self.best = ck["best"]
        self.start_epoch = int(ck["epoch"]) + 1
        self.prior_elapsed = float(ck["elapsed_s"])
        self.resumed_from = int(ck["epoch"])

    # ------------------------------------------------------------------ passes
    def _check_grads(self, epoch: int, batch: int) -> None:
        for name, p in self.params.items():
            if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                bad = "NaN" if bool(torch.isnan(p.grad).any()) else "infinite"
                raise TrainingDiverged(epoch, batch, f"{bad} gradient of {name}")

    def _epoch_data(self, epoch: int) -> Any:
        """This epoch's (augmented) training set, drawn once even when asked twice."""
        cached = getattr(self, "_cached_epoch", None)
        if cached is not None and cached[0] == epoch:
            return cached[1]
        self._cached_epoch = None  # free the previous epoch's copy before drawing the next
        data = self.data.epoch_train_data(epoch, self.seeds["augment"])
        self._cached_epoch = (epoch, data)
        return data

    def _train_epoch(self, epoch: int) -> tuple[EpochAccumulator, int, float]:
        cfg, tc = self.cfg, self.cfg.train
        start = time.perf_counter()
        data = self._epoch_data(epoch)
        acc = EpochAccumulator(self.hidden_sizes)
        rewired = 0
        batches = self.data.train_batches(
            data, epoch, self.seeds["data_order"], tc.batch_size, tc.drop_last
        )
        if self.dist is not None:
            batches = self.dist.shards(batches)
        if self._bar is not None:
            self._bar.set_description(f"epoch {epoch + 1}/{tc.epochs}")
        for b, (events, labels) in enumerate(batches):
            try:
                out = self.model(events)
            except SpikeLimitError as exc:  # runaway exact-timing excitation: say where
                raise TrainingDiverged(epoch, b, str(exc)) from exc
            loss = self.loss_fn(out, labels)
            reg = (
                self.regularizer(out.hidden_counts)
                if self.regularizer is not None
                else loss.new_zeros(())
            )
            total = loss + reg
            if not bool(torch.isfinite(total)):
                what = "loss is NaN" if bool(torch.isnan(total)) else "loss is infinite"
                raise TrainingDiverged(epoch, b, f"{what} (readout loss {float(loss.detach())!r})")
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            if self.dist is not None:
                self.dist.all_reduce_gradients(list(self.params.values()))
            self._check_grads(epoch, b)
            if cfg.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(list(self.params.values()), cfg.optim.grad_clip)
            self.optimizer.step()
            self.net.constrain_()
            with torch.no_grad():
                pred = self.loss_fn.predict(out).cpu()
            tape = getattr(out, "tape", None)
            acc.add(
                float(loss.detach()),
                float(reg.detach()),
                int((pred == labels).sum()),
                len(labels),
                out.hidden_counts,
                getattr(tape, "n_clamped", 0) or 0,
            )
            if tc.rewire.enabled and tc.rewire.every == "batch":
                silent = [c.detach().sum(0) == 0 for c in out.hidden_counts]
                if self.dist is not None:
                    silent = self.dist.silent(out.hidden_counts)
                rewired += lift_silent(self.net, silent, tc.rewire.lift)
            if self._bar is not None:
                self._bar.update(len(labels) if self.dist is None else self.dist.global_batch)
                self._bar.set_postfix(
                    loss=f"{acc.loss:.4f}",
                    acc=f"{100 * acc.accuracy:.1f}%",
                    spk=f"{acc.spikes_per_neuron:.2f}",
                    refresh=False,
                )
            if self.on_batch is not None:
                self.on_batch(self, epoch, b)
        if self.dist is not None:
            self.dist.reduce_accumulator(acc)
        if tc.rewire.enabled and tc.rewire.every == "epoch":
            rewired += lift_silent(self.net, acc.silent(), tc.rewire.lift)
        return acc, rewired, time.perf_counter() - start

    def _is_better(self, row: dict[str, Any]) -> bool:
        if self.best is None:
            return True
        key = self.cfg.train.select_on
        if row.get("val_accuracy") is None:  # no validation set: select on training data
            key = "train_accuracy" if key == "val_accuracy" else "train_loss"
        value, old = row[key], self.best["value"]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return value > old if key.endswith("accuracy") else value < old

    def _best_record(self, row: dict[str, Any]) -> dict[str, Any]:
        key = self.cfg.train.select_on
        if row.get("val_accuracy") is None:
            key = "train_accuracy" if key == "val_accuracy" else "train_loss"
        return {
            "epoch": row["epoch"],
            "selected_on": key,
            "value": row[key],
            "val_accuracy": row.get("val_accuracy"),
            "val_loss": row.get("val_loss"),
            "train_accuracy": row["train_accuracy"],
        }

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict[str, Any]:
        session_start = time.perf_counter()
        self.paths.root.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.paths.root).acquire()  # one writer per run directory
        self._log_fh = open(self.paths.log, "a", encoding="utf-8")
        metrics: MetricsLog | None = None
        try:
            if not self.resume:  # before the data: a failed start keeps its config
                clear_failed_start(self.paths.root)
                write_config(self.paths, self.cfg)
            self._setup()
            if self.resume:
                self._restore()
                self.log(
                    f"resuming {self.paths.root} after epoch {self.resumed_from + 1} "
                    f"({self.start_epoch}/{self.cfg.train.epochs} epochs done)"
                )
            metrics = MetricsLog(
                self.paths.root,
                self.cfg.run.tensorboard,
                purge_step=self.start_epoch + 1 if self.resume else None,
            )
            metrics.write_history(self.history)
            self._describe()
            self._loop(metrics, session_start)
            return self._finish(session_start, status="completed")
        except TrainingDiverged as exc:
            self.log(f"ERROR: {exc}")
            self._write_failure(session_start, "diverged", str(exc), exc.epoch, exc.batch)
            raise
        except KeyboardInterrupt:
            self.log("interrupted; resume with: eventprop train --resume " + str(self.paths.root))
            self._write_failure(session_start, "interrupted", "KeyboardInterrupt")
            raise
        except Exception as exc:  # data, I/O, engine: record what stopped the run, re-raise
            self.log(f"ERROR: {type(exc).__name__}: {exc}")
            self._write_failure(session_start, "failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if metrics is not None:
                metrics.close()
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None
            lock.release()

    def _describe(self) -> None:
        d, cfg = self.data, self.cfg
        n_params = sum(p.numel() for p in self.params.values())
        self.log(
            f"{cfg.name}: {cfg.method}, {cfg.data.dataset} "
            f"(train {len(d.train) if d.train is not None else 0}, "
            f"validation {len(d.validation) if d.validation is not None else 0}: "
            f"{d.validation_source}, test {len(d.test) if d.test is not None else 0}), "
            f"{d.n_channels} inputs -> {self.hidden_sizes} -> {d.n_classes} classes, "
            f"{n_params} parameters, dt {cfg.data.dt} ms"
        )
        self.log(f"run directory: {self.paths.root}")

    def _loop(self, metrics: MetricsLog, session_start: float) -> None:
        cfg, tc = self.cfg, self.cfg.train
        remaining = tc.epochs - self.start_epoch
        if remaining <= 0:
            return
        per_epoch = len(self._epoch_data(self.start_epoch))  # sizes the progress bar
        if tc.drop_last:
            per_epoch -= per_epoch % tc.batch_size
        self._bar = tqdm(
            total=remaining * per_epoch,
            unit="sample",
            unit_scale=True,
            dynamic_ncols=True,
            file=self.stream,
            disable=True if (self.quiet or not tc.progress) else None,
            smoothing=0.05,
        )
        for epoch in range(self.start_epoch, tc.epochs):
            acc, rewired, t_train = self._train_epoch(epoch)
            val: EvalResult | None = None
            t_val = 0.0
            if self.data.validation is not None:
                val = self._evaluate(
                    self.net,
                    self.loss_fn,
                    self.data.validation,
                    self.data,
                    tc.eval_batch_size,
                    self.hidden_sizes,
                )
                t_val = val.seconds
            lr_used = self.schedule.lr
            note = self.schedule.step(epoch, val.accuracy if val else acc.accuracy)
            row: dict[str, Any] = {
                "epoch": epoch + 1,  # epochs are numbered from 1 in every report
                "lr": lr_used,
                "train_loss": acc.loss,
                "train_reg_loss": acc.reg if self.regularizer is not None else None,
                "train_accuracy": acc.accuracy,
                "train_spikes_per_neuron": acc.spikes_per_neuron,
                "silent_neurons": int(sum(int(m.sum()) for m in acc.silent())),
                "rewired_neurons": rewired,
                "val_loss": val.loss if val else None,
                "val_accuracy": val.accuracy if val else None,
                "val_spikes_per_neuron": val.spikes_per_neuron if val else None,
                "clamped_spikes": acc.clamped,
                "train_samples": acc.n,
                "train_time_s": t_train,
                "val_time_s": t_val,
                "samples_per_s": acc.n / t_train if t_train > 0 else None,
            }
            improved = self._is_better(row)
            if improved:
                self.best = self._best_record(row)
            row["best_epoch"] = self.best["epoch"] if self.best else None
            self.history.append(row)
            metrics.append(row)
            elapsed = self.prior_elapsed + time.perf_counter() - session_start
            state = self._state(epoch, elapsed)
            if improved:
                save_checkpoint(self.paths.best, state)
            save_checkpoint(self.paths.last, state)
            self._epoch_line(row, note, epoch, session_start)
            if cfg.run.plots and cfg.run.plot_every and (epoch + 1) % cfg.run.plot_every == 0:
                self._plot_curves()
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, epoch, row)

    def _epoch_line(self, row: dict[str, Any], note: str | None, epoch: int, start: float) -> None:
        tc = self.cfg.train
        done = epoch + 1 - self.start_epoch
        left = tc.epochs - epoch - 1
        eta = (time.perf_counter() - start) / done * left
        best = self.best or {}
        parts = [
            f"epoch {epoch + 1}/{tc.epochs}",
            f"loss {row['train_loss']:.4f}",
            f"acc {_pct(row['train_accuracy'])}",
        ]
        if row["val_accuracy"] is not None:
            parts.append(f"val_loss {row['val_loss']:.4f} val_acc {_pct(row['val_accuracy'])}")
        if best.get("selected_on", "").endswith("accuracy"):
            parts.append(f"best {_pct(best.get('value'))}@{best.get('epoch')}")
        else:
            parts.append(f"best epoch {best.get('epoch')}")
        parts.append(f"spk/neuron {row['train_spikes_per_neuron']:.2f}")
        if row["rewired_neurons"]:
            parts.append(f"lifted {row['rewired_neurons']}")
        parts.append(f"lr {row['lr']:.3g}")
        parts.append(f"{row['samples_per_s']:.0f} samples/s" if row["samples_per_s"] else "")
        parts.append(f"ETA {_fmt_time(eta)}")
        self.log("  ".join(p for p in parts if p))
        if note:
            self.log("  " + note)

    # ------------------------------------------------------------------ reports
    def _plot_curves(self) -> list[str]:
        from eventprop.train.plots import plot_curves

        if not self.history:
            return []
        title = f"{self.cfg.name} ({self.cfg.method})"
        return [str(plot_curves(self.history, self.paths.plots / "curves.png", title))]

    def _reports(self, final: EvalResult | None, what: str, data: Any) -> list[str]:
        from eventprop.train.plots import plot_confusion, plot_raster, plot_spike_counts

        files = self._plot_curves()
        if final is None:
            return files
        names = self.data.class_names
        files.append(
            str(plot_confusion(final.confusion, self.paths.plots / "confusion.png", names, what))
        )
        if self.hidden_sizes:
            target = self.cfg.regularizer.nu_upper if self.cfg.regularizer.enabled else None
            files.append(
                str(
                    plot_spike_counts(
                        final.neuron_rates, self.paths.plots / "spike_counts.png", target, what
                    )
                )
            )
            activity = sample_activity(self.net, data, self.data, 0)
            files.append(str(plot_raster(activity, self.paths.plots / "raster.png", names)))
        return files

    def _finish(self, session_start: float, status: str) -> dict[str, Any]:
        cfg = self.cfg
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        best_state = None
        if self.paths.best.is_file():
            best_state = load_checkpoint(self.paths.best)
            self.net.load_state_dict(best_state["model"])
        test = None
        if self.data.test is not None:
            test = self._evaluate(
                self.net,
                self.loss_fn,
                self.data.test,
                self.data,
                cfg.train.eval_batch_size,
                self.hidden_sizes,
            )
        val_best = None
        if self.data.validation is not None:
            val_best = self._evaluate(
                self.net,
                self.loss_fn,
                self.data.validation,
                self.data,
                cfg.train.eval_batch_size,
                self.hidden_sizes,
            )
        final, what, data = (
            (test, "test set", self.data.test)
            if test is not None
            else (val_best, "validation set", self.data.validation)
        )
        plots: list[str] = []
        if cfg.run.plots:
            plots = self._reports(final, what, data)
        elapsed = self.prior_elapsed + time.perf_counter() - session_start
        summary = self._summary(status, elapsed, session_start)
        summary["validation"] = self._eval_dict(val_best)
        summary["test"] = self._eval_dict(test)
        summary["plots"] = plots
        summary["warnings"] = training_warnings(
            self.history, self.hidden_sizes, self.data.n_classes
        )
        for text in summary["warnings"]:
            self.log(f"WARNING: {text}")
        write_json(self.paths.summary, summary)
        best = self.best or {}
        key = best.get("selected_on", "")
        value = best.get("value")
        shown = _pct(value) if key.endswith("accuracy") else f"{value:.4f}" if value else "n/a"
        parts = [f"best epoch {best.get('epoch')} ({key} {shown})"]
        if val_best is not None:
            parts.append(f"validation {_pct(val_best.accuracy)}")
        if test is not None:
            parts.append(f"test {_pct(test.accuracy)} (best checkpoint)")
        took = _fmt_time(time.perf_counter() - session_start)
        self.log(f"done in {took}: " + ", ".join(parts))
        self.log(f"run directory: {self.paths.root}")
        return summary

    @staticmethod
    def _eval_dict(result: EvalResult | None) -> dict[str, Any] | None:
        if result is None:
            return None
        return result.as_dict()

    def _summary(self, status: str, elapsed: float, session_start: float) -> dict[str, Any]:
        cfg, d = self.cfg, self.data
        last = self.history[-1] if self.history else None
        return {
            "status": status,
            "name": cfg.name,
            "description": cfg.description,
            "method": cfg.method,
            "run_dir": str(self.paths.root.resolve()),
            "epochs_completed": len(self.history),
            "epochs_planned": cfg.train.epochs,
            "best": self.best,
            "last_epoch": last,
            "validation_source": d.validation_source,
            "data": {
                "dataset": cfg.data.dataset,
                "train": len(d.train) if d.train is not None else 0,
                "validation": len(d.validation) if d.validation is not None else 0,
                "test": len(d.test) if d.test is not None else 0,
                "n_channels": d.n_channels,
                "n_classes": d.n_classes,
            },
            "model": {
                "hidden": self.hidden_sizes,
                "parameters": int(sum(p.numel() for p in self.params.values())),
            },
            "time": {
                "elapsed_s": elapsed,
                "this_session_s": time.perf_counter() - session_start,
                "train_s": float(sum(r["train_time_s"] for r in self.history)),
            },
            "resumed_from_epoch": self.resumed_from,
            "seeds": getattr(self, "seeds", None),
            "checkpoints": {"best": str(self.paths.best), "last": str(self.paths.last)},
            "versions": {
                "eventprop": eventprop.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }

    def _write_failure(
        self,
        session_start: float,
        status: str,
        message: str,
        epoch: int | None = None,
        batch: int | None = None,
    ) -> None:
        previous = _previous_summary(self.paths) if self.resume else None
        if previous is not None and previous.get("status") == "completed":
            self.log(f"{self.paths.summary} of the completed run is kept unchanged")
            return  # a failed resume never overwrites the results of a finished run
        try:
            summary = self._summary(status, self.prior_elapsed, session_start)
        except AttributeError:  # failed during set-up
            summary = {"status": status, "name": self.cfg.name}
        if previous is not None and self.resumed_from is None:  # failed before the restore
            summary = {**previous, "status": status}
        summary["error"] = {"message": message, "epoch": epoch, "batch": batch}
        summary["resume_with"] = f"eventprop train --resume {self.paths.root}" + (
            "" if self.paths.last.is_file() else " (no checkpoint yet: starts again at epoch 1)"
        )
        try:
            write_json(self.paths.summary, summary)
        except OSError:  # pragma: no cover - the disk itself failed
            pass


def _previous_summary(paths: RunPaths) -> dict[str, Any] | None:
    """The run's summary.json before this session (None if absent or unreadable)."""
    try:
        return read_summary(paths.root)
    except (OSError, ValueError):
        return None


def train(
    cfg: ExperimentConfig,
    *,
    run_dir: str | Path | None = None,
    root: str | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    on_batch: Callback | None = None,
    on_epoch_end: Callback | None = None,
) -> RunResult:
    """Train ``cfg`` in a new run directory (checked for writability before anything else)."""
    check_method(cfg)
    paths = create_run_dir(cfg, run_dir, root)
    trainer = Trainer(
        cfg, paths, quiet=quiet, stream=stream, on_batch=on_batch, on_epoch_end=on_epoch_end
    )
    return RunResult(paths.root, trainer.fit())


def resume(
    run_dir: str | Path,
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
    on_batch: Callback | None = None,
    on_epoch_end: Callback | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint, with its own config.

    A run that stopped before its first checkpoint has nothing to continue: it starts again
    from epoch 1 in the same directory (the same result as an uninterrupted run).
    """
    paths = RunPaths(run_dir)
    cfg = read_run_config(paths.root)
    restart = not paths.last.is_file()
    if restart and not is_failed_start(paths.root):
        raise RunDirError(
            f"{paths.root}: no checkpoint to resume from (checkpoints/last.pt is written at "
            "the end of the first epoch), and files other than a failed start's; start the "
            "run again in a new directory"
        )
    from eventprop.train.runs import check_writable

    check_writable(paths.root)
    trainer = Trainer(
        cfg,
        paths,
        resume=not restart,
        quiet=quiet,
        stream=stream,
        on_batch=on_batch,
        on_epoch_end=on_epoch_end,
    )
    return RunResult(paths.root, trainer.fit())
