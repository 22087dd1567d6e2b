"""eventprop networks to and from NIR graphs.

Graph layout (``to_nir``)::

    input -> hidden0_w_in (Linear) -> hidden0 (CubaLIF) [-> hidden0_w_rec (Linear) -> hidden0]
          -> hidden1_w_in -> hidden1 ... -> readout_w_in (Linear) -> readout (CubaLI) -> output

``Linear.weight`` is ``(out, in)`` as in NIR and PyTorch (eventprop stores ``(in, out)``, so the
arrays are transposed); the recurrent ``Linear`` is the layer's own loop. A spiking readout
(``LIReadout(spiking=True)``) becomes a ``CubaLIF``. Time constants are per neuron, so
heterogeneous layers need nothing special.

Two conventions say how the NIR parameters are read:

``continuous`` (default, NIR's definition): the ODEs in seconds, spikes are unit-area Dirac
    impulses. eventprop's ``tau_m dV/dt = -V + I``, ``tau_s dI/dt = -I``, ``I += w`` per
    arriving spike, is ``CubaLIF(tau_mem=tau_m, tau_syn=tau_s, r=1, v_leak=0,
    v_threshold=theta, v_reset=0, w_in=tau_syn)`` (taus in s): ``tau_syn dI/dt = -I + w_in S``
    makes a spike through weight ``w`` raise ``I`` by ``w_in w / tau_syn = w``, so the NIR
    current and voltage *are* eventprop's ``I`` and ``V``. The readout is the same without
    threshold (``CubaLI``).
``discrete``: the per-step reading that snnTorch's importer and exporter use: one Euler step of
    ``nir_dt`` seconds (snnTorch: 1e-4) per engine step, a spike adds ``dt/tau_syn * w_in * w``
    to the current, ``r = tau_mem / nir_dt``, ``w_in = tau_syn / nir_dt``. The time constants
    are chosen so that the Euler decay factors equal the engine's exact ones
    (``tau = nir_dt / (1 - exp(-dt/tau_engine))``) and the weights carry the engine's
    current-to-voltage factor ``c`` of the post neuron, so a simulator that steps these
    equations runs eventprop's discrete map step for step.

``continuous`` is the model that ``timing="exact"`` simulates (spikes at their real times); a
grid-timed network is its discretisation at ``dt``, which a continuous-time simulator reproduces
only as ``dt -> 0``, while ``discrete`` reproduces it step for step (and is refused for exact
timing).

Graph and node metadata (``eventprop_*``) keep what NIR has no field for (dt, theta, timing,
tau bounds, trainability, self-connections), so ``from_nir(to_nir(net))`` rebuilds ``net``
exactly; a graph from elsewhere gets defaults (``dt`` 1 ms for ``continuous``, ``nir_dt`` for
``discrete``). A run's delay line is input preprocessing, not part of the network: the graph's
inputs are then the delayed copies (``export_run`` says so in the metadata).

``from_nir`` accepts chains of ``Linear``/``Affine`` (zero bias) and ``CubaLIF``/``CubaLI``
nodes with optional self-recurrent ``Linear`` loops, nested sub-graphs (as snnTorch writes
recurrent layers) flattened first. Anything else -- another node type, a shape mismatch, a
branch, a loop eventprop cannot run, a leak or reset voltage other than 0 -- is a
:class:`NIRGraphError` naming the node.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

import eventprop
from eventprop.engine.coefficients import step_coefficients
from eventprop.models import LIFLayer, LIReadout, Network, TimeConstants

__all__ = [
    "CONVENTIONS",
    "NIRGraphError",
    "export_run",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
]

CONVENTIONS = ("continuous", "discrete")
#: snnTorch's fixed step for NIR import and export (seconds)
SNNTORCH_DT = 1e-4
_META = "eventprop_"


class NIRGraphError(ValueError):
    """A NIR graph that eventprop cannot run; the message names the node."""


# ---------------------------------------------------------------------------------- export
def _layer_coefficients(
    layer: LIFLayer | LIReadout, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tau_m, tau_s) in ms as the engine uses them, and (alpha, beta, c), all float64."""
    tau_m, tau_s = (t.detach().cpu().double() for t in layer.effective_taus())
    alpha, beta, c = step_coefficients(tau_m, tau_s, dt)
    return tuple(t.numpy() for t in (tau_m, tau_s, alpha, beta, c))  # type: ignore[return-value]


