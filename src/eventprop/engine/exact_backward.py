"""Exact-timing backward kernels (numba, parallel over the batch).

``exact_backward_fast`` (weights only: the adjoint inside a step as a superposition of the
end-of-step adjoints) and ``exact_backward_dense`` (event by event over the whole layer, for
trained time constants); the overview is in :mod:`eventprop.engine.exact_kernels`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from eventprop.engine.exact_forward import _widest
from eventprop.engine.exact_propagation import _c_of, _prop_ratio, _tau_derivs
from eventprop.engine.numba_kernels import _FASTMATH

__all__ = ["exact_backward_dense", "exact_backward_fast"]


# --------------------------------------------------------------------------- backward helpers
@njit(cache=True)
def _layer_of(offsets):
    """The layer of every neuron."""
    layer_of = np.empty(offsets[-1], dtype=np.int64)
    for l in range(offsets.shape[0] - 1):
        for g in range(offsets[l], offsets[l + 1]):
            layer_of[g] = l
    return layer_of


@njit(cache=True)
def _step_records(rec_step, rec_neuron, layer_of, lo_b, hi, n, out_lo, out_hi):
    """Records of step ``n`` among a sample's ``[lo_b, hi)``, which end at ``hi``: returns
    where they start and splits them (layer-major) into per-layer ranges ``out_lo/out_hi``."""
    lo = hi
    while lo > lo_b and rec_step[lo - 1] == n:
        lo -= 1
    r = lo
    for l in range(out_lo.shape[0]):
        out_lo[l] = r
        while r < hi and layer_of[rec_neuron[r]] == l:
            r += 1
        out_hi[l] = r
    return lo


@njit(cache=True)
def _merge_events(l, e0, e1, in_time, in_channel, rec_time, rec_neuron, a_lo, a_hi, s_lo, s_hi,
                  o_below, o, ev_t, ev_k, ev_i, ev_r):  # fmt: skip
    """Arrivals and own spikes of a (step, layer) in forward order (spikes first at ties).

    kind 1: arrival (index: row of w_in; record: the arriving spike, -1 for inputs);
    kind 2: own spike (index: layer-local neuron; record: its record).
    """
    if l == 0:
        na = e1 - e0
    else:
        na = a_hi - a_lo
    ns = s_hi - s_lo
    ia = 0
    isx = 0
    ne = 0
    while ia < na or isx < ns:
        if ia < na:
            if l == 0:
                ta = in_time[e0 + ia]
            else:
                ta = rec_time[a_lo + ia]
        if ia < na and (isx >= ns or ta < rec_time[s_lo + isx]):
            ev_t[ne] = ta
            ev_k[ne] = 1
            if l == 0:
                ev_i[ne] = in_channel[e0 + ia]
                ev_r[ne] = -1
            else:
                ev_i[ne] = rec_neuron[a_lo + ia] - o_below
                ev_r[ne] = a_lo + ia
            ia += 1
        else:
            ev_t[ne] = rec_time[s_lo + isx]
            ev_k[ne] = 2
            ev_i[ne] = rec_neuron[s_lo + isx] - o
            ev_r[ne] = s_lo + isx
            isx += 1
        ne += 1
    return ne


# --------------------------------------------------------------------------- dense backward
@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _backward_dense_one(
    ch,  # the chunk: samples ch, ch + n_chunks, ...
    n_chunks,
    in_ptr,
    in_channel,
    in_time,
    n_steps,
    w_in,
    w_rec,
    offsets,
    tau_m,
    tau_s,
    kap,
    sep,
    theta,
    dt,
    rec_ptr,  # (B+1,) records of sample b: rec_ptr[b] .. rec_ptr[b+1] (step, layer, time order)
    rec_step,
    rec_neuron,
    rec_den,
    rec_time,
    rec_first,  # (R,) bool: first spike of a readout neuron
    grad_v,
    has_grad_v,
    grad_first,
    has_grad_first,
    reg,
    has_reg,
    max_events,  # most events of one (sample, step, layer)
    g_w_in,
    g_w_rec,
    homog,
    keep_states,
    states_v,
    states_i,
    g_tm,  # (n_chunks, N) dL/dtau_m
    g_ts,
):
    """One chunk of samples of :func:`exact_backward_dense`."""
    B = rec_ptr.shape[0] - 1
    T = n_steps
    L = len(w_in)
    N = offsets[L]
    max_nl = 1
    for l in range(L):
        if offsets[l + 1] - offsets[l] > max_nl:
            max_nl = offsets[l + 1] - offsets[l]
    layer_of = np.empty(N, dtype=np.int64)
    for l in range(L):
        for g in range(offsets[l], offsets[l + 1]):
            layer_of[g] = l
    itm = 1.0 / tau_m
    its = 1.0 / tau_s
    absd = np.abs(its - itm)
    tge = tau_m >= tau_s
    pV = np.zeros(N, np.float64)
    pI = np.zeros(N, np.float64)
    src = np.zeros(max_nl, np.float64)
    xv = np.zeros(max_nl, np.float64)
    xi = np.zeros(max_nl, np.float64)
    cap = max_events + 1
    ev_t = np.empty(cap, np.float64)
    ev_k = np.empty(cap, np.int64)
    ev_i = np.empty(cap, np.int64)
    ev_r = np.empty(cap, np.int64)
    nk = 1 if keep_states else 0
    xs_v = np.empty((cap * nk, max_nl), np.float64)
    xs_i = np.empty((cap * nk, max_nl), np.float64)
    lay_lo = np.empty(L, np.int64)
    lay_hi = np.empty(L, np.int64)
    gtm = g_tm[ch]
    gts = g_ts[ch]
    for b in range(ch, B, n_chunks):
        pV[:] = 0.0
        pI[:] = 0.0
        lo_b = rec_ptr[b]
        k = rec_ptr[b + 1]
        tsum = np.zeros(k - lo_b + 1, np.float64)
        for n in range(T - 1, -1, -1):
            k_lo = _step_records(rec_step, rec_neuron, layer_of, lo_b, k, n, lay_lo, lay_hi)
            e0 = in_ptr[b * T + n]
            e1 = in_ptr[b * T + n + 1]
            for l in range(L - 1, -1, -1):
                o = offsets[l]
                nl = offsets[l + 1] - o
                W = w_in[l]
                R = w_rec[l]
                has_rec = R.shape[0] > 0
                ro = l == L - 1
                Gi = g_w_in[l][ch]
                Gr = g_w_rec[l][ch]
                a_lo = lay_lo[l - 1] if l > 0 else 0
                a_hi = lay_hi[l - 1] if l > 0 else 0
                o_below = offsets[l - 1] if l > 0 else 0
                ne = _merge_events(
                    l, e0, e1, in_time, in_channel, rec_time, rec_neuron, a_lo, a_hi,
                    lay_lo[l], lay_hi[l], o_below, o, ev_t, ev_k, ev_i, ev_r,
                )  # fmt: skip
                has_src = ro and has_grad_v
                hom = homog[l]
                if has_src:
                    for j in range(nl):
                        src[j] = grad_v[b, n, j] / dt
                if keep_states:  # forward states just after every event
                    for j in range(nl):
                        xv[j] = states_v[b, n, o + j]
                        xi[j] = states_i[b, n, o + j]
                    t_prev = 0.0
                    for e in range(ne):
                        s = ev_t[e] - t_prev
                        a_ = math.exp(-s * itm[o])  # shared by a homogeneous layer
                        b_ = math.exp(-s * its[o])
                        c_ = _c_of(s, a_, b_, itm[o], kap[o], sep[o], tge[o], absd[o])
                        for j in range(nl):
                            g = o + j
                            if not hom:
                                a_ = math.exp(-s * itm[g])
                                b_ = math.exp(-s * its[g])
                                c_ = _c_of(s, a_, b_, itm[g], kap[g], sep[g], tge[g], absd[g])
                            xv[j] = a_ * xv[j] + c_ * xi[j]
                            xi[j] = b_ * xi[j]
                        if ev_k[e] == 1:
                            for j in range(nl):
                                xi[j] += W[ev_i[e], j]
                        else:
                            xv[ev_i[e]] = 0.0
                            if has_rec:
                                for j in range(nl):
                                    xi[j] += R[ev_i[e], j]
                        for j in range(nl):
                            xs_v[e, j] = xv[j]
                            xs_i[e, j] = xi[j]
                        t_prev = ev_t[e]
                t_cur = dt
                for e in range(ne - 1, -2, -1):  # e = -1: back to the step start
                    t_ev = ev_t[e] if e >= 0 else 0.0
                    s = t_cur - t_ev
                    # tau gradients over (t_ev, t_cur), then the adjoint back to t_ev
                    # (coefficients computed once for a homogeneous layer)
                    a_ = math.exp(-s * itm[o])
                    b_ = math.exp(-s * its[o])
                    c_ = _c_of(s, a_, b_, itm[o], kap[o], sep[o], tge[o], absd[o])
                    da_m, db_s, dc_m, dc_s, dkv_m, dki_m, dki_s = _tau_derivs(s, tau_m[o], tau_s[o])
                    for j in range(nl):
                        g = o + j
                        if not hom:
                            a_ = math.exp(-s * itm[g])
                            b_ = math.exp(-s * its[g])
                            c_ = _c_of(s, a_, b_, itm[g], kap[g], sep[g], tge[g], absd[g])
                        if keep_states:
                            if e >= 0:
                                v0 = xs_v[e, j]
                                i0 = xs_i[e, j]
                            else:
                                v0 = states_v[b, n, g]
                                i0 = states_i[b, n, g]
                            if not hom:
                                da_m, db_s, dc_m, dc_s, dkv_m, dki_m, dki_s = _tau_derivs(
                                    s, tau_m[g], tau_s[g]
                                )
                            gm = pV[g] * (da_m * v0 + dc_m * i0)
                            gs = (pV[g] * dc_s + pI[g] * db_s) * i0
                            if has_src:
                                gm += src[j] * (dkv_m * v0 + dki_m * i0)
                                gs += src[j] * dki_s * i0
                            gtm[g] += gm
                            gts[g] += gs
                        npi = b_ * pI[g] + c_ * pV[g]
                        npv = a_ * pV[g]
                        if has_src:
                            npv += src[j] * tau_m[g] * (1.0 - a_)
                            npi += src[j] * (tau_s[g] * (1.0 - b_) - tau_m[g] * c_)
                        pV[g] = npv
                        pI[g] = npi
                    if e < 0:
                        break
                    t_cur = t_ev
                    if ev_k[e] == 1:
                        row = ev_i[e]
                        for j in range(nl):
                            Gi[row, j] += pI[o + j]
                        if l > 0:
                            acc = 0.0
                            for j in range(nl):
                                acc += W[row, j] * (pV[o + j] * itm[o + j] - pI[o + j] * its[o + j])
                            tsum[ev_r[e] - lo_b] = acc
                    else:
                        j = ev_i[e]
                        g = o + j
                        r = ev_r[e]
                        target = 0.0
                        if has_rec:
                            for m in range(nl):
                                target += R[j, m] * (
                                    pV[o + m] * itm[o + m] - pI[o + m] * its[o + m]
                                )
                            for m in range(nl):
                                Gr[j, m] += pI[o + m]
                        if not ro:
                            target += tsum[r - lo_b]
                        drive = theta * pV[g] + tau_m[g] * target
                        if ro and has_grad_first and rec_first[r]:
                            drive -= tau_m[g] * grad_first[b, j]
                        jump = drive / rec_den[r]
                        if (not ro) and has_reg:
                            jump += reg[b, g]
                        pV[g] += jump
            k = k_lo


@njit(parallel=True, cache=True, nogil=True)
def exact_backward_dense(n_chunks, *args):
    """Weight and time-constant gradients, event by event.

    Arguments: :func:`_backward_dense_one`.
    """
    for ch in prange(n_chunks):
        # one compiled signature (prange makes the index unsigned)
        _backward_dense_one(np.int64(ch), n_chunks, *args)
    return 0


# --------------------------------------------------------------------------- fast backward
@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _backward_fast_one(
    ch,  # the chunk: samples ch, ch + n_chunks, ...
    n_chunks,
    in_ptr,
    in_channel,
    in_time,
    n_steps,
    w_in,
    w_rec,
    offsets,
    tau_m,
    tau_s,
    kap,
    sep,
    theta,
    dt,
    rec_ptr,
    rec_step,
    rec_neuron,
    rec_den,
    rec_time,
    rec_first,
    grad_v,
    has_grad_v,
    grad_first,
    has_grad_first,
    reg,
    has_reg,
    max_events,
    g_w_in,
    g_w_rec,
    alpha,
    beta,
    c,
    kv_dt,
    ki_dt,
):
    """One chunk of samples of :func:`exact_backward_fast`."""
    B = rec_ptr.shape[0] - 1
    T = n_steps
    L = len(w_in)
    N = offsets[L]
    max_nl = _widest(offsets)
    layer_of = _layer_of(offsets)
    pV = np.zeros(N, np.float64)
    pI = np.zeros(N, np.float64)
    src = np.zeros(max_nl, np.float64)
    cap = max_events + 1
    sp_em = np.empty(cap, np.float64)  # own spikes of the (step, layer): exp(-t/tau_m) ...
    sp_es = np.empty(cap, np.float64)
    sp_dl = np.empty(cap, np.float64)  # ... and their jumps
    lay_lo = np.empty(L, np.int64)
    lay_hi = np.empty(L, np.int64)
    for b in range(ch, B, n_chunks):
        pV[:] = 0.0
        pI[:] = 0.0
        lo_b = rec_ptr[b]
        k = rec_ptr[b + 1]
        tsum = np.zeros(k - lo_b + 1, np.float64)
        for n in range(T - 1, -1, -1):
            k_lo = _step_records(rec_step, rec_neuron, layer_of, lo_b, k, n, lay_lo, lay_hi)
            e0 = in_ptr[b * T + n]
            e1 = in_ptr[b * T + n + 1]
            for l in range(L - 1, -1, -1):
                o = offsets[l]
                nl = offsets[l + 1] - o
                W = w_in[l]
                R = w_rec[l]
                has_rec = R.shape[0] > 0
                ro = l == L - 1
                Gi = g_w_in[l][ch]
                Gr = g_w_rec[l][ch]
                tm = tau_m[o]
                ts = tau_s[o]
                itm = 1.0 / tm
                its = 1.0 / ts
                kp = kap[o]
                sp = sep[o]
                tg = tm >= ts
                ad = abs(its - itm)
                al = alpha[o]
                be = beta[o]
                has_src = ro and has_grad_v
                if has_src:
                    for j in range(nl):
                        src[j] = grad_v[b, n, j] / dt
                s_lo = lay_lo[l]
                s_hi = lay_hi[l]
                ns = s_hi - s_lo
                pVo = pV[o : o + nl]  # slices: pV[o + m] would defeat vectorisation
                pIo = pI[o : o + nl]
                # ---- own spikes, latest first: jumps from the end-of-step adjoints
                for q in range(ns - 1, -1, -1):
                    r = s_lo + q
                    t_k = rec_time[r]
                    j = rec_neuron[r] - o
                    g = o + j
                    em = math.exp(-t_k * itm)
                    es = math.exp(-t_k * its)
                    sp_em[q] = em
                    sp_es[q] = es
                    # propagators from t_k to the step end
                    a_s, b_s, c_s = _prop_ratio(al, be, em, es, dt - t_k, itm, kp, sp, tg, ad)
                    pv = a_s * pV[g]
                    if has_src:
                        pv += src[j] * tm * (1.0 - a_s)
                    target = 0.0
                    if has_rec:
                        d1 = 0.0
                        d2 = 0.0
                        for m in range(nl):
                            w = R[j, m]
                            d1 += w * pVo[m]
                            d2 += w * pIo[m]
                            Gr[j, m] += b_s * pIo[m] + c_s * pVo[m]
                        target = (a_s * itm - c_s * its) * d1 - b_s * its * d2
                    for q2 in range(q + 1, ns):  # later spikes of the step
                        r2 = s_lo + q2
                        j2 = rec_neuron[r2] - o
                        dtk = rec_time[r2] - t_k
                        a2, _, c2 = _prop_ratio(
                            sp_em[q2], sp_es[q2], em, es, dtk, itm, kp, sp, tg, ad
                        )
                        dl = sp_dl[q2]
                        if j2 == j:
                            pv += a2 * dl
                        if has_rec:
                            target += R[j, j2] * (a2 * itm - c2 * its) * dl
                            Gr[j, j2] += c2 * dl
                    if not ro:
                        target += tsum[r - lo_b]
                    drive = theta * pv + tm * target
                    if ro and has_grad_first and rec_first[r]:
                        drive -= tm * grad_first[b, j]
                    jump = drive / rec_den[r]
                    if (not ro) and has_reg:
                        jump += reg[b, g]
                    sp_dl[q] = jump
                # ---- arrivals: gradient rows (and target sums for the layer below)
                if l == 0:
                    na = e1 - e0
                else:
                    na = lay_hi[l - 1] - lay_lo[l - 1]
                for i in range(na):
                    if l == 0:
                        t_e = in_time[e0 + i]
                        row = in_channel[e0 + i]
                    else:
                        ra = lay_lo[l - 1] + i
                        t_e = rec_time[ra]
                        row = rec_neuron[ra] - offsets[l - 1]
                    em = math.exp(-t_e * itm)
                    es = math.exp(-t_e * its)
                    a_s, b_s, c_s = _prop_ratio(al, be, em, es, dt - t_e, itm, kp, sp, tg, ad)
                    if l == 0:
                        if has_src:
                            ki_s = ts * (1.0 - b_s) - tm * c_s
                            for m in range(nl):
                                Gi[row, m] += b_s * pIo[m] + c_s * pVo[m] + ki_s * src[m]
                        else:
                            for m in range(nl):
                                Gi[row, m] += b_s * pIo[m] + c_s * pVo[m]
                        acc = 0.0
                    else:
                        d1 = 0.0
                        d2 = 0.0
                        d3 = 0.0
                        if has_src:
                            ki_s = ts * (1.0 - b_s) - tm * c_s
                            for m in range(nl):
                                w = W[row, m]
                                d1 += w * pVo[m]
                                d2 += w * pIo[m]
                                d3 += w * src[m]
                                Gi[row, m] += b_s * pIo[m] + c_s * pVo[m] + ki_s * src[m]
                            kv_s = tm * (1.0 - a_s)
                            acc = (kv_s * itm - ki_s * its) * d3
                        else:
                            for m in range(nl):
                                w = W[row, m]
                                d1 += w * pVo[m]
                                d2 += w * pIo[m]
                                Gi[row, m] += b_s * pIo[m] + c_s * pVo[m]
                            acc = 0.0
                        acc += (a_s * itm - c_s * its) * d1 - b_s * its * d2
                    for q in range(ns):  # own spikes after the arrival
                        r2 = s_lo + q
                        dtk = rec_time[r2] - t_e
                        if dtk <= 0.0:
                            continue
                        j2 = rec_neuron[r2] - o
                        a2, _, c2 = _prop_ratio(
                            sp_em[q], sp_es[q], em, es, dtk, itm, kp, sp, tg, ad
                        )
                        dl = sp_dl[q]
                        Gi[row, j2] += c2 * dl
                        if l > 0:
                            acc += W[row, j2] * (a2 * itm - c2 * its) * dl
                    if l > 0:
                        tsum[lay_lo[l - 1] + i - lo_b] = acc
                # ---- back to the step start
                if has_src:
                    for m in range(nl):
                        g = o + m
                        pv = pV[g]
                        pI[g] = be * pI[g] + c[g] * pv + ki_dt[g] * src[m]
                        pV[g] = al * pv + kv_dt[g] * src[m]
                else:
                    for m in range(nl):
                        g = o + m
                        pv = pV[g]
                        pI[g] = be * pI[g] + c[g] * pv
                        pV[g] = al * pv
                for q in range(ns):
                    g = rec_neuron[s_lo + q]
                    t_k = rec_time[s_lo + q]
                    a0 = sp_em[q]
                    c0 = _c_of(t_k, a0, sp_es[q], itm, kp, sp, tg, ad)
                    pV[g] += a0 * sp_dl[q]
                    pI[g] += c0 * sp_dl[q]
            k = k_lo


@njit(parallel=True, cache=True, nogil=True)
def exact_backward_fast(n_chunks, *args):
    """Weight gradients for layer-wise homogeneous, fixed time constants (superposition).

    Arguments: :func:`_backward_fast_one`.
    """
    for ch in prange(n_chunks):
        # one compiled signature (prange makes the index unsigned)
        _backward_fast_one(np.int64(ch), n_chunks, *args)
    return 0
