"""Event-driven CPU kernels of the EventProp engine (numba, parallel over the batch).

Same semantics, step by step, as :mod:`eventprop.engine.torch_backend` (read its docstring
first); here work is organised around events:

- forward: every arriving spike adds one weight row to the currents of its targets; the dense
  part per step is only the exact decay of ``V`` and ``I`` (O(neurons));
- backward: every recorded spike costs one jump (a dot product of its outgoing weight row
  with the targets' adjoints) and every arrival one row-add into the gradient
  (``dL/dw[i, :] += p_I``), so work grows with the number of spikes.

All neurons of all layers live in one flat index space: layer ``l`` owns
``offsets[l] .. offsets[l+1]``; the readout is the last layer. Weights are passed as typed
lists with one ``(n_pre, n_post)`` array per layer (a ``(0, 0)`` placeholder where a layer has
no recurrent weights). Samples are distributed over threads in chunks; every chunk has its
own gradient buffers, summed by the caller, so no atomics are needed.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# PyTorch's OpenMP threads spin-wait after every parallel op; on a machine with few cores that
# starves numba's own OpenMP pool (measured: 3.4x slower training steps on 2 cores). numba's
# "workqueue" pool does not share that runtime. A user's explicit choice is respected.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["backward_kernel", "forward_kernel"]

#: re-association lets LLVM vectorise the row adds and dot products; NaN/inf semantics are kept
#: so that a diverging network still shows up as NaN instead of silently wrong numbers.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def forward_kernel(
    in_ptr,  # (B*T+1,) int64: events of (b, n) are in_ptr[b*T+n] .. in_ptr[b*T+n+1]
    in_channel,  # (E,) int32
    n_steps,
    w_in,  # typed list of (n_pre, n_l)
    w_rec,  # typed list of (n_l, n_l) or (0, 0)
    offsets,  # (L+1,) int64
    alpha,
    beta,
    c,  # (N,) step propagators
    theta,
    min_denominator,
    spiking_readout,
    dt,
    keep_states,
    states_v,  # (B, T, N) when keep_states else (1, 1, 1)
    states_i,
    v_out,  # (B, T, K) output
    first,  # (B, K) output, pre-filled with T*dt
    counts,  # (B, N_hidden) output, zeros
    capacity,
    rec_step,  # (B, capacity) int32
    rec_neuron,  # (B, capacity) int32, global neuron index
    rec_den,  # (B, capacity) float
    rec_count,  # (B,) int64 output: spikes of each sample (may exceed capacity)
    clamped,  # (B,) int64 output: denominators raised to min_denominator
):
    B = v_out.shape[0]
    T = n_steps
    L = len(w_in)
    N = offsets[L]
    r0 = offsets[L - 1]
    K = offsets[L] - r0
    t_end = T * dt
    log_beta = np.log(beta)
    for b in prange(B):
        V = np.zeros(N, dtype=alpha.dtype)
        I = np.zeros(N, dtype=alpha.dtype)
        spk = np.empty((2, N), dtype=np.int32)  # spikes of the previous / current time point
        nspk = np.zeros((2, L), dtype=np.int64)
        k = 0
        n_clamped = 0
        for n in range(T):
            prv = n % 2
            cur = 1 - prv
            # 1. arrivals at n*dt
            for l in range(L):
                o = offsets[l]
                nl = offsets[l + 1] - o
                W = w_in[l]
                if l == 0:
                    for e in range(in_ptr[b * T + n], in_ptr[b * T + n + 1]):
                        row = in_channel[e]
                        for j in range(nl):
                            I[o + j] += W[row, j]
                else:
                    op = offsets[l - 1]
                    for s in range(nspk[prv, l - 1]):
                        row = spk[prv, op + s]
                        for j in range(nl):
                            I[o + j] += W[row, j]
                R = w_rec[l]
                if R.shape[0] > 0:
                    for s in range(nspk[prv, l]):
                        row = spk[prv, o + s]
                        for j in range(nl):
                            I[o + j] += R[row, j]
            if keep_states:
                for g in range(N):
                    states_v[b, n, g] = V[g]
                    states_i[b, n, g] = I[g]
            # 2.-4. free evolution, output, threshold
            for l in range(L):
                o = offsets[l]
                nl = offsets[l + 1] - o
                readout = l == L - 1
                spiking = (not readout) or spiking_readout
                cnt = 0
                for j in range(nl):
                    g = o + j
                    v0 = V[g]
                    i0 = I[g]
                    v = alpha[g] * v0 + c[g] * i0
                    I[g] = beta[g] * i0
                    if readout:
                        v_out[b, n, j] = v
                    if spiking and v >= theta:
                        # I - theta at the crossing, placed inside the step by interpolating V
                        frac = 1.0
                        if v > v0 and v0 < theta:
                            frac = (theta - v0) / (v - v0)
                        d = i0 * np.exp(frac * log_beta[g]) - theta
                        if d < min_denominator:
                            d = min_denominator
                            n_clamped += 1
                        if k < capacity:
                            rec_step[b, k] = n
                            rec_neuron[b, k] = g
                            rec_den[b, k] = d
                        k += 1
                        v = 0.0
                        spk[cur, o + cnt] = j
                        cnt += 1
                        if readout:
                            if first[b, j] >= t_end:
                                first[b, j] = (n + 1) * dt
                        else:
                            counts[b, g] += 1.0
                    V[g] = v
                nspk[cur, l] = cnt
        rec_count[b] = k
        clamped[b] = n_clamped
    return r0 + K


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def backward_kernel(
    in_ptr,
    in_channel,
    n_steps,
    w_in,
    w_rec,
    offsets,
    alpha,
    beta,
    c,
    tau_m,
    tau_s,
    theta,
    spiking_readout,
    rec_ptr,  # (B+1,) records of sample b: rec_ptr[b] .. rec_ptr[b+1], sorted by step
    rec_step,
    rec_neuron,
    rec_den,
    grad_v,  # (B, T, K) or (1, 1, 1) when has_grad_v is False
    has_grad_v,
    grad_first,  # (B, K) or (1, 1)
    first_step,  # (B, K) int64 step of each first readout spike (T if none)
    has_grad_first,
    reg,  # (B, N_hidden): tau_m**2 * dR/dN, or (1, 1)
    has_reg,
    keep_states,
    states_v,
    states_i,
    n_chunks,
    g_w_in,  # typed list of (n_chunks, n_pre, n_l)
    g_w_rec,  # typed list of (n_chunks, n_l, n_l) or (n_chunks, 0, 0)
    g_alpha,  # (n_chunks, N)
    g_beta,
    g_c,
):
    B = rec_ptr.shape[0] - 1
    T = n_steps
    L = len(w_in)
    N = offsets[L]
    r0 = offsets[L - 1]
    K = N - r0
    inv_tau_m = 1.0 / tau_m
    inv_tau_s = 1.0 / tau_s
    layer_of = np.empty(N, dtype=np.int64)
    for l in range(L):
        for g in range(offsets[l], offsets[l + 1]):
            layer_of[g] = l
    for ch in prange(n_chunks):
        pV = np.zeros(N, dtype=alpha.dtype)
        pI = np.zeros(N, dtype=alpha.dtype)
        q = np.zeros(N, dtype=alpha.dtype)
        jump = np.zeros(N, dtype=alpha.dtype)
        ga = g_alpha[ch]
        gb = g_beta[ch]
        gc = g_c[ch]
        G0 = g_w_in[0][ch]
        n0 = offsets[1]
        for b in range(ch, B, n_chunks):
            pV[:] = 0.0
            pI[:] = 0.0
            lo_b = rec_ptr[b]
            k = rec_ptr[b + 1]  # records at index >= k are processed
            # records of step T-1 and beyond
            for n in range(T - 1, -1, -1):
                # 4'. jumps for the spikes of step n (time (n+1)*dt)
                k_lo = k
                while k_lo > lo_b and rec_step[k_lo - 1] == n:
                    k_lo -= 1
                if k_lo < k:
                    for g in range(N):
                        q[g] = pV[g] * inv_tau_m[g] - pI[g] * inv_tau_s[g]
                    # typed-list lookups hoisted out of the per-spike loops (they cost refcounts)
                    for l in range(L):
                        o = offsets[l]
                        if l == L - 1:  # spiking readout: no targets, only the spike-time loss
                            for r in range(k_lo, k):
                                g = rec_neuron[r]
                                if layer_of[g] != l:
                                    continue
                                val = theta * pV[g]
                                if has_grad_first and first_step[b, g - o] == n:
                                    val -= tau_m[g] * grad_first[b, g - o]
                                jump[r - k_lo] = val / rec_den[r]
                            continue
                        R = w_rec[l]
                        has_rec = R.shape[0] > 0
                        W = w_in[l + 1]
                        o2 = offsets[l + 1]
                        n_own = o2 - o
                        n_next = offsets[l + 2] - o2
                        for r in range(k_lo, k):
                            g = rec_neuron[r]
                            if layer_of[g] != l:
                                continue
                            j = g - o
                            s = 0.0
                            if has_rec:
                                for m in range(n_own):
                                    s += R[j, m] * q[o + m]
                            for m in range(n_next):
                                s += W[j, m] * q[o2 + m]
                            val = (theta * pV[g] + tau_m[g] * s) / rec_den[r]
                            if has_reg:
                                val += reg[b, g]
                            jump[r - k_lo] = val
                    for r in range(k_lo, k):
                        pV[rec_neuron[r]] += jump[r - k_lo]
                k = k_lo
                # 3'. loss source
                if has_grad_v:
                    for j in range(K):
                        pV[r0 + j] += grad_v[b, n, j]
                # 2'. back through the free evolution of step n
                for g in range(N):
                    if keep_states:
                        ga[g] += pV[g] * states_v[b, n, g]
                        gc[g] += pV[g] * states_i[b, n, g]
                        gb[g] += pI[g] * states_i[b, n, g]
                    pI[g] = beta[g] * pI[g] + c[g] * pV[g]
                    pV[g] = alpha[g] * pV[g]
                # 1'. arrivals at n*dt sample p_I of the targets
                for e in range(in_ptr[b * T + n], in_ptr[b * T + n + 1]):
                    row = in_channel[e]
                    for j in range(n0):
                        G0[row, j] += pI[j]
                r_lo = k
                while r_lo > lo_b and rec_step[r_lo - 1] == n - 1:
                    r_lo -= 1
                if r_lo < k:
                    for l in range(L - 1):
                        o = offsets[l]
                        o2 = offsets[l + 1]
                        n_own = o2 - o
                        n_next = offsets[l + 2] - o2
                        has_rec = w_rec[l].shape[0] > 0
                        Gr = g_w_rec[l][ch]
                        Gn = g_w_in[l + 1][ch]
                        for r in range(r_lo, k):
                            g = rec_neuron[r]
                            if layer_of[g] != l:
                                continue
                            i = g - o
                            if has_rec:
                                for m in range(n_own):
                                    Gr[i, m] += pI[o + m]
                            for m in range(n_next):
                                Gn[i, m] += pI[o2 + m]
    return 0
