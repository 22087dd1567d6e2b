"""Exact-timing forward kernel (numba, parallel over the batch).

Steps 1-4 of the forward pass described in :mod:`eventprop.engine.exact_kernels`
(superposition of the step's arrivals, the candidate bound, the sweep of the candidates through
the step's events in time order, the readout's closed-form step integral).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from eventprop.engine.exact_propagation import (
    _c_of,
    _catch_up,
    _peak,
    _prop,
    _prop_ratio,
    _root,
)
from eventprop.engine.numba_kernels import _FASTMATH

__all__ = ["exact_forward_kernel"]

#: candidates are taken with this relative margin below theta (rounding in the bound)
_BOUND_MARGIN = 1e-9


# --------------------------------------------------------------------------- forward
@njit(cache=True)
def _widest(offsets):
    """The most neurons of one layer."""
    widest = 1
    for l in range(offsets.shape[0] - 1):
        if offsets[l + 1] - offsets[l] > widest:
            widest = offsets[l + 1] - offsets[l]
    return widest


@njit(cache=True)
def _grow_f(x, n):
    y = np.empty(max(2 * x.shape[0], n), x.dtype)
    y[: x.shape[0]] = x
    return y


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _forward_kernel_one(
    b,  # the sample
    in_ptr,  # (B*T+1,) int64 CSR pointers of the input events per (sample, step)
    in_channel,  # (E,) int32
    in_time,  # (E,) float64 time inside the step (ms)
    n_steps,
    w_in,  # typed list of (n_pre, n_l)
    w_rec,  # typed list of (n_l, n_l) or (0, 0)
    offsets,  # (L+1,) int64
    alpha,
    beta,
    c,  # (N,) float64 full-step propagators
    kv_dt,
    ki_dt,  # (N,) float64 full-step integral coefficients (readout)
    tau_m,
    tau_s,
    kap,  # (N,) tau_s/(tau_m - tau_s) (0 where not separated)
    sep,  # (N,) bool: time constants well separated
    homog,  # (L,) bool: one (tau_m, tau_s) for the whole layer
    tpk,  # (N,) time of the peak of c(s), the voltage response to a unit kick
    cpk,  # (N,) c at that peak
    theta,
    min_denominator,
    spiking_readout,
    dt,
    max_in,  # most input events of one (sample, step)
    keep_states,
    states_v,  # (B, T, N) when keep_states else (1, 1, 1)
    states_i,
    v_out,  # (B, T, K) output: readout voltage averaged over each step
    first,  # (B, K) output, pre-filled with T*dt
    counts,  # (B, N_hidden) output, zeros
    capacity,
    rec_step,  # (B, capacity) int32
    rec_neuron,  # (B, capacity) int32 global index
    rec_den,  # (B, capacity)
    rec_time,  # (B, capacity) float64 time inside the step (ms)
    rec_count,  # (B,) int64 output (may exceed capacity)
    clamped,  # (B,) int64 output
    counters,  # (B, 6) int64 output: multi, transient, (missed), cascades, unresolved, cand.
    max_spikes,  # most records of one sample (see exact_spec.sample_spike_limit)
    step_limit,  # (L,) int64 most spikes of one layer in one step (exact_spec.step_spike_limit)
    storm,  # (B, 3) int64 output: (1 per sample / 2 per step, layer, step) where a bound was passed
):
    """One sample of :func:`exact_forward_kernel`.

    A sample that passes ``max_spikes`` records or ``step_limit[l]`` spikes of layer ``l`` in
    one step stops there and says where in ``storm`` (0 in column 0: no bound was passed): the
    caller raises, since a runaway network would otherwise never finish its forward pass.
    """
    T = n_steps
    L = len(w_in)
    N = offsets[L]
    max_nl = _widest(offsets)
    itm_all = 1.0 / tau_m
    its_all = 1.0 / tau_s
    absd_all = np.abs(its_all - itm_all)
    tge_all = tau_m >= tau_s
    theta_lo = theta * (1.0 - _BOUND_MARGIN)
    t_end = T * dt
    dtype = v_out.dtype
    V = np.zeros(N, dtype)
    I = np.zeros(N, dtype)
    Vend = np.empty(max_nl, np.float64)
    Iend = np.empty(max_nl, np.float64)
    Imax = np.empty(max_nl, np.float64)  # sum of positive kicks times c(min(s, peak))
    Fb = np.empty(max_nl, np.float64)  # bound on the free evolution over the step
    J = np.empty(max_nl, np.float64)
    iscand = np.zeros(max_nl, np.bool_)
    notc = np.ones(max_nl, np.float64)
    cand = np.empty(max_nl, np.int64)
    cV = np.empty(max_nl, np.float64)
    cI = np.empty(max_nl, np.float64)
    nV = np.empty(max_nl, np.float64)
    nI = np.empty(max_nl, np.float64)
    xc = np.empty(max_nl, np.int64)
    x_hi = np.empty(max_nl, np.float64)
    x_lb = np.empty(max_nl, np.float64)
    ext = np.zeros(max_nl, np.bool_)
    nspk = np.zeros(max_nl, np.int64)
    resm = np.zeros(max_nl, np.float64)
    arr_t = np.empty(max(max_in, 1), np.float64)
    arr_r = np.empty(max(max_in, 1), np.int64)
    cap_a = max(max_in, 4 * max_nl + 64)
    arr_em = np.empty(cap_a, np.float64)
    arr_es = np.empty(cap_a, np.float64)
    cap_s = 4 * max_nl + 64
    sa_t = np.empty(cap_s, np.float64)
    sa_j = np.empty(cap_s, np.int64)
    sb_t = np.empty(cap_s, np.float64)
    sb_j = np.empty(cap_s, np.int64)
    nsb = 0
    k = 0
    n_cl = 0
    c_multi = 0
    c_trans = 0
    c_casc = 0
    c_unres = 0
    c_cand = 0
    for n in range(T):
        if keep_states:
            for g in range(N):
                states_v[b, n, g] = V[g]
                states_i[b, n, g] = I[g]
        e0 = in_ptr[b * T + n]
        e1 = in_ptr[b * T + n + 1]
        for l in range(L):
            o = offsets[l]
            nl = offsets[l + 1] - o
            W = w_in[l]
            R = w_rec[l]
            has_rec = R.shape[0] > 0
            ro = l == L - 1
            spk = (not ro) or spiking_readout
            hom = homog[l]
            # ---- arrivals of this step
            if l == 0:
                na = e1 - e0
                for i in range(na):
                    arr_t[i] = in_time[e0 + i]
                    arr_r[i] = in_channel[e0 + i]
                at = arr_t
                ar = arr_r
            else:
                na = nsb
                at = sb_t
                ar = sb_j
            if na > arr_em.shape[0]:
                arr_em = np.empty(2 * na, np.float64)
                arr_es = np.empty(2 * na, np.float64)
            # ---- 1. superposition of the free evolution and the arrivals
            itm_o = itm_all[o]
            its_o = its_all[o]
            kap_o = kap[o]
            sep_o = sep[o]
            tge_o = tge_all[o]
            absd_o = absd_all[o]
            al_o = alpha[o]
            be_o = beta[o]
            # layer slices (x[o + j] in a loop would keep it scalar: see numba_kernels)
            Vo = V[o : o + nl]
            Io = I[o : o + nl]
            alpha_o = alpha[o : o + nl]
            beta_o = beta[o : o + nl]
            c_o = c[o : o + nl]
            for j in range(nl):
                v0 = Vo[j]
                i0 = Io[j]
                Vend[j] = alpha_o[j] * v0 + c_o[j] * i0
                Iend[j] = beta_o[j] * i0
                Imax[j] = 0.0
                Fb[j] = v0 + (1.0 - alpha_o[j]) * max(max(i0, 0.0) - v0, 0.0)
            if ro:
                kv_o = kv_dt[o : o + nl]
                ki_o = ki_dt[o : o + nl]
                for j in range(nl):
                    J[j] = kv_o[j] * Vo[j] + ki_o[j] * Io[j]
            for i in range(na):
                row = ar[i]
                if hom:
                    # exp(-t/tau) of the arrival, from the step start: shared by the
                    # superposition and by the sweep's intervals
                    em = math.exp(-at[i] * itm_o)
                    es = math.exp(-at[i] * its_o)
                    arr_em[i] = em
                    arr_es[i] = es
                    a_, b_, c_ = _prop_ratio(
                        al_o, be_o, em, es, dt - at[i], itm_o, kap_o, sep_o, tge_o, absd_o
                    )
                    if spk:
                        # a kick w at t_e raises V by at most w c(min(t - t_e, t_peak))
                        cb_ = c_ if dt - at[i] <= tpk[o] else cpk[o]
                        for j in range(nl):
                            w = W[row, j]
                            Vend[j] += c_ * w
                            Iend[j] += b_ * w
                            Imax[j] += cb_ * max(w, 0.0)
                    else:
                        for j in range(nl):
                            w = W[row, j]
                            Vend[j] += c_ * w
                            Iend[j] += b_ * w
                    if ro:
                        ki_ = tau_s[o] * (1.0 - b_) - tau_m[o] * c_
                        for j in range(nl):
                            J[j] += ki_ * W[row, j]
                else:
                    s = dt - at[i]
                    for j in range(nl):
                        g = o + j
                        a_, b_, c_ = _prop(s, g, itm_all, its_all, kap, sep, tge_all, absd_all)
                        w = W[row, j]
                        Vend[j] += c_ * w
                        Iend[j] += b_ * w
                        Imax[j] += (c_ if s <= tpk[g] else cpk[g]) * max(w, 0.0)
                        if ro:
                            J[j] += (tau_s[g] * (1.0 - b_) - tau_m[g] * c_) * w
            ns = 0
            if spk:
                # ---- 2. candidates: the rigorous bound reaches theta
                ncand = 0
                for j in range(nl):
                    g = o + j
                    v0 = V[g]
                    bound = Fb[j] + Imax[j]
                    if bound >= theta_lo:
                        cand[ncand] = j
                        iscand[j] = True
                        notc[j] = 0.0
                        cV[ncand] = v0
                        cI[ncand] = I[g]
                        if l == 0:  # reaches theta without same-step hidden spikes?
                            ext[ncand] = True
                        else:
                            ext[ncand] = Fb[j] >= theta_lo
                        ncand += 1
                c_cand += ncand
                # ---- 3. sweep through the step: candidates only, crossings in time order
                t = 0.0
                em_t = 1.0  # exp(-t/tau_m), exp(-t/tau_s) of the sweep time (homogeneous)
                es_t = 1.0
                ia = 0
                a_ = 1.0
                b_ = 1.0
                c_ = 0.0
                em_te = 1.0
                es_te = 1.0
                while ncand > 0:
                    if ia < na:
                        te = at[ia]
                    else:
                        te = dt
                    S = te - t
                    if S < 0.0:
                        S = 0.0
                    if hom:
                        if ia < na:
                            em_te = arr_em[ia]
                            es_te = arr_es[ia]
                        else:
                            em_te = al_o
                            es_te = be_o
                        a_, b_, c_ = _prop_ratio(
                            em_te, es_te, em_t, es_t, S, itm_o, kap_o, sep_o, tge_o, absd_o
                        )
                    # end states, and which candidates cross in this interval (with a
                    # lower bound on the time: the tangent at the start, V being concave)
                    nx = 0
                    if hom:  # end states of all candidates; does any of them cross?
                        anyx = 0
                        for ci in range(ncand):
                            v = cV[ci]
                            i = cI[ci]
                            vS = a_ * v + c_ * i
                            iS = b_ * i
                            nV[ci] = vS
                            nI[ci] = iS
                            anyx += (v >= theta) | (
                                (i > v) & (i > 0.0) & ((vS >= theta) | (iS < vS))
                            )
                        if anyx == 0:
                            ncheck = 0
                        else:
                            ncheck = ncand
                    else:
                        ncheck = ncand
                    for ci in range(ncheck):
                        g = o + cand[ci]
                        v = cV[ci]
                        i = cI[ci]
                        if not hom:
                            a_, b_, c_ = _prop(S, g, itm_all, its_all, kap, sep, tge_all, absd_all)
                        vS = a_ * v + c_ * i
                        iS = b_ * i
                        nV[ci] = vS
                        nI[ci] = iS
                        if v >= theta:
                            hi = 0.0
                        elif i <= 0.0 or i <= v:
                            continue  # V falls from here on (or never rises to theta)
                        elif vS >= theta:
                            hi = S
                        elif iS < vS:  # falls at the end: crossing iff the peak reaches theta
                            hi = _peak(v, i, tau_m[g], tau_s[g], itm_all[g])
                            if hi >= S:
                                continue
                            ah, _, c_h = _prop(hi, g, itm_all, its_all, kap, sep, tge_all, absd_all)
                            if ah * v + c_h * i < theta:
                                continue
                        else:
                            continue  # still rising at the end and below theta
                        xc[nx] = ci
                        x_hi[nx] = hi
                        x_lb[nx] = (theta - v) * tau_m[g] / (i - v) if v < theta else 0.0
                        nx += 1
                    bx = math.inf
                    best = -1
                    bax = 1.0
                    bbx = 1.0
                    while nx > 0:  # root-find in the order of the lower bounds
                        q = 0
                        for q2 in range(1, nx):
                            if x_lb[q2] < x_lb[q]:
                                q = q2
                        if x_lb[q] >= bx:
                            break
                        ci = xc[q]
                        g = o + cand[ci]
                        if x_hi[q] == 0.0:
                            x, ax, bxx, ok = 0.0, 1.0, 1.0, True
                        else:
                            x, ax, bxx, ok = _root(
                                cV[ci], cI[ci], x_hi[q], itm_all[g], its_all[g], kap[g],
                                sep[g], tge_all[g], absd_all[g], theta,
                            )  # fmt: skip
                        if not ok:
                            c_unres += 1
                        if x < bx:
                            bx = x
                            best = ci
                            bax = ax
                            bbx = bxx
                        nx -= 1
                        xc[q] = xc[nx]
                        x_hi[q] = x_hi[nx]
                        x_lb[q] = x_lb[nx]
                    if best < 0:  # no crossing before the next arrival
                        for ci in range(ncand):
                            cV[ci] = nV[ci]
                            cI[ci] = nI[ci]
                        t = te
                        if hom:
                            em_t = em_te
                            es_t = es_te
                        if ia >= na:
                            break
                        row = ar[ia]
                        for ci in range(ncand):
                            cI[ci] += W[row, cand[ci]]
                        ia += 1
                        continue
                    # advance every candidate to the crossing and commit it
                    if bx > 0.0:
                        if hom:
                            c_ = _c_of(bx, bax, bbx, itm_o, kap_o, sep_o, tge_o, absd_o)
                            for ci in range(ncand):
                                cV[ci] = bax * cV[ci] + c_ * cI[ci]
                                cI[ci] = bbx * cI[ci]
                            em_t *= bax
                            es_t *= bbx
                        else:
                            for ci in range(ncand):
                                g = o + cand[ci]
                                a2, b2, c2 = _prop(
                                    bx, g, itm_all, its_all, kap, sep, tge_all, absd_all
                                )
                                cV[ci] = a2 * cV[ci] + c2 * cI[ci]
                                cI[ci] = b2 * cI[ci]
                    t = t + bx
                    js = cand[best]
                    g = o + js
                    den = cI[best] - theta
                    if den < min_denominator:
                        den = min_denominator
                        n_cl += 1
                    cV[best] = 0.0
                    if k < capacity:
                        rec_step[b, k] = n
                        rec_neuron[b, k] = g
                        rec_den[b, k] = den
                        rec_time[b, k] = t
                    k += 1
                    if k > max_spikes:  # runaway excitation: stop the sample, say where
                        storm[b, 0] = 1
                        storm[b, 1] = l
                        storm[b, 2] = n
                        rec_count[b] = k
                        return
                    if nspk[js] > 0:
                        c_multi += 1
                    nspk[js] += 1
                    if not ext[best]:
                        c_casc += 1
                    if ns >= sa_t.shape[0]:
                        sa_t = _grow_f(sa_t, ns + 1)
                        sa_j = _grow_f(sa_j, ns + 1)
                    sa_t[ns] = t
                    sa_j[ns] = js
                    ns += 1
                    if ro:
                        if first[b, js] >= t_end:
                            first[b, js] = n * dt + t
                    else:
                        counts[b, g] += 1.0
                    s = dt - t
                    if hom:
                        aj = al_o / em_t
                    else:
                        aj = math.exp(-s * itm_all[g])
                    Vend[js] -= theta * aj
                    resm[js] += theta * aj
                    if ro:
                        J[js] -= theta * tau_m[g] * (1.0 - aj)
                    if has_rec:
                        # the spike's row, and the targets it pushes over the bound (few:
                        # counted branch-free, collected only when there are any)
                        hitf = 0.0
                        if hom:
                            a2, b2, c2 = _prop_ratio(
                                al_o, be_o, em_t, es_t, s, itm_o, kap_o, sep_o, tge_o, absd_o
                            )
                            cb2 = c2 if s <= tpk[o] else cpk[o]
                            for mm in range(nl):
                                w = R[js, mm]
                                Vend[mm] += c2 * w
                                Iend[mm] += b2 * w
                                im = Imax[mm] + cb2 * max(w, 0.0)
                                Imax[mm] = im
                                hitf += max(Fb[mm] + im - theta_lo, 0.0) * notc[mm]
                        else:
                            for mm in range(nl):
                                gm = o + mm
                                a2, b2, c2 = _prop(
                                    s, gm, itm_all, its_all, kap, sep, tge_all, absd_all
                                )
                                w = R[js, mm]
                                Vend[mm] += c2 * w
                                Iend[mm] += b2 * w
                                im = Imax[mm] + (c2 if s <= tpk[gm] else cpk[gm]) * max(w, 0.0)
                                Imax[mm] = im
                                hitf += max(Fb[mm] + im - theta_lo, 0.0) * notc[mm]
                        for ci in range(ncand):
                            cI[ci] += R[js, cand[ci]]
                        if hitf > 0.0:
                            for mm in range(nl):
                                if iscand[mm]:
                                    continue
                                gm = o + mm
                                v0 = V[gm]
                                if Fb[mm] + Imax[mm] >= theta_lo:
                                    vv, ii = _catch_up(
                                        mm, v0, I[gm], t, at, ar, ia, W, sa_t, sa_j, ns, R,
                                        itm_all[gm], its_all[gm], kap[gm], sep[gm],
                                        tge_all[gm], absd_all[gm],
                                    )  # fmt: skip
                                    cand[ncand] = mm
                                    cV[ncand] = vv
                                    cI[ncand] = ii
                                    ext[ncand] = False
                                    ncand += 1
                                    iscand[mm] = True
                                    notc[mm] = 0.0
                                    c_cand += 1
                    if ns > step_limit[l]:  # runaway cascade: stop the sample, say where
                        storm[b, 0] = 2
                        storm[b, 1] = l
                        storm[b, 2] = n
                        rec_count[b] = k
                        return
                for ci in range(ncand):
                    iscand[cand[ci]] = False
                    notc[cand[ci]] = 1.0
                # ---- counters of the step: transient crossings
                for q in range(ns):
                    m = sa_j[q]
                    if nspk[m] > 0:
                        if Vend[m] + resm[m] < theta:
                            c_trans += 1
                        nspk[m] = 0
                    resm[m] = 0.0
            # ---- 4. end of step
            for j in range(nl):
                Vo[j] = Vend[j]
                Io[j] = Iend[j]
            if ro:
                for j in range(nl):
                    v_out[b, n, j] = J[j] / dt
            # this layer's spikes are the next layer's arrivals
            tmp_t = sb_t
            tmp_j = sb_j
            sb_t = sa_t
            sb_j = sa_j
            sa_t = tmp_t
            sa_j = tmp_j
            nsb = ns
    rec_count[b] = k
    clamped[b] = n_cl
    counters[b, 0] = c_multi
    counters[b, 1] = c_trans
    counters[b, 2] = c_multi + c_trans
    counters[b, 3] = c_casc
    counters[b, 4] = c_unres
    counters[b, 5] = c_cand


@njit(parallel=True, cache=True, nogil=True)
def exact_forward_kernel(n_samples, *args):
    """The forward pass, one sample per task (arguments: :func:`_forward_kernel_one`)."""
    for b in prange(n_samples):
        # one compiled signature (prange makes the index unsigned)
        _forward_kernel_one(np.int64(b), *args)
    return 0
