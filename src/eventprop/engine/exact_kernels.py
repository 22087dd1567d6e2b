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

The kernels live in three modules, one job each: :mod:`eventprop.engine.exact_propagation`
(closed forms between events and the crossing search), :mod:`eventprop.engine.exact_forward`
and :mod:`eventprop.engine.exact_backward`; this module is their entry point.
"""

from __future__ import annotations

from eventprop.engine import numba_kernels  # noqa: F401  (selects numba's threading layer)
from eventprop.engine.exact_backward import exact_backward_dense, exact_backward_fast
from eventprop.engine.exact_forward import exact_forward_kernel

__all__ = ["exact_backward_dense", "exact_backward_fast", "exact_forward_kernel"]
