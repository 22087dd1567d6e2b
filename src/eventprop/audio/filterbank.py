"""Basilar-membrane filter bank: the hydrodynamic long-wave cochlea of Sieroka et al.

The SHD cochlea (Cramer et al. 2020) takes the velocity of the basilar membrane at ``channels``
equally spaced places ``x`` in ``[0, length]`` cm (base to apex; channel 0 is the base, i.e.
the HIGHEST characteristic frequency) from a closed-form frequency response of a fluid-filled
channel over a membrane whose stiffness falls exponentially along its length (Sieroka, Dosch &
Rupp 2006, "Semirealistic models of the cochlea", JASA 120(1), 297). With

    s(x)   = c0 exp(-alpha x) - a                         membrane stiffness
    r(x)   = delta sqrt(c0 m) exp(-alpha x / 2)           membrane damping
    xi     = s(x) - m w^2 - i w r(x)                      membrane impedance
    g      = w sqrt(rho / (h xi))                         local wave number
    q      = sqrt(a + m w^2)
    B(x)   = -2 sqrt(xi(x)) + 2 i q - w r(x) / q
    Gamma  = 2 g(0) / alpha - 2 i w / (alpha q sqrt(h)) Log(exp(-alpha x / 2) B(0) / B(x))
    P(x)   = sqrt(Gamma / g(x)) H0^(1)(Gamma)             pressure (WKB-exact Hankel form)
    beta   = (2 w / alpha) sqrt(2 / (h c0))
    Z      = sqrt(2 c0 / h) (i J0(beta) + Y0(beta)) / (J1(beta) - i Y1(beta))   input impedance
    V(w,x) = 2 w / xi(x) * P(x) / P(0) * Z                 membrane velocity per unit input

the response of place ``x`` to a sound with spectrum ``X(w)`` is ``V(w, x) X(w)``.

Two properties of the reference implementation are kept because the published data (SHD) were
made with them:

- the response is applied with numpy's FFT convention (``exp(+i w t)``) while the formula is
  written for ``exp(-i w t)``, so the travelling-wave *delay* acts as an *advance*: a place's
  response leads the sound by up to ~35 ms in the apical (low-frequency) channels;
- the membrane velocity is delivered at every second input sample, so the hair-cell and
  bushy-cell stages run at half the input rate; carriers above a quarter of the input rate fold
  down, the envelope (what the hair cells transmit) is kept.

Speed. Evaluating ``V`` needs a Hankel function of complex argument (~1 us per value); doing that
for every channel and FFT bin of every word (what the reference implementation does) costs
seconds. ``V`` depends only on frequency and place, so it is tabulated once per channel count
on a logarithmic frequency grid (ratio 1.002 per point: the phase moves < 0.06 rad per step, so
linear interpolation of the complex value errs by < 5e-4 relative) and cached on disk; a word
then costs one interpolated complex multiply per channel and bin and one batched real inverse
FFT. The convolution is linear (zero-padded FFT), not circular.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import platformdirs
import scipy.fft
from numba import njit, prange
from scipy import special

__all__ = [
    "BasilarMembraneParams",
    "MembraneResponse",
    "basilar_membrane",
    "characteristic_frequencies",
    "membrane_response",
    "place_coordinates",
    "transfer_function",
]

#: environment variable naming the folder of the tabulated responses (default: user cache)
CACHE_ENV = "EVENTPROP_COCHLEA_CACHE"
#: bump when the table layout or the formula changes (invalidates the disk cache)
_TABLE_VERSION = 1


@dataclass(frozen=True)
class BasilarMembraneParams:
    """Parameters of the long-wave cochlea (CGS units), defaults of the SHD cochlea."""

    length: float = 3.5  #: cm, places of the channels span [0, length] (base to apex)
    c0: float = 1e9  #: base stiffness, dyn/cm^3
    alpha: float = 3.0  #: 1/cm, exponential stiffness decay along the membrane
    a: float = 3500.0  #: stiffness offset, dyn/cm^3
    rho: float = 1.0  #: fluid density, g/cm^3
    delta: float = 0.15  #: damping ratio (damping = delta sqrt(c0 m) at the base)
    h: float = 0.1  #: height of the fluid channel, cm
    m: float = 0.05  #: membrane mass per area, g/cm^2
    #: lowest tabulated frequency (Hz); bins below use its value (only the DC bin falls there)
    f_min: float = 1.0
    #: highest tabulated frequency (Hz); covers input rates up to twice this
    f_max: float = 24000.0
    #: ratio of neighbouring frequencies of the table
    grid_ratio: float = 1.002


def place_coordinates(channels: int, params: BasilarMembraneParams | None = None) -> np.ndarray:
    """Places (cm from the base) of the channels: ``channels`` points spanning [0, length]."""
    p = params or BasilarMembraneParams()
    return np.linspace(0.0, p.length, channels)


def characteristic_frequencies(
    channels: int, params: BasilarMembraneParams | None = None
) -> np.ndarray:
    """Undamped resonance frequency (Hz) of each channel's place: ``s(x) = m w^2``.

    Decreasing with the channel index (channel 0 is the base): about 22.5 kHz down to 110 Hz
    for the defaults. The peak of ``|V|`` lies slightly below (damping, fluid loading).
    """
    p = params or BasilarMembraneParams()
    x = place_coordinates(channels, p)
    s = p.c0 * np.exp(-p.alpha * x) - p.a
    return np.sqrt(np.maximum(s, 0.0) / p.m) / (2.0 * np.pi)


def transfer_function(
    freqs_hz: np.ndarray, places_cm: np.ndarray, params: BasilarMembraneParams | None = None
) -> np.ndarray:
    """``V(w, x)``: complex membrane velocity per unit input, shape ``(places, freqs)``.

    Exact evaluation of the closed form in the module docstring (float64; frequencies > 0).
    """
    p = params or BasilarMembraneParams()
    f = np.asarray(freqs_hz, dtype=np.float64)[None, :]
    x = np.asarray(places_cm, dtype=np.float64)[:, None]
    if np.any(f <= 0):
        raise ValueError("transfer_function: frequencies must be > 0 Hz")
    w = 2.0 * np.pi * f
    r0 = p.delta * np.sqrt(p.c0 * p.m)

    def impedance(xx: np.ndarray | float) -> np.ndarray:
        s = p.c0 * np.exp(-p.alpha * xx) - p.a
        r = r0 * np.exp(-0.5 * p.alpha * xx)
        return s - p.m * w**2 - 1j * w * r

    def wave_number(xi: np.ndarray) -> np.ndarray:
        return w * np.sqrt(p.rho / (p.h * xi))

    q = np.sqrt(p.a + p.m * w**2)

    def b_term(xi: np.ndarray, xx: np.ndarray | float) -> np.ndarray:
        r = r0 * np.exp(-0.5 * p.alpha * xx)
        return -2.0 * np.sqrt(xi) + 2j * q - w * r / q

    xi0 = impedance(0.0)
    xi = impedance(x)
    g0 = wave_number(xi0)
    g = wave_number(xi)
    ratio = np.exp(-0.5 * p.alpha * x) * b_term(xi0, 0.0) / b_term(xi, x)
    gamma = 2.0 * g0 / p.alpha - 2j * w / (p.alpha * q * np.sqrt(p.h)) * np.log(ratio)
    gamma0 = 2.0 * g0 / p.alpha
    pressure = np.sqrt(gamma / g) * special.hankel1(0, gamma)
    pressure0 = np.sqrt(gamma0 / g0) * special.hankel1(0, gamma0)
    beta = (2.0 * w / p.alpha) * np.sqrt(2.0 / (p.h * p.c0))
    z_in = (
        np.sqrt(2.0 * p.c0 / p.h)
        * (1j * special.j0(beta) + special.y0(beta))
        / (special.j1(beta) - 1j * special.y1(beta))
    )
    v = 2.0 * w / xi * pressure / pressure0 * z_in
    # far beyond its resonance a place does not move (evanescent wave): the Hankel function
    # underflows there, which is the right limit
    return np.where(np.isfinite(v), v, 0.0)


def _table_grid(p: BasilarMembraneParams) -> np.ndarray:
    n = int(np.ceil(np.log(p.f_max / p.f_min) / np.log(p.grid_ratio))) + 1
    return p.f_min * p.grid_ratio ** np.arange(n, dtype=np.float64)


def _cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("eventprop")) / "cochlea"


def _cache_path(channels: int, p: BasilarMembraneParams) -> Path:
    record = {"version": _TABLE_VERSION, "channels": channels, **asdict(p)}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    return _cache_dir() / f"membrane-{channels}ch-{key}.npy"


def _load_table(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if table.shape != shape or table.dtype != np.complex64 or not np.all(np.isfinite(table)):
        return None
    return table


def _save_table(path: Path, table: np.ndarray) -> None:
    """Best effort, atomic: a read-only or full cache folder only costs the recomputation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, table, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True, eq=False)
