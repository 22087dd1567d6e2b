"""From a config to the objects of a run: network, loss, regulariser, optimiser.

The network is built layer by layer (rather than with ``Network.build``) because the paper's
initialisation differs per connection: input -> hidden, hidden -> next hidden ("fwd"),
recurrent, hidden -> readout. All initial values come from one ``torch.Generator`` seeded with
the ``init`` stream, so a config fixes them.

``method: bptt`` wraps the same network in the surrogate-gradient baseline
(``eventprop.baselines.bptt.BPTTNetwork``), imported only when asked for.
"""

from __future__ import annotations

import torch
from torch import nn

from eventprop.engine.exact_spec import set_spike_limit
from eventprop.losses import ReadoutLoss, SpikeCountRegularizer, make_loss
from eventprop.models import LIFLayer, LIReadout, Network, TimeConstants
from eventprop.train.config import ExperimentConfig, TausConfig

__all__ = [
    "MethodUnavailableError",
    "build_loss",
    "build_network",
    "build_optimizer",
    "build_regularizer",
    "check_method",
    "wrap_for_method",
]


class MethodUnavailableError(RuntimeError):
    """The configured training method cannot be used in this installation."""


def _taus(t: TausConfig) -> TimeConstants:
    return TimeConstants(
        t.tau_m,
        t.tau_s,
        tau_m_std=t.tau_m_std,
        tau_s_std=t.tau_s_std,
        trainable=t.trainable,
        tau_m_min=t.tau_m_min,
        tau_s_min=t.tau_s_min,
    )


def build_loss(cfg: ExperimentConfig) -> ReadoutLoss:
    lc = cfg.loss
    if lc.name == "first_spike":
        return make_loss("first_spike", tau_0=lc.tau_0, tau_1=lc.tau_1, alpha=lc.alpha)
    return make_loss(lc.name)


def build_regularizer(cfg: ExperimentConfig) -> SpikeCountRegularizer | None:
    r = cfg.regularizer
    if not r.enabled:
        return None
    return SpikeCountRegularizer(
        nu=r.nu_upper,
        lambda_upper=r.lambda_upper,
        lambda_lower=r.lambda_lower,
        per_trial=r.per_trial,
    )


def build_network(cfg: ExperimentConfig, n_in: int, n_out: int, seed: int) -> Network:
    """The network of ``cfg`` for ``n_in`` input channels and ``n_out`` classes."""
    m, init = cfg.model, cfg.model.init
    gen = torch.Generator().manual_seed(int(seed))
    taus = _taus(m.taus)
    layers, prev = [], n_in
    for i, n in enumerate(m.hidden):
        mean, std = (init.w_in_mean, init.w_in_std) if i == 0 else (init.w_fwd_mean, init.w_fwd_std)
        layers.append(
            LIFLayer(
                prev,
                n,
                recurrent=m.recurrent,
                self_connections=m.self_connections,
                taus=taus,
                w_in_mean=mean,
                w_in_std=std,
                w_rec_mean=init.w_rec_mean,
                w_rec_std=init.w_rec_std,
                generator=gen,
            )
        )
        prev = n
    readout = LIReadout(
        prev,
        n_out,
        spiking=build_loss(cfg).spiking_readout,
        taus=_taus(m.readout_taus),
        w_mean=init.w_out_mean,
        w_std=init.w_out_std,
        generator=gen,
    )
    # the exact-timing spike bound is process-wide (the engine's settings have no slot for it):
    # every command that builds a network from a config (train, resume, eval) sets it here
    set_spike_limit(m.exact_spike_limit)
    net = Network(
        layers,
        readout,
        dt=cfg.data.dt,
        backend=m.backend,
        theta=m.theta,
        min_denominator=m.min_denominator,
        timing=m.timing,
    )
    return net.to(torch.float64 if m.dtype == "float64" else torch.float32)


def check_method(cfg: ExperimentConfig) -> None:
    """Fail early (before a run directory exists) when the method cannot be used."""
    if cfg.method == "bptt":
        _bptt_class()


def _bptt_class() -> type[nn.Module]:
    try:
        from eventprop.baselines.bptt import BPTTNetwork  # type: ignore[import-not-found]
    except ImportError as exc:
        raise MethodUnavailableError(
            "method: 'bptt' needs eventprop.baselines.bptt.BPTTNetwork, which this "
            f"installation does not provide ({exc}); use method: eventprop"
        ) from exc
    return BPTTNetwork


def wrap_for_method(cfg: ExperimentConfig, net: Network) -> nn.Module:
    """The module to train: the network itself (EventProp) or its BPTT twin.

    The BPTT baseline must share the network's parameters (so that rewiring, time-constant
    bounds and checkpoints act on one set of weights) and return the same ``NetworkOutput``.
    """
    if cfg.method == "eventprop":
        return net
    model = _bptt_class()(
        net, surrogate_slope=cfg.bptt.surrogate_slope, detach_reset=cfg.bptt.detach_reset
    )
    own = {id(p) for p in net.parameters()}
    if not all(id(p) in own for p in model.parameters()):
        raise MethodUnavailableError(
            "method: 'bptt': BPTTNetwork does not share the parameters of the Network it was "
            "built from, so rewiring and checkpoints would act on stale weights"
        )
    return model


def build_optimizer(cfg: ExperimentConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "adam":
        return torch.optim.Adam(
            params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )
    if o.name == "adamw":
        return torch.optim.AdamW(
            params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