def _weights(w: torch.Tensor) -> np.ndarray:
    """eventprop (in, out) weights as NIR's (out, in)."""
    return w.detach().cpu().numpy().T.copy()


def _neuron_node(
    layer: LIFLayer | LIReadout,
    net: Network,
    convention: str,
    nir_dt: float,
    spiking: bool,
) -> tuple[nir.NIRNode, np.ndarray]:
    """The neuron node of ``layer`` and the per-neuron factor its input weights get."""
    tau_m, tau_s, alpha, beta, c = _layer_coefficients(layer, net.dt)
    n = tau_m.shape[0]
    if convention == "continuous":
        tau_mem, tau_syn = tau_m / 1000.0, tau_s / 1000.0
        r, w_in, gain = np.ones(n), tau_syn.copy(), np.ones(n)
    else:
        tau_mem, tau_syn = nir_dt / (1.0 - alpha), nir_dt / (1.0 - beta)
        r, w_in, gain = tau_mem / nir_dt, tau_syn / nir_dt, c
    taus = layer.taus
    meta = {
        f"{_META}tau_m_min": float(taus.tau_m_min),
        f"{_META}tau_s_min": float(taus.tau_s_min),
        f"{_META}trainable_taus": int(taus.trainable),
    }
    if isinstance(layer, LIFLayer):
        meta[f"{_META}self_connections"] = int(layer.self_connections)
    common = {"tau_syn": tau_syn, "tau_mem": tau_mem, "r": r, "v_leak": np.zeros(n)}
    if spiking:
        node = nir.CubaLIF(
            **common,
            v_threshold=np.full(n, net.theta),
            v_reset=np.zeros(n),
            w_in=w_in,
            metadata=meta,
        )
    else:
        node = nir.CubaLI(**common, w_in=w_in, metadata=meta)
    return node, gain


def to_nir(
    network: Network, *, convention: str = "continuous", nir_dt: float = SNNTORCH_DT
) -> nir.NIRGraph:
    """The NIR graph of ``network`` (see the module docstring for layout and conventions).

    ``nir_dt`` (seconds) is the simulator step of the ``discrete`` convention.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: unknown {convention!r}; choose one of {CONVENTIONS}")
    if not (nir_dt > 0):
        raise ValueError(f"nir_dt: must be a positive number of seconds, got {nir_dt!r}")
    if convention == "discrete" and network.timing != "grid":
        raise ValueError(
            f"convention 'discrete' is the step map of grid timing; this network uses "
            f"{network.timing!r} timing, whose model is the continuous one: export it with "
            "convention='continuous'"
        )
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.array([network.n_in])})
    }
    edges: list[tuple[str, str]] = []
    prev = "input"
    layers: list[tuple[str, LIFLayer | LIReadout]] = [
        (f"hidden{i}", layer) for i, layer in enumerate(network.hidden)
    ]
    layers.append(("readout", network.readout))
    for name, layer in layers:
        spiking = isinstance(layer, LIFLayer) or bool(layer.spiking)
        node, gain = _neuron_node(layer, network, convention, nir_dt, spiking)
        # the discrete convention's factor is applied in float64, so that importing divides
        # it out exactly again
        scale = torch.as_tensor(gain, dtype=torch.float64 if convention == "discrete" else None)
        if convention == "continuous":
            scale = scale.to(layer.weight.dtype)
        nodes[f"{name}_w_in"] = nir.Linear(weight=_weights(layer.weight * scale))
        nodes[name] = node
        edges += [(prev, f"{name}_w_in"), (f"{name}_w_in", name)]
        if isinstance(layer, LIFLayer) and layer.weight_rec is not None:
            w_rec = layer.engine_tensors(network.dt).w_rec
            assert w_rec is not None
            nodes[f"{name}_w_rec"] = nir.Linear(weight=_weights(w_rec * scale))
            edges += [(name, f"{name}_w_rec"), (f"{name}_w_rec", name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([network.readout.n_out])})
    edges.append((prev, "output"))
    metadata = {
        f"{_META}version": eventprop.__version__,
        f"{_META}convention": convention,
        f"{_META}dt_ms": float(network.dt),
        f"{_META}theta": float(network.theta),
        f"{_META}min_denominator": float(network.min_denominator),
        f"{_META}timing": network.timing,
    }
    if convention == "discrete":
        metadata[f"{_META}nir_dt_s"] = float(nir_dt)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(network: Network, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``to_nir(network, **kwargs)`` to ``path`` (NIR's HDF5 format), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, to_nir(network, **kwargs))
    os.replace(tmp, path)
    return path


def read_nir(path: str | os.PathLike[str], **kwargs: Any) -> Network:
    """``from_nir`` of the graph in a NIR file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError, AssertionError) as exc:
        raise NIRGraphError(f"{path}: not a readable NIR graph ({exc})") from exc
    return from_nir(graph, **kwargs)


