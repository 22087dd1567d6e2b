"""Closed-form propagation of one neuron between events, and the crossing search.

Shared by the exact-timing forward (:mod:`eventprop.engine.exact_forward`) and backward
(:mod:`eventprop.engine.exact_backward`) kernels; the overview is in
:mod:`eventprop.engine.exact_kernels`. Between events ``V`` and ``I`` follow the closed form of
the model (a sum of two exponentials); ``_peak`` and ``_root`` decide whether and when ``V``
crosses theta inside an interval (closed-form peak test, then Newton's method).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from eventprop.engine.numba_kernels import _FASTMATH

_NEWTON_ITERATIONS = 200
_EPS = np.finfo(np.float64).eps


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
