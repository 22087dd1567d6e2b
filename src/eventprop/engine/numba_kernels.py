"""Event-driven CPU kernels of the EventProp engine (numba, parallel over the batch).

Same semantics, step by step, as :mod:`eventprop.engine.torch_backend` (read its docstring
first); here work is organised around events:

- forward: every arriving spike adds one weight row to the currents of its targets; the dense
  part per step is only the exact decay of ``V`` and ``I`` (O(neurons)) and the readout's
  step-average output;
- backward: every recorded spike costs one jump (a dot product of its outgoing weight row
  with the targets' adjoints) and every arrival one row-add into the gradient
  (``dL/dw[i, :] += p_I``), so work grows with the number of spikes.

All neurons of all layers live in one flat index space: layer ``l`` owns
``offsets[l] .. offsets[l+1]``; the readout is the last layer. Weights are packed into one
flat array (``numba_backend.PackedWeights``): layer ``l``'s ``(n_pre, n_l)`` input weights start
at ``in_off[l]``, its ``(n_l, n_l)`` recurrent weights at ``rec_off[l]`` (-1 if none), rows
contiguous, so the kernels never touch a Python container inside the time loop. Rows and
per-layer ranges are always taken as slices (``w = weights[a : a + n]``, then ``w[j]``):
indexing with a computed offset (``weights[a + j]``) makes numba check for negative indices
and defeats vectorisation (measured 5x slower row adds). Samples are distributed over threads
in chunks; every chunk has its own packed gradient buffer, summed by the caller, so no atomics
are needed.
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

#: values decaying below this are set to zero: a neuron left alone for a few hundred ms decays
#: into subnormal floats, whose arithmetic is ~100x slower on x86 (measured: 1.2 us instead of
#: 14 ns for the decay of 276 neurons); 1e-30 is far below any meaningful V, I or adjoint
TINY = 1e-30

#: re-association lets LLVM vectorise the row adds and dot products; NaN/inf semantics are kept
#: so that a diverging network still shows up as NaN instead of silently wrong numbers.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def forward_kernel(
    in_ptr,  # (B*T+1,) int: events of (b, n) are in_ptr[b*T+n] .. in_ptr[b*T+n+1]
    in_channel,  # (E,) int: input channel of every event
    n_steps,
    weights,  # (P,) every layer's weights, packed (see the module docstring)
    in_off,  # (L,) int64: start of layer l's (n_pre, n_l) input weights in ``weights``
    rec_off,  # (L,) int64: start of layer l's (n_l, n_l) recurrent weights, -1 if none
    offsets,  # (L+1,) int64
    alpha,
    beta,
    c,  # (N,) step propagators
    a_avg,
    c_avg,  # (K,) readout: step average of V = a_avg*V + c_avg*I at the step start
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
    L = offsets.shape[0] - 1
    N = offsets[L]
    r0 = offsets[L - 1]
    K = N - r0
    t_end = T * dt
    for b in prange(B):
        V = np.zeros(N, dtype=alpha.dtype)
        I = np.zeros(N, dtype=alpha.dtype)
        I0 = np.empty(N, dtype=alpha.dtype)  # I at the start of the step's evolution
        spk = np.empty((2, N), dtype=np.int32)  # spikes of the previous / current time point
        nspk = np.zeros((2, L), dtype=np.int64)
        k = 0
        n_clamped = 0
        for n in range(T):
            prv = n % 2
            cur = 1 - prv
            # 1. arrivals at n*dt: one weight row added per spike
            for l in range(L):
                o = offsets[l]
                nl = offsets[l + 1] - o
                base = in_off[l]
                Il = I[o : o + nl]  # slices, not I[o + j]: see the module docstring
                if l == 0:
                    for e in range(in_ptr[b * T + n], in_ptr[b * T + n + 1]):
                        a = base + in_channel[e] * nl
                        w = weights[a : a + nl]
                        for j in range(nl):
                            Il[j] += w[j]
                else:
                    op = offsets[l - 1]
                    for s in range(nspk[prv, l - 1]):
                        a = base + spk[prv, op + s] * nl
                        w = weights[a : a + nl]
                        for j in range(nl):
                            Il[j] += w[j]
                if rec_off[l] >= 0:
                    for s in range(nspk[prv, l]):
                        a = rec_off[l] + spk[prv, o + s] * nl
                        w = weights[a : a + nl]
                        for j in range(nl):
                            Il[j] += w[j]
            if keep_states:
                for g in range(N):
                    states_v[b, n, g] = V[g]
                    states_i[b, n, g] = I[g]
            # 2. readout output: the step average of V, from the state at the step start
            for j in range(K):
                v_out[b, n, j] = a_avg[j] * V[r0 + j] + c_avg[j] * I[r0 + j]
            # 3. free evolution of every neuron (a branch-free loop the compiler vectorises)
            for g in range(N):
                I0[g] = I[g]
                v = alpha[g] * V[g] + c[g] * I0[g]
                i = beta[g] * I0[g]
                V[g] = v if abs(v) >= TINY else 0.0
                I[g] = i if abs(i) >= TINY else 0.0
            # 4. threshold, reset, spike records
            for l in range(L):
                o = offsets[l]
                nl = offsets[l + 1] - o
                readout = l == L - 1
                cnt = 0
                if readout and not spiking_readout:
                    nspk[cur, l] = 0
                    continue
                for j in range(nl):
                    g = o + j
                    v = V[g]
                    if not v >= theta:  # NaN does not fire, as in the torch backend
                        continue
                    # I(t_n) - V(t_{n+1}): step-start current, step-end voltage before reset
                    d = I0[g] - v
                    if d < min_denominator:
                        d = min_denominator
                        n_clamped += 1
                    if k < capacity:
                        rec_step[b, k] = n
                        rec_neuron[b, k] = g
                        rec_den[b, k] = d
                    k += 1
                    V[g] = 0.0
                    spk[cur, o + cnt] = j
                    cnt += 1
                    if readout:
                        if first[b, j] >= t_end:
                            first[b, j] = (n + 1) * dt
                    else:
                        counts[b, g] += 1.0
                nspk[cur, l] = cnt
        rec_count[b] = k
        clamped[b] = n_clamped
    return N


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def backward_kernel(
    in_ptr,
    in_channel,
    n_steps,
    weights,  # packed as in forward_kernel
    in_off,
    rec_off,
    offsets,
    alpha,
    beta,
    c,
    a_avg,
    c_avg,
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
    grads,  # (n_chunks, P): weight gradients, packed like ``weights``, one row per chunk
    g_alpha,  # (n_chunks, N)
    g_beta,
    g_c,
    g_avg,  # (n_chunks, 2, K): gradients of the readout's a_avg, c_avg
):
    B = rec_ptr.shape[0] - 1
    T = n_steps
    L = offsets.shape[0] - 1
    N = offsets[L]
    r0 = offsets[L - 1]
    K = N - r0
    n_chunks = grads.shape[0]
    inv_tau_m = 1.0 / tau_m
    inv_tau_s = 1.0 / tau_s
    layer_of = np.empty(N, dtype=np.int64)
    for l in range(L):
        for g in range(offsets[l], offsets[l + 1]):
            layer_of[g] = l
    n0 = offsets[1]
    for ch in prange(n_chunks):
        pV = np.zeros(N, dtype=alpha.dtype)
        pI = np.zeros(N, dtype=alpha.dtype)
        q = np.zeros(N, dtype=alpha.dtype)
        jump = np.zeros(N, dtype=alpha.dtype)
        G = grads[ch]
        ga = g_alpha[ch]
        gb = g_beta[ch]
        gc = g_c[ch]
        gaa = g_avg[ch, 0]
        gca = g_avg[ch, 1]
        for b in range(ch, B, n_chunks):
            pV[:] = 0.0
            pI[:] = 0.0
            lo_b = rec_ptr[b]
            k = rec_ptr[b + 1]  # records at index >= k are processed
            for n in range(T - 1, -1, -1):
                # 4'. jumps for the spikes of step n (time (n+1)*dt), all computed from the
                # adjoints just after the spikes before any is applied
                k_lo = k
                while k_lo > lo_b and rec_step[k_lo - 1] == n:
                    k_lo -= 1
                if k_lo < k:
                    for g in range(N):
                        q[g] = pV[g] * inv_tau_m[g] - pI[g] * inv_tau_s[g]
                    for r in range(k_lo, k):
                        g = rec_neuron[r]
                        l = layer_of[g]
                        o = offsets[l]
                        j = g - o
                        if l == L - 1:  # spiking readout: no targets, only the spike-time loss
                            val = theta * pV[g]
                            if has_grad_first and first_step[b, j] == n:
                                val -= tau_m[g] * grad_first[b, j]
                            jump[r - k_lo] = val / rec_den[r]
                            continue
                        o2 = offsets[l + 1]
                        n_own = o2 - o
                        n_next = offsets[l + 2] - o2
                        qo = q[o:o2]
                        qn = q[o2 : o2 + n_next]
                        s = 0.0
                        if rec_off[l] >= 0:
                            a = rec_off[l] + j * n_own
                            w = weights[a : a + n_own]
                            for m in range(n_own):
                                s += w[m] * qo[m]
                        a = in_off[l + 1] + j * n_next
                        w = weights[a : a + n_next]
                        for m in range(n_next):
                            s += w[m] * qn[m]
                        val = (theta * pV[g] + tau_m[g] * s) / rec_den[r]
                        if has_reg:
                            val += reg[b, g]
                        jump[r - k_lo] = val
                    for r in range(k_lo, k):
                        pV[rec_neuron[r]] += jump[r - k_lo]
                k = k_lo
                # 3'. back through the free evolution of step n
                if keep_states:
                    for g in range(N):
                        ga[g] += pV[g] * states_v[b, n, g]
                        gc[g] += pV[g] * states_i[b, n, g]
                        gb[g] += pI[g] * states_i[b, n, g]
                for g in range(N):
                    p_i = beta[g] * pI[g] + c[g] * pV[g]
                    p_v = alpha[g] * pV[g]
                    pI[g] = p_i if abs(p_i) >= TINY else 0.0
                    pV[g] = p_v if abs(p_v) >= TINY else 0.0
                # 2'. loss source of step n, constant over the step (output = step average)
                if has_grad_v:
                    for j in range(K):
                        gvj = grad_v[b, n, j]
                        pV[r0 + j] += a_avg[j] * gvj
                        pI[r0 + j] += c_avg[j] * gvj
                        if keep_states:
                            gaa[j] += gvj * states_v[b, n, r0 + j]
                            gca[j] += gvj * states_i[b, n, r0 + j]
                # 1'. arrivals at n*dt sample p_I of the targets: dL/dw[row, :] += p_I
                for e in range(in_ptr[b * T + n], in_ptr[b * T + n + 1]):
                    a = in_off[0] + in_channel[e] * n0
                    gw = G[a : a + n0]
                    for j in range(n0):
                        gw[j] += pI[j]
                r_lo = k
                while r_lo > lo_b and rec_step[r_lo - 1] == n - 1:
                    r_lo -= 1
                for r in range(r_lo, k):
                    g = rec_neuron[r]
                    l = layer_of[g]
                    if l == L - 1:
                        continue
                    o = offsets[l]
                    o2 = offsets[l + 1]
                    i = g - o
                    n_own = o2 - o
                    n_next = offsets[l + 2] - o2
                    pIo = pI[o:o2]
                    pIn = pI[o2 : o2 + n_next]
                    if rec_off[l] >= 0:
                        a = rec_off[l] + i * n_own
                        gw = G[a : a + n_own]
                        for m in range(n_own):
                            gw[m] += pIo[m]
                    a = in_off[l + 1] + i * n_next
                    gw = G[a : a + n_next]
                    for m in range(n_next):
                        gw[m] += pIn[m]
    return 0
