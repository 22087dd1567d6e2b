"""Data-parallel training over processes with ``torch.distributed``.

Every rank loads the same data and draws the same global batches (every random stream of a run
is a function of the config's seeds and the epoch, none depends on the rank), takes its
contiguous shard of each batch (rank ``r`` of ``N`` gets samples ``[r*B/N, (r+1)*B/N)``), runs
forward and backward on it, and the gradients are summed over ranks with each rank's weighted
by its share of the batch -- so the update is the one a single process makes on the whole
batch, up to the order of floating-point additions. The epoch's metrics and spike counts are
summed the same way, so silent-neuron lifting and model selection see the whole epoch on every
rank and the ranks never diverge. Validation and test sets are split the same way and their
sums combined, so every rank gets the whole set's numbers (and the learning-rate schedule
steps alike everywhere).

Rank 0 owns the run directory (config, metrics, checkpoints, plots, summary); the other ranks
write their (identical) bookkeeping into a private temporary directory that is removed at the
end, and on ``--resume`` restore from rank 0's ``checkpoints/last.pt``.

Launch: ``eventprop train CONFIG --nproc N`` starts N local processes (gloo on CPU, nccl when
every local rank has a GPU of its own; ``EVENTPROP_DIST_BACKEND`` overrides), or
``torchrun --nproc-per-node N -m eventprop train CONFIG`` on one or more machines: a process
that finds ``WORLD_SIZE`` > 1 in its environment joins the group. The network itself trains
on the CPU (the training config has no device option yet); with nccl only the collectives run
on the GPUs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from eventprop.events import EventBatch
from eventprop.train.metrics import EpochAccumulator

__all__ = [
    "DistContext",
    "DistributedConfigError",
    "from_environment",
    "launch",
    "shard_batch",
    "train_distributed",
]

#: set in the processes that ``launch`` starts, so that they do not launch again
WORKER_ENV = "EVENTPROP_DIST_WORKER"
#: overrides the choice of communication backend (gloo or nccl)
BACKEND_ENV = "EVENTPROP_DIST_BACKEND"


class DistributedConfigError(ValueError):
    """A config that data-parallel training cannot run exactly."""


@dataclass
class DistContext:
    """This process's place in the group and the collective operations the loop needs."""

    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    #: this rank's fraction of the current global batch (weights its gradients in the sum)
    share: float = 1.0
    #: samples in the current global batch (for progress counts)
    global_batch: int = 0

    def shards(
        self, batches: Iterator[tuple[EventBatch, torch.Tensor]]
    ) -> Iterator[tuple[EventBatch, torch.Tensor]]:
        """This rank's part of every global batch.

        A batch with fewer samples than ranks (the last one of an epoch, at most) is skipped
        by every rank: some rank would have no sample to run.
        """
        for events, labels in batches:
            if events.batch_size < self.world_size:
                continue
            self.global_batch = events.batch_size
            part, part_labels, self.share = shard_batch(events, labels, self.rank, self.world_size)
            assert part is not None
            yield part, part_labels

    def all_reduce_gradients(self, params: Sequence[torch.Tensor]) -> None:
        """Replace every ``.grad`` by the share-weighted sum over ranks (one message)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).to(torch.float64) for g in grads]) * self.share
        if self.backend == "nccl":
            flat = flat.cuda()
        dist.all_reduce(flat)
        at = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[at : at + n].view(p.shape).to(device=p.device, dtype=p.dtype)
            at += n

    def sum_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of ``values`` over ranks (float64 on CPU, whatever the backend needs)."""
        device = "cuda" if self.backend == "nccl" else "cpu"
        t = values.to(device=device, dtype=torch.float64).clone()
        dist.all_reduce(t)
        return t.cpu()

    def reduce_accumulator(self, acc: EpochAccumulator) -> None:
        """Sum an epoch's metrics and spike counts over ranks, in place."""
        head = torch.tensor(
            [acc.n, acc.loss_sum, acc.reg_sum, acc.correct, acc.clamped], dtype=torch.float64
        )
        total = self.sum_tensor(torch.cat([head, *acc.neuron_spikes]))
        acc.n, acc.correct, acc.clamped = (round(float(total[i])) for i in (0, 3, 4))
        acc.loss_sum, acc.reg_sum = float(total[1]), float(total[2])
        at = 5
        for i, s in enumerate(acc.neuron_spikes):
            acc.neuron_spikes[i] = total[at : at + s.numel()].clone()
            at += s.numel()

    def silent(self, hidden_counts: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per hidden layer, the neurons silent over the whole global batch."""
        local = [c.detach().sum(0).to(torch.float64).cpu() for c in hidden_counts]
        total = self.sum_tensor(torch.cat(local)) if local else torch.zeros(0)
        out, at = [], 0
        for c in local:
            out.append(total[at : at + c.numel()] == 0)
            at += c.numel()
        return out

    def evaluate(
        self,
        model: torch.nn.Module,
        loss_fn: Any,
        data: Any,
        run_data: Any,
        batch_size: int,
        hidden_sizes: list[int],
    ) -> Any:
        """``eventprop.train.evaluate.evaluate`` with each rank taking a contiguous part of
        ``data`` and the sums combined: the same numbers (up to the order of additions) in
        1/N of the time."""
        from eventprop.train.evaluate import EvalResult, evaluate

        n = len(data)
        lo, hi = (self.rank * n) // self.world_size, ((self.rank + 1) * n) // self.world_size
        part = evaluate(
            model, loss_fn, data.subset(np.arange(lo, hi)), run_data, batch_size, hidden_sizes
        )
        local_n = hi - lo
        head = torch.tensor(
            [local_n, part.loss * local_n if local_n else 0.0, part.seconds], dtype=torch.float64
        )
        k = run_data.n_classes
        confusion = part.confusion.astype(np.float64)
        spikes = [torch.from_numpy(r * local_n) for r in part.neuron_rates]
        total = self.sum_tensor(torch.cat([head, torch.from_numpy(confusion).reshape(-1), *spikes]))
        n_all = round(float(total[0]))
        confusion = total[3 : 3 + k * k].numpy().reshape(k, k).round().astype(np.int64)
        rates, at = [], 3 + k * k
        for size in hidden_sizes:
            rates.append((total[at : at + size] / max(1, n_all)).numpy())
            at += size
        per_speaker: dict[int, tuple[int, int]] = {}
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, dict(getattr(part, "per_speaker", None) or {}))
        for table in parts:
            for speaker, (correct, count) in table.items():
                c0, n0 = per_speaker.get(speaker, (0, 0))
                per_speaker[speaker] = (c0 + int(correct), n0 + int(count))
        neurons = sum(hidden_sizes)
        all_spikes = float(sum(r.sum() for r in rates)) * n_all
        return EvalResult(
            loss=float(total[1]) / n_all if n_all else float("nan"),
            accuracy=int(np.trace(confusion)) / n_all if n_all else float("nan"),
            n=n_all,
            confusion=confusion,
            spikes_per_neuron=all_spikes / (neurons * n_all) if neurons and n_all else float("nan"),
            neuron_rates=rates,
            seconds=float(total[2]) / self.world_size,
            per_speaker=dict(sorted(per_speaker.items())),
        )

    def broadcast_object(self, obj: object) -> object:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def shard_batch(
    events: EventBatch, labels: torch.Tensor, rank: int, world_size: int
) -> tuple[EventBatch | None, torch.Tensor, float]:
    """Rank ``rank``'s contiguous slice of a batch, its labels and its fraction of the batch.

    A batch smaller than the group leaves some ranks without samples: they get ``None`` and a
    share of 0 (they still join the gradient sum, with zeros).
    """
    b = events.batch_size
    lo, hi = (rank * b) // world_size, ((rank + 1) * b) // world_size
    if hi <= lo:
        return None, labels[:0], 0.0
    sample = events.sample.cpu().numpy()
    a, z = np.searchsorted(sample, [lo, hi])
    part = EventBatch.from_arrays(
        sample[a:z].astype(np.int64) - lo,
        events.step[a:z].cpu().numpy(),
        events.channel[a:z].cpu().numpy(),
        batch_size=hi - lo,
        n_steps=events.n_steps,
        n_channels=events.n_channels,
        dt=events.dt,
        offset=events.offset[a:z].cpu().numpy(),
    ).to(events.device)
    return part, labels[lo:hi], (hi - lo) / b


def default_backend(local_ranks: int) -> str:
    """nccl when every local rank has a CUDA device of its own (NCCL cannot share one), else
    gloo. The collectives move the (few) gradient numbers to the rank's device and back."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_ranks:
        return "nccl"
    return "gloo"


def from_environment() -> DistContext | None:
    """Join the process group described by torchrun-style variables, if there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank = int(os.environ["RANK"])
    backend = os.environ.get(BACKEND_ENV) or default_backend(
        int(os.environ.get("LOCAL_WORLD_SIZE", world))
    )
    if backend not in ("gloo", "nccl"):
        raise DistributedConfigError(f"{BACKEND_ENV}: expected gloo or nccl, got {backend!r}")
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, backend=backend)


def check_config(cfg: Any) -> None:
    """Refuse what sharded batches cannot reproduce exactly."""
    if cfg.regularizer.enabled and not cfg.regularizer.per_trial:
        raise DistributedConfigError(
            "regularizer.per_trial: false penalises the spike count averaged over the whole "
            "batch, which no rank sees with --nproc > 1; use per_trial: true or one process"
        )
    if cfg.method != "eventprop":
        raise DistributedConfigError(f"method: {cfg.method} runs in one process only")


def train_distributed(
    ctx: DistContext,
    cfg: Any = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    root: str | None = None,
    resume_dir: str | os.PathLike[str] | None = None,
    quiet: bool = False,
) -> Any:
    """Train (or resume) one run with every rank of ``ctx``; returns rank 0's RunResult."""
    from eventprop.train.loop import RunResult, Trainer
    from eventprop.train.model import check_method
    from eventprop.train.runs import RunPaths, check_writable, create_run_dir, read_run_config

    if resume_dir is not None:
        real = RunPaths(resume_dir)
        cfg = read_run_config(real.root)
        if ctx.is_main:
            check_writable(real.root)
    else:
        check_method(cfg)
        real = None
        if ctx.is_main:
            real = create_run_dir(cfg, run_dir, root)
        real = RunPaths(ctx.broadcast_object(str(real.root) if real else None))
    check_config(cfg)
    scratch: Path | None = None
    if ctx.is_main:
        paths = real
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f"eventprop-rank{ctx.rank}-"))
        paths = RunPaths(scratch / "run")
        cfg = cfg.model_copy(deep=True)
        cfg.run.plots = False
        cfg.run.tensorboard = False
        quiet = True
    try:
        trainer = Trainer(cfg, paths, resume=resume_dir is not None, quiet=quiet, dist=ctx)
        trainer.restore_from = real.last
        summary = trainer.fit()
        return RunResult(real.root, summary)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        dist.barrier()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(nproc: int, argv: Sequence[str], threads: int | None = None) -> int:
    """Run ``eventprop <argv>`` in ``nproc`` local processes forming one group; exit code.

    Each process gets ``threads`` numba/PyTorch threads (default: the cores divided evenly,
    at least 1) unless NUMBA_NUM_THREADS / OMP_NUM_THREADS are already set. If one process
    fails the others are stopped.
    """
    if nproc < 1:
        raise ValueError(f"--nproc: must be >= 1, got {nproc}")
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    port = _free_port()
    procs: list[subprocess.Popen] = []
    for rank in range(nproc):
        env = dict(os.environ)
        env.update(
            {
                WORKER_ENV: "1",
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(nproc),
                "LOCAL_WORLD_SIZE": str(nproc),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
            }
        )
        env.setdefault("NUMBA_NUM_THREADS", str(threads))
        env.setdefault("OMP_NUM_THREADS", str(threads))
        procs.append(subprocess.Popen([sys.executable, "-m", "eventprop", *argv], env=env))
    codes: list[int | None] = [None] * nproc
    try:
        while any(c is None for c in codes):
            for i, p in enumerate(procs):
                if codes[i] is None:
                    try:
                        codes[i] = p.wait(timeout=0.2)
                    except subprocess.TimeoutExpired:
                        continue
                    if codes[i] != 0:  # one rank failed: the others would wait forever
                        for q in procs:
                            if q.poll() is None:
                                q.terminate()
    except KeyboardInterrupt:
        for q in procs:
            if q.poll() is None:
                q.terminate()
        for q in procs:
            q.wait()
        return 130
    bad = [c for c in codes if c]
    return int(codes[0] or (bad[0] if bad else 0))