# ---------------------------------------------------------------------------------- import
_SUPPORTED = "Input, Output, Linear, Affine (zero bias), CubaLIF, CubaLI"


def _meta_value(meta: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = meta.get(_META + key, default)
    if isinstance(value, bytes):
        value = value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, Any], list]:
    """Nodes and edges with nested sub-graphs inlined (names joined with '.')."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}  # sub-graph key -> its nodes fed by its Input
    exit_: dict[str, list[str]] = {}  # sub-graph key -> its nodes feeding its Output
    for key, node in graph.nodes.items():
        full = prefix + key
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, full + ".")
            ins = [k for k, n in sub_nodes.items() if isinstance(n, nir.Input)]
            outs = [k for k, n in sub_nodes.items() if isinstance(n, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise NIRGraphError(
                    f"NIR node {full!r}: a sub-graph needs exactly one Input and one Output "
                    f"node, it has {len(ins)} and {len(outs)}"
                )
            entry[full] = [b for a, b in sub_edges if a == ins[0]]
            exit_[full] = [a for a, b in sub_edges if b == outs[0]]
            nodes.update({k: n for k, n in sub_nodes.items() if k not in (ins[0], outs[0])})
            edges += [(a, b) for a, b in sub_edges if a != ins[0] and b != outs[0]]
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        for src in exit_.get(a, [a]):
            for dst in entry.get(b, [b]):
                edges.append((src, dst))
    return nodes, list(dict.fromkeys(edges))


def _vector(node: Any, field: str, key: str, n: int) -> np.ndarray:
    value = np.asarray(getattr(node, field), dtype=np.float64).reshape(-1)
    if value.size == 1 and n != 1:
        value = np.full(n, float(value[0]))
    if value.shape != (n,):
        raise NIRGraphError(
            f"NIR node {key!r}: {field} has shape {np.shape(getattr(node, field))}, the layer "
            f"has {n} neurons"
        )
    if not np.isfinite(value).all():
        raise NIRGraphError(f"NIR node {key!r}: {field} has non-finite values")
    return value


def _neuron_size(node: Any, key: str) -> int:
    shape = np.asarray(node.tau_mem).shape
    if len(shape) != 1:
        raise NIRGraphError(
            f"NIR node {key!r}: neurons must form a 1-d layer, got parameter shape {shape}"
        )
    return int(shape[0])


def _linear_weight(node: Any, key: str) -> np.ndarray:
    if isinstance(node, nir.Affine):
        bias = np.asarray(node.bias)
        if bias.size and np.any(bias != 0):
            raise NIRGraphError(
                f"NIR node {key!r}: Affine with a non-zero bias; eventprop synapses have no "
                "bias (a constant input current)"
            )
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise NIRGraphError(f"NIR node {key!r}: weight must be 2-d (out, in), got shape {w.shape}")
    return w


class _Parsed:
    """One neuron layer of a graph: its node, input weights and optional recurrent weights."""

    def __init__(
        self, key: str, node: Any, w_in: np.ndarray, w_rec: np.ndarray | None, w_keys: list[str]
    ) -> None:
        self.key, self.node, self.w_in, self.w_rec, self.w_keys = key, node, w_in, w_rec, w_keys


def _parse(graph: nir.NIRGraph) -> tuple[int, list[_Parsed]]:
    """The chain of neuron layers from the graph's Input to its Output."""
    if not isinstance(graph, nir.NIRGraph):
        raise NIRGraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges = _flatten(graph)
    for key, node in nodes.items():
        if isinstance(node, nir.LI | nir.LIF | nir.I | nir.IF):
            raise NIRGraphError(
                f"NIR node {key!r}: {type(node).__name__} has no synaptic current; eventprop "
                "neurons are current-based (CubaLIF, CubaLI)"
            )
        if not isinstance(
            node, nir.Input | nir.Output | nir.Linear | nir.Affine | nir.CubaLIF | nir.CubaLI
        ):
            raise NIRGraphError(
                f"NIR node {key!r}: type {type(node).__name__} is not supported (eventprop "
                f"reads {_SUPPORTED})"
            )
    for a, b in edges:
        for k in (a, b):
            if k not in nodes:
                raise NIRGraphError(f"NIR edge ({a!r}, {b!r}): no node named {k!r}")
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRGraphError(
            f"NIR graph: eventprop needs exactly one Input and one Output node, found "
            f"{len(inputs)} ({', '.join(inputs) or 'none'}) and {len(outputs)} "
            f"({', '.join(outputs) or 'none'})"
        )
    in_key, out_key = inputs[0], outputs[0]
    n_in_shape = np.asarray(nodes[in_key].input_type["input"]).reshape(-1)
    if n_in_shape.size != 1:
        raise NIRGraphError(
            f"NIR node {in_key!r}: input must be a 1-d vector of channels, got shape "
            f"{tuple(int(s) for s in n_in_shape)}"
        )
    n_in = int(n_in_shape[0])
    layers: list[_Parsed] = []
    seen = {in_key}
    cur, width = in_key, n_in
    while True:
        nxt = succ[cur]
        if layers:  # leave out the layer's own recurrent loop
            nxt = [k for k in nxt if k not in layers[-1].w_keys[1:]]
        if len(nxt) != 1:
            raise NIRGraphError(
                f"NIR node {cur!r}: feeds {len(nxt)} nodes ({', '.join(nxt) or 'none'}); "
                "eventprop runs a chain of layers (one feed-forward successor each)"
            )
        k = nxt[0]
        if k == out_key:
            break
        if k in seen:
            raise NIRGraphError(
                f"NIR node {k!r}: reached again from {cur!r}: a loop through several layers, "
                "which eventprop cannot run (only a layer's own recurrent Linear)"
            )
        if not isinstance(nodes[k], nir.Linear | nir.Affine):
            raise NIRGraphError(
                f"NIR node {k!r}: {type(nodes[k]).__name__} follows {cur!r} directly; eventprop "
                "expects a Linear (the synapses) between two neuron layers"
            )
        w = _linear_weight(nodes[k], k)
        if w.shape[1] != width:
            raise NIRGraphError(
                f"NIR node {k!r}: weight has shape {w.shape} (out, in) but its input "
                f"{cur!r} has {width} outputs"
            )
        if len(pred[k]) != 1:
            raise NIRGraphError(
                f"NIR node {k!r}: has {len(pred[k])} inputs ({', '.join(pred[k])}); eventprop "
                "synapses take one"
            )
        seen.add(k)
        post = succ[k]
        if len(post) != 1 or isinstance(nodes[post[0]], nir.Output):
            raise NIRGraphError(
                f"NIR node {k!r}: must feed exactly one CubaLIF/CubaLI node, feeds "
                f"{', '.join(post) or 'nothing'}"
            )
        nk = post[0]
        neuron = nodes[nk]
        if not isinstance(neuron, nir.CubaLIF | nir.CubaLI):
            raise NIRGraphError(
                f"NIR node {nk!r}: {type(neuron).__name__} after the Linear {k!r}; eventprop "
                "expects a CubaLIF or CubaLI layer there"
            )
        if nk in seen:
            raise NIRGraphError(
                f"NIR node {nk!r}: reached again from {k!r}: a loop through several layers, "
                "which eventprop cannot run"
            )
        n = _neuron_size(neuron, nk)
        if w.shape[0] != n:
            raise NIRGraphError(
                f"NIR node {k!r}: weight has shape {w.shape} (out, in) but {nk!r} has {n} neurons"
            )
        others = [p for p in pred[nk] if p != k]
        w_rec, keys = None, [k]
        for r in others:
            rn = nodes[r]
            loop = pred[r] == [nk] and succ[r] == [nk]
            if not (isinstance(rn, nir.Linear | nir.Affine) and loop):
                raise NIRGraphError(
                    f"NIR node {nk!r}: a second input {r!r} that is not its own recurrent "
                    "Linear loop; eventprop layers take one feed-forward input"
                )
            if w_rec is not None:
                raise NIRGraphError(f"NIR node {nk!r}: more than one recurrent Linear loop")
            w_rec = _linear_weight(rn, r)
            if w_rec.shape != (n, n):
                raise NIRGraphError(
                    f"NIR node {r!r}: recurrent weight has shape {w_rec.shape}, expected "
                    f"({n}, {n}) for {nk!r}"
                )
            keys.append(r)
            seen.add(r)
        seen.add(nk)
        layers.append(_Parsed(nk, neuron, w, w_rec, keys))
        cur, width = nk, n
    if not layers:
        raise NIRGraphError(f"NIR graph: no neuron layer between {in_key!r} and {out_key!r}")
    last = layers[-1]
    if last.w_rec is not None:
        raise NIRGraphError(
            f"NIR node {last.key!r}: the readout (last layer) has a recurrent loop; eventprop's "
            "readout has no recurrent weights"
        )
    for layer in layers[:-1]:
        if isinstance(layer.node, nir.CubaLI):
            raise NIRGraphError(
                f"NIR node {layer.key!r}: CubaLI (non-spiking) in a hidden position; only the "
                "readout (last layer) may be non-spiking"
            )
    unused = set(nodes) - seen - {out_key}
    if unused:
        raise NIRGraphError(
            f"NIR node {sorted(unused)[0]!r}: not on the path from {in_key!r} to {out_key!r}"
        )
    return n_in, layers


