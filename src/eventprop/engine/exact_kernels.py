"""numba kernels of exact spike timing (parallel over the batch); semantics of ``exact_torch``.

Read :mod:`eventprop.engine.exact_torch` first: same model, same events, same adjoint. Here the
work is organised so that a step costs little more than in the grid kernels:

forward, per sample, step and layer
    1. *superposition*: the end-of-step state is linear in the step's arrivals, so it is
       accumulated directly -- ``V_end = alpha V + c I + sum_e w_e c(s_e)``,
       ``I_end = beta I + sum_e w_e b(s_e)`` with ``s_e`` the time from the arrival to the step
       end: one weight row per arrival, as in the grid kernels, with two scalar factors
       (per-neuron factors for heterogeneous time constants). Alongside,
       ``K = sum_e max(w_e, 0) c(min(s_e, t_peak))`` bounds what the kicks can add to ``V``;
    2. *candidates*: by superposition (resets and negative kicks only lower V, and ``c`` rises
       up to ``t_peak``), over the step ``V <= F + K`` with ``F = V0 + (1 - alpha)
       max(max(I0, 0) - V0, 0)`` bounding the free evolution; only neurons where this bound
       reaches theta can spike (a rigorous bound: no crossing is ever missed);
    3. *sweep*: the candidates are followed exactly through the step's events in time order
       (arrivals and the spikes of their own layer); in each interval the closed-form peak test
       says whether one crosses, Newton's method finds when (see ``exact_torch``). The
       earliest crossing of the layer is committed (record, reset, recurrent row superposed,
       currents of the candidates updated, neurons pushed over the bound by that row join the
       sweep) and the sweep goes on from there: cascades and repeated crossings inside a step
       come out in time order;
    4. the readout integrates its voltage over the step in closed form, by superposition too.

backward (weights only: time constants use the dense kernel below), per sample and step
    The adjoint inside a step is also a superposition: ``p(t) = Phi(T_end - t)^T p(T_end)``
    plus the readout source and the jumps of the layer's spikes after ``t``, each of which only
    touches its own neuron. So an arrival at ``t_e`` adds ``b(s) p_I(end) + c(s) p_V(end)``
    (+ source term) to its gradient row and a few scalar corrections for the spikes of the same
    step after it; a spike's target sum is two dot products with the end-of-step adjoints plus
    corrections for the later spikes of the step.

``exact_backward_dense`` integrates the adjoint event by event over the whole layer instead
(``O(events x neurons)``): used when time constants are trained, since their gradient needs
the states between events, which it recomputes from the step-start states kept by the forward.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from eventprop.engine import numba_kernels  # noqa: F401  (selects numba's threading layer)
from eventprop.engine.numba_kernels import _FASTMATH

__all__ = ["exact_backward_dense", "exact_backward_fast", "exact_forward_kernel"]

_NEWTON_ITERATIONS = 200
_EPS = np.finfo(np.float64).eps
#: candidates are taken with this relative margin below theta (rounding in the bound)
_BOUND_MARGIN = 1e-9


# --------------------------------------------------------------------------- closed forms
@njit(cache=True, fastmath=_FASTMATH)
def _phi(x):
    """(1 - exp(-x))/x for x >= 0."""
    if x < 1e-3:
        return 1.0 - x * (0.5 - x * (1.0 / 6.0 - x / 24.0))
    return -math.expm1(-x) / x


@njit(cache=True, fastmath=_FASTMATH)
def _psi(y):
    """-log(1 - y)/y for y < 1."""
    if abs(y) < 1e-4:
        return 1.0 + y * (0.5 + y / 3.0)
    return -math.log1p(-y) / y


@njit(cache=True, fastmath=_FASTMATH)
def _c_of(s, a, b, itm, kap, sep, tge, absd):
    """c(s) = tau_s/(tau_m - tau_s) (a - b), given a = exp(-s/tau_m) and b = exp(-s/tau_s).

    Well separated time constants (``sep``): the difference is harmless (|kap| is small).
    Otherwise the form ``s/tau_m exp(-s/max(tau)) phi(s |1/tau_s - 1/tau_m|)``.
    """
    if sep:
        return kap * (a - b)
    e = a if tge else b
    return s * itm * e * _phi(s * absd)


@njit(cache=True, fastmath=_FASTMATH)
def _prop(s, g, itm, its, kap, sep, tge, absd):
    """Propagators ``(exp(-s/tau_m), exp(-s/tau_s), c(s))`` of neuron ``g`` over ``s >= 0``."""
    a = math.exp(-s * itm[g])
    b = math.exp(-s * its[g])
    return a, b, _c_of(s, a, b, itm[g], kap[g], sep[g], tge[g], absd[g])


@njit(cache=True, fastmath=_FASTMATH)
def _prop_ratio(em1, es1, em0, es0, s, itm, kap, sep, tge, absd):
    """Propagators ``(a, b, c(s))`` over ``s = t1 - t0 > 0`` of a homogeneous layer, from the
    step-relative exponentials ``exp(-t/tau_m)``, ``exp(-t/tau_s)`` of both ends."""
    a = em1 / em0
    b = es1 / es0
    return a, b, _c_of(s, a, b, itm, kap, sep, tge, absd)


@njit(cache=True, fastmath=_FASTMATH)
def _exprel2(u):
    """(exp(u) - 1)/u and ((u - 1) exp(u) + 1)/u**2."""
    if abs(u) < 0.05:
        val = 0.0
        der = 0.0
        fact = 1.0
        for k in range(12):
            fact *= k + 1  # (k+1)!
        # Horner from the top: exprel = sum u^k/(k+1)!, der = sum k u^(k-1)/(k+1)!
        f1 = fact
        for k in range(11, -1, -1):
            val = val * u + 1.0 / f1
            f1 /= k + 1
        f2 = 1.0
        for k in range(13):
            f2 *= k + 1  # 13!
        for k in range(12, 0, -1):
            der = der * u + k / f2
            f2 /= k + 1
        return val, der
    e = math.exp(u)
    return math.expm1(u) / u, ((u - 1.0) * e + 1.0) / (u * u)


@njit(cache=True, fastmath=_FASTMATH)
def _tau_derivs(s, tm, ts):
    """d(a, b, c, kv, ki)/d(tau_m, tau_s) over an interval s (see exact_torch)."""
    itm = 1.0 / tm
    its = 1.0 / ts
    a = math.exp(-s * itm)
    b = math.exp(-s * its)
    u = s * (itm - its)
    g = s * itm * a
    e, de = _exprel2(u)
    c = g * e
    da_m = a * s * itm * itm
    db_s = b * s * its * its
    dc_m = s * itm * itm * a * (s * itm - 1.0) * e - g * de * s * itm * itm
    dc_s = g * de * s * its * its
    dkv_m = -math.expm1(-s * itm) - tm * da_m
    dki_m = -c - tm * dc_m
    dki_s = -math.expm1(-s * its) - ts * db_s - tm * dc_s
    return da_m, db_s, dc_m, dc_s, dkv_m, dki_m, dki_s


# --------------------------------------------------------------------------- crossings
@njit(cache=True, fastmath=_FASTMATH)
def _peak(V, I, tm, ts, itm):
    """Time of the maximum of V from (V, I) with I > V, I > 0 (inf: V rises for ever)."""
    u = (I - V) * itm / I
    y = (tm - ts) * u
    if y >= 1.0:
        return math.inf
    return tm * ts * u * _psi(y)


@njit(cache=True, fastmath=_FASTMATH)
def _root(V, I, hi, itm, its, kap, sep, tge, absd, theta):
    """Crossing time in [0, hi] of V from (V < theta, I), V rising and concave up to ``hi``.

    Newton's method from the left converges monotonically (the tangent of a concave rising
    function lies above it). Returns ``(x, exp(-x/tau_m), exp(-x/tau_s), converged)``.
    """
    x = 0.0
    ax = 1.0
    bx = 1.0
    tol = 4.0 * _EPS
    for _ in range(_NEWTON_ITERATIONS):
        av = ax * V
        ci = _c_of(x, ax, bx, itm, kap, sep, tge, absd) * I
        v = av + ci
        f = v - theta
        if f >= 0.0:
            return x, ax, bx, True
        # rounding level of f: the terms of V (large currents make it exceed eps * theta)
        noise = tol * (abs(av) + abs(ci) + theta)
        fp = (bx * I - v) * itm
        if fp > 0.0:
            xn = x - f / fp
        else:
            xn = hi
        if xn > hi:
            xn = hi
        if xn < x:
            xn = x
        d = xn - x
        if d <= tol * xn or -f <= noise:  # converged (to rounding of x, or of V)
            return xn, ax * (1.0 - d * itm), bx * (1.0 - d * its), True
        x = xn
        ax = _shift(ax, d * itm)
        bx = _shift(bx, d * its)
    return x, ax, bx, False


@njit(cache=True, fastmath=_FASTMATH)
def _shift(e, u):
    """e * exp(-u) for u >= 0 (a Taylor polynomial for small u: Newton's last steps)."""
    if u < 1e-3:
        return e * (1.0 - u * (1.0 - u * (0.5 - u * (1.0 / 6.0 - u * (1.0 / 24.0)))))
    return e * math.exp(-u)


@njit(cache=True, fastmath=_FASTMATH)
def _advance(V, I, S, itm, its, kap, sep, tge, absd):
    """(V, I) free-running over S > 0."""
    a = math.exp(-S * itm)
    b = math.exp(-S * its)
    return a * V + _c_of(S, a, b, itm, kap, sep, tge, absd) * I, b * I


@njit(cache=True, fastmath=_FASTMATH)
def _catch_up(m, v0, i0, t_stop, at, ar, na, W, st, sj, ns, R, itm, its, kap, sep, tge, absd):
    """State of neuron m at ``t_stop`` after the first ``na`` arrivals and ``ns`` layer spikes.

    Used for a neuron that becomes a candidate through a recurrent spike at ``t_stop``: it
    could not cross before, so it is only propagated (same event order as the sweep: at equal
    times a spike comes before an arrival).
    """
    V = v0
    I = i0
    t = 0.0
    ia = 0
    isx = 0
    while ia < na or isx < ns:
        if ia < na and (isx >= ns or at[ia] < st[isx]):
            te = at[ia]
        else:
            te = st[isx]
        S = te - t
        if S > 0.0:
            V, I = _advance(V, I, S, itm, its, kap, sep, tge, absd)
            t = te
        if ia < na and (isx >= ns or at[ia] < st[isx]):
            I += W[ar[ia], m]
            ia += 1
        else:
            if sj[isx] == m:
                V = 0.0
            if R.shape[0] > 0:
                I += R[sj[isx], m]
            isx += 1
    S = t_stop - t
    if S > 0.0:
        V, I = _advance(V, I, S, itm, its, kap, sep, tge, absd)
    return V, I


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