class MembraneResponse:
    """Tabulated ``V`` of every channel on a logarithmic frequency grid."""

    params: BasilarMembraneParams
    channels: int
    table: np.ndarray  #: (channels, n_freqs) complex64
    log_f_min: float
    log_ratio: float


@lru_cache(maxsize=4)
def membrane_response(
    channels: int, params: BasilarMembraneParams | None = None, *, use_cache: bool = True
) -> MembraneResponse:
    """The tabulated response for ``channels`` places (memory- and disk-cached).

    The first call for a channel count computes the table (~2 s for 700 channels) and stores it
    under ``$EVENTPROP_COCHLEA_CACHE`` (default: the user cache folder); later processes load
    it in milliseconds.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    p = params or BasilarMembraneParams()
    grid = _table_grid(p)
    shape = (channels, grid.size)
    path = _cache_path(channels, p)
    table = _load_table(path, shape) if use_cache else None
    if table is None:
        places = place_coordinates(channels, p)
        table = np.empty(shape, dtype=np.complex64)
        step = max(1, 2_000_000 // grid.size)  # bound the float64 temporaries (~100 MB)
        for lo in range(0, channels, step):
            table[lo : lo + step] = transfer_function(grid, places[lo : lo + step], p)
        if use_cache:
            _save_table(path, table)
    return MembraneResponse(p, channels, table, float(np.log(p.f_min)), float(np.log(p.grid_ratio)))


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _alias_spectrum(table, idx, w_lo, w_hi, half, out):  # pragma: no cover - numba
    """Spectrum of every second sample of each channel's response (see ``basilar_membrane``).

    With ``X`` the rfft (bins ``0..half``) of the padded input of even length ``2 half``, the
    full-rate response of channel ``c`` is ``Y[k] = V_c(f_k) X[k]``, ``V`` interpolated
    linearly between table points ``idx[k]`` and ``idx[k] + 1``: ``Y[k] = V[idx] w_lo[k] +
    V[idx + 1] w_hi[k]`` with the weights folded into ``w_lo = (1 - frac) X``,
    ``w_hi = frac X``. Bin ``k`` of the half-rate signal is ``(Y[k] + conj(Y[half - k])) / 2``.
    """
    n_ch = table.shape[0]
    n_out = out.shape[1]
    for c in prange(n_ch):
        row = table[c]
        y = np.empty(half + 1, dtype=np.complex64)
        for k in range(half + 1):
            j = idx[k]
            y[k] = row[j] * w_lo[k] + row[j + 1] * w_hi[k]
        for k in range(n_out):
            out[c, k] = 0.5 * (y[k] + np.conj(y[half - k]))


def basilar_membrane(
    signal: np.ndarray,
    sample_rate: float,
    response: MembraneResponse,
    *,
    channels: slice | None = None,
    steps: slice | None = None,
    pad_s: float = 0.064,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Membrane velocity of every channel, float32 ``(channels, ceil(n / 2))`` at ``rate / 2``.

    ``signal`` is the normalised, windowed input (1-D, float). The response is linear
    (zero-padded by ``pad_s`` at the end, so the model's ~50 ms responses do not wrap around);
    sample ``n`` of the output is the velocity at input sample ``2 n``. ``channels`` selects a
    range of channels (all by default), to bound the memory of long clips; ``steps`` a range
    of the output steps (all ``ceil(n / 2)`` by default: a block cut from a longer segment
    whose ends only hold context is copied out once). ``timings``, when
    given, accumulates the thread CPU seconds of the three parts (``forward FFT``,
    ``response + alias``, ``inverse FFT``) for benchmarks.
    """
    clock = time.thread_time
    t0 = clock()
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"basilar_membrane: expected a 1-D signal, got shape {x.shape}")
    n = x.size
    nyquist = 0.5 * sample_rate
    if nyquist > response.params.f_max * (1 + 1e-9):
        raise ValueError(
            f"basilar_membrane: sample rate {sample_rate} Hz exceeds the tabulated range "
            f"(up to {2 * response.params.f_max:g} Hz)"
        )
    # padded length 2 * half, with half a fast real-FFT size (the output is half-rate)
    half = scipy.fft.next_fast_len((n + int(np.ceil(pad_s * sample_rate)) + 1) // 2, real=True)
    length = 2 * half
    spectrum = scipy.fft.rfft(x, n=length)  # bins 0..half
    t1 = clock()
    freqs = np.arange(half + 1, dtype=np.float64) * (sample_rate / length)
    pos = (np.log(np.maximum(freqs, response.params.f_min)) - response.log_f_min) / (
        response.log_ratio
    )
    last = response.table.shape[1] - 2
    idx = np.minimum(np.floor(pos).astype(np.int32), last)
    frac = pos - idx
    w_lo = ((1.0 - frac) * spectrum).astype(np.complex64)
    w_hi = (frac * spectrum).astype(np.complex64)
    table = response.table if channels is None else response.table[channels]
    aliased = np.empty((table.shape[0], half // 2 + 1), dtype=np.complex64)
    _alias_spectrum(table, idx, w_lo, w_hi, half, aliased)
    t2 = clock()
    velocity = scipy.fft.irfft(aliased, n=half, axis=1, workers=workers or os.cpu_count())
    keep = slice(0, (n + 1) // 2) if steps is None else steps
    out = np.ascontiguousarray(velocity[:, keep], dtype=np.float32)
    if timings is not None:
        t3 = clock()
        for key, value in (
            ("forward FFT", t1 - t0),
            ("response + alias", t2 - t1),
            ("inverse FFT", t3 - t2),
        ):
            timings[key] = timings.get(key, 0.0) + value
    return out