def _engine_params(
    p: _Parsed, convention: str, dt: float, nir_dt: float, theta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tau_m, tau_s) in ms and the per-neuron factor the incoming weights get."""
    node, key = p.node, p.key
    n = _neuron_size(node, key)
    tau_mem = _vector(node, "tau_mem", key, n)
    tau_syn = _vector(node, "tau_syn", key, n)
    r = _vector(node, "r", key, n)
    w_in = _vector(node, "w_in", key, n)
    if np.any(_vector(node, "v_leak", key, n) != 0):
        raise NIRGraphError(f"NIR node {key!r}: v_leak must be 0 (eventprop's neurons rest at 0)")
    if np.any(tau_mem <= 0) or np.any(tau_syn <= 0):
        raise NIRGraphError(f"NIR node {key!r}: time constants must be positive")
    if isinstance(node, nir.CubaLIF):
        if np.any(_vector(node, "v_reset", key, n) != 0):
            raise NIRGraphError(
                f"NIR node {key!r}: v_reset must be 0 (eventprop resets the voltage to 0)"
            )
        v_th = _vector(node, "v_threshold", key, n)
        if np.any(v_th <= 0):
            raise NIRGraphError(f"NIR node {key!r}: v_threshold must be positive")
        th_scale = theta / v_th
    else:
        th_scale = np.ones(n)
    if convention == "continuous":
        tau_m, tau_s = tau_mem * 1000.0, tau_syn * 1000.0
        gain = r * w_in / tau_syn
    else:
        a_m, a_s = 1.0 - nir_dt / tau_mem, 1.0 - nir_dt / tau_syn
        if np.any(a_m <= 0) or np.any(a_m >= 1) or np.any(a_s <= 0) or np.any(a_s >= 1):
            raise NIRGraphError(
                f"NIR node {key!r}: time constants at or below the step nir_dt={nir_dt:g} s "
                "have no decaying Euler step"
            )
        tau_m, tau_s = -dt / np.log(a_m), -dt / np.log(a_s)
        _, _, c = step_coefficients(torch.from_numpy(tau_m), torch.from_numpy(tau_s), dt)
        gain = (nir_dt / tau_syn) * w_in * (nir_dt / tau_mem) * r / c.numpy()
    if not np.all(np.isfinite(gain)) or np.any(gain == 0):
        raise NIRGraphError(f"NIR node {key!r}: r * w_in gives a zero or non-finite input gain")
    return tau_m, tau_s, gain * th_scale


def _time_constants(
    meta: Mapping[str, Any], tau_m: np.ndarray, tau_s: np.ndarray, trainable: bool | None
) -> TimeConstants:
    m_min = _meta_value(meta, "tau_m_min", 3.0)
    s_min = _meta_value(meta, "tau_s_min", 1.0)
    m_min = min(float(m_min), float(tau_m.min()))
    s_min = min(float(s_min), float(tau_s.min()))
    train = bool(_meta_value(meta, "trainable_taus", 0)) if trainable is None else trainable
    return TimeConstants(
        tau_m=max(float(tau_m.mean()), m_min),
        tau_s=max(float(tau_s.mean()), s_min),
        trainable=train,
        tau_m_min=m_min,
        tau_s_min=s_min,
    )


def _set_taus(layer: LIFLayer | LIReadout, tau_m: np.ndarray, tau_s: np.ndarray) -> None:
    with torch.no_grad():
        layer.tau_m.copy_(torch.from_numpy(tau_m))
        layer.tau_s.copy_(torch.from_numpy(tau_s))


def from_nir(
    graph: nir.NIRGraph,
    *,
    dt: float | None = None,
    convention: str | None = None,
    nir_dt: float | None = None,
    backend: str = "numba",
    timing: str | None = None,
    trainable_taus: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> Network:
    """A :class:`Network` that runs ``graph``.

    Unset arguments come from the graph's ``eventprop_*`` metadata when it has them (a graph
    written by :func:`to_nir`), else: ``convention="continuous"``, ``dt=1.0`` ms (continuous)
    or ``nir_dt`` in ms (discrete), ``nir_dt=1e-4`` s (snnTorch's step), grid timing.
    """
    meta = dict(getattr(graph, "metadata", None) or {})
    convention = convention or _meta_value(meta, "convention", "continuous")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: unknown {convention!r}; choose one of {CONVENTIONS}")
    nir_dt = float(nir_dt or _meta_value(meta, "nir_dt_s", SNNTORCH_DT))
    if dt is None:
        dt = _meta_value(meta, "dt_ms", None)
        if dt is None:
            dt = 1.0 if convention == "continuous" else nir_dt * 1000.0
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt: must be a positive number of ms, got {dt!r}")
    theta = float(_meta_value(meta, "theta", 1.0))
    timing = timing or _meta_value(meta, "timing", "grid")
    n_in, parsed = _parse(graph)
    hidden: list[LIFLayer] = []
    prev = n_in
    readout: LIReadout | None = None
    for i, p in enumerate(parsed):
        tau_m, tau_s, gain = _engine_params(p, convention, dt, nir_dt, theta)
        node_meta = dict(getattr(p.node, "metadata", None) or {})
        taus = _time_constants(node_meta, tau_m, tau_s, trainable_taus)
        n = tau_m.shape[0]
        w_in = torch.from_numpy(p.w_in.T.astype(np.float64) * gain[None, :])
        if i < len(parsed) - 1:
            self_conn = bool(_meta_value(node_meta, "self_connections", 1))
            layer = LIFLayer(
                prev, n, recurrent=p.w_rec is not None, self_connections=self_conn, taus=taus
            )
            with torch.no_grad():
                layer.weight.copy_(w_in)
                if p.w_rec is not None:
                    w_rec = p.w_rec.T.astype(np.float64) * gain[None, :]
                    layer.weight_rec.copy_(torch.from_numpy(w_rec))
            hidden.append(layer)
        else:
            readout = LIReadout(prev, n, spiking=isinstance(p.node, nir.CubaLIF), taus=taus)
            with torch.no_grad():
                readout.weight.copy_(w_in)
            layer = readout
        _set_taus(layer, tau_m, tau_s)
        prev = n
    assert readout is not None
    net = Network(
        hidden,
        readout,
        dt=dt,
        backend=backend,
        theta=theta,
        min_denominator=float(_meta_value(meta, "min_denominator", 1e-3)),
        timing=timing,
    )
    return net.to(dtype)


# ---------------------------------------------------------------------------------- runs
def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    checkpoint: str = "best",
    convention: str = "continuous",
    nir_dt: float = SNNTORCH_DT,
) -> dict[str, Any]:
    """Write the network of a training run's checkpoint as a NIR file; return a summary."""
    from eventprop.train.checkpoint import load_checkpoint
    from eventprop.train.model import build_network
    from eventprop.train.runs import RunDirError, RunPaths, read_run_config
    from eventprop.train.seeds import stream_seeds

    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint: expected best or last, got {checkpoint!r}")
    paths = RunPaths(run_dir)
    cfg = read_run_config(paths.root)
    if cfg.method != "eventprop":
        raise RunDirError(f"{paths.root}: a {cfg.method} run; only eventprop networks export")
    ck_path = paths.best if checkpoint == "best" else paths.last
    if not ck_path.is_file():
        raise RunDirError(f"{ck_path}: no such checkpoint (the run has not finished an epoch)")
    ck = load_checkpoint(ck_path)
    meta = ck["meta"]
    seeds = {k: int(v) for k, v in ck.get("seeds", stream_seeds(cfg)).items()}
    net = build_network(cfg, meta["n_channels"], meta["n_classes"], seeds["init"])
    net.load_state_dict(ck["model"])
    delay = cfg.data.delay
    graph = to_nir(net, convention=convention, nir_dt=nir_dt)
    if delay is not None and delay.n_delays > 0:
        # the delay line is input preprocessing: the graph's inputs are its delayed copies
        graph.metadata[f"{_META}input"] = (
            f"delay line of {delay.n_delays} x {delay.delay_ms:g} ms applied before the "
            f"network: channel k * n + c is channel c delayed by k * {delay.delay_ms:g} ms"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    nir.write(tmp, graph)
    os.replace(tmp, out)
    return {
        "run_dir": str(paths.root),
        "checkpoint": checkpoint,
        "epoch": int(ck["epoch"]),
        "out": str(out),
        "convention": convention,
        "layers": [meta["n_channels"], *[layer.n_out for layer in net.hidden], meta["n_classes"]],
        "input_note": graph.metadata.get(f"{_META}input"),
    }
