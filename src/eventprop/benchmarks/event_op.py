"""The event-op bound: how fast this machine does the engine's inner operation.

Almost all of the numba engine's work is one operation per spike: add the spike's weight row
to the currents of its targets (forward), or the targets' adjoint ``p_I`` to the spike's row
of the gradient matrix (backward; the jump's dot product reads a row the same way). This
module times those operations in isolation -- random rows of a weight matrix of the training
configuration's shape, accumulated into a per-thread vector (or gradient rows updated from
one), parallel over the same number of threads as the engine -- and converts a training
step's spike counts into the time the step would take if it did nothing else. The fraction
``bound time / measured time`` says how close the engine runs to this machine's limit; the
rest is the dense per-step work (decay of ``V, I`` for every neuron and step), bookkeeping and
the Python/PyTorch seam.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

import eventprop.engine.numba_kernels  # noqa: F401  (selects numba's threading layer first)

__all__ = ["EventOpRate", "event_op_counts", "measure_event_op_rate"]

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}  # the engine kernels' flags


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def _row_to_vector(w, rows, acc):  # pragma: no cover - compiled
    """Forward op: ``acc[chunk] += w[row]`` for every row of the chunk's list."""
    n_chunks, n_rows = rows.shape
    n = w.shape[1]
    for ch in prange(n_chunks):
        a = acc[ch]
        for k in range(n_rows):
            r = rows[ch, k]
            for j in range(n):
                a[j] += w[r, j]
    return 0


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def _vector_to_row(vec, rows, grad):  # pragma: no cover - compiled
    """Backward op: ``grad[chunk][row] += vec[chunk]`` for every row of the chunk's list."""
    n_chunks, n_rows = rows.shape
    n = vec.shape[1]
    for ch in prange(n_chunks):
        g = grad[ch]
        v = vec[ch]
        for k in range(n_rows):
            r = rows[ch, k]
            for j in range(n):
                g[r, j] += v[j]
    return 0


@dataclass
class EventOpRate:
    """Measured rate of the inner operation for rows of ``n_post`` floats."""

    n_pre: int
    n_post: int
    threads: int
    dtype: str
    row_add_ns: float  #: ns per weight row added into the currents (all threads together)
    grad_add_ns: float  #: ns per adjoint vector added into a gradient row
    row_add_gflops: float  #: float additions per second (1e9) of the forward op

    def bound_seconds(self, fwd_rows: float, bwd_rows: float) -> float:
        """Time of ``fwd_rows`` forward-type and ``bwd_rows`` gradient-type row operations."""
        return 1e-9 * (fwd_rows * self.row_add_ns + bwd_rows * self.grad_add_ns)


def measure_event_op_rate(
    n_pre: int,
    n_post: int,
    *,
    dtype: type = np.float32,
    threads: int | None = None,
    rows_per_thread: int = 200_000,
    repeats: int = 5,
    seed: int = 0,
) -> EventOpRate:
    """Best-of-``repeats`` rate of random row adds from an ``(n_pre, n_post)`` matrix.

    Uses ``threads`` chunks (default: numba's thread count, the engine's parallelism over the
    batch); each chunk has its own accumulator / gradient buffer, as in the engine.
    """
    if n_pre <= 0 or n_post <= 0:
        raise ValueError(f"n_pre/n_post: must be positive, got {n_pre}/{n_post}")
    threads = int(threads or numba.get_num_threads())
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n_pre, n_post)).astype(dtype)
    rows = rng.integers(0, n_pre, size=(threads, rows_per_thread)).astype(np.int32)
    acc = np.zeros((threads, n_post), dtype=dtype)
    vec = rng.standard_normal((threads, n_post)).astype(dtype) * 1e-3
    grad = np.zeros((threads, n_pre, n_post), dtype=dtype)
    small = rows[:, :64].copy()
    _row_to_vector(w, small, acc)  # compile (cached) and warm
    _vector_to_row(vec, small, grad)
    best_f = best_b = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _row_to_vector(w, rows, acc)
        t1 = time.perf_counter()
        _vector_to_row(vec, rows, grad)
        t2 = time.perf_counter()
        best_f, best_b = min(best_f, t1 - t0), min(best_b, t2 - t1)
    n_ops = threads * rows_per_thread
    return EventOpRate(
        n_pre=n_pre,
        n_post=n_post,
        threads=threads,
        dtype=np.dtype(dtype).name,
        row_add_ns=1e9 * best_f / n_ops,
        grad_add_ns=1e9 * best_b / n_ops,
        row_add_gflops=n_ops * n_post / best_f / 1e9,
    )


def event_op_counts(
    input_spikes: float, hidden_spikes: float, n_hidden: int, n_out: int, *, recurrent: bool = True
) -> tuple[float, float]:
    """Row operations of one training sample of a one-hidden-layer network, in units of
    ``n_hidden``-float rows: ``(forward-type, gradient-type)``.

    forward: every input spike adds an input-weight row; every hidden spike a recurrent row and
    a readout row. backward: every hidden spike's jump reads the same rows (a dot product, the
    cost of a forward-type op); every input spike and every hidden spike adds ``p_I`` into a
    gradient row (gradient-type). Readout rows have ``n_out`` floats and count pro rata.
    """
    per_hidden_spike = (n_hidden if recurrent else 0) + n_out
    hidden_rows = hidden_spikes * per_hidden_spike / n_hidden
    fwd = input_spikes + hidden_rows  # forward row adds
    jumps = hidden_rows  # backward dot products
    grads = input_spikes + hidden_rows  # backward gradient rows
    return fwd + jumps, grads
