"""snnTorch running the same architecture as a peer baseline (optional: ``pip install snntorch``).

The network is built the way snnTorch users write it -- ``nn.Linear`` on dense per-step input
spikes, ``snn.RSynaptic`` (recurrent synaptic LIF, all-to-all recurrent ``nn.Linear``) for the
hidden layer and ``snn.Synaptic`` without reset as the leaky-integrator readout, one Python
loop over time steps, autograd for the backward pass -- with its parameters taken from an
:class:`eventprop.models.Network`, so that it simulates the same model:

- snnTorch's update ``syn <- a*syn + x``, ``mem <- b*mem + syn`` is the engine's exact step
  when ``a = beta = exp(-dt/tau_s)``, ``b = alpha = exp(-dt/tau_m)`` and the weights are
  scaled by ``c`` (then ``syn = c*I`` and ``mem = V``);
- reset to zero right after the spike (``reset_mechanism="zero"``, ``reset_delay=False``);
- the readout receives the hidden spikes of the previous step (the engine's arrival rule), the
  recurrent input likewise (snnTorch's own ``RSynaptic`` rule);
- the reported readout voltage is the engine's step average ``a_avg*V + c_avg*I`` of the
  step-start state, formed from snnTorch's ``mem`` before and ``syn`` (``= c*I``) after its
  update.

Remaining differences: snnTorch fires on ``mem > threshold`` (the engine on ``>=``) and adds
the weights in another order, so a rare spike can differ; its surrogate is the same SuperSpike
fast sigmoid (``snntorch.surrogate.fast_sigmoid``) with the same slope. Only single-hidden-layer
networks with homogeneous time constants are mapped (snnTorch's decays are per layer here).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from eventprop.baselines.bptt import DEFAULT_SURROGATE_SLOPE
from eventprop.events import EventBatch
from eventprop.models.network import Network

__all__ = ["SnnTorchPeer", "snntorch_available", "snntorch_version"]


def snntorch_available() -> bool:
    """Whether the optional ``snntorch`` package can be imported."""
    try:
        return importlib.util.find_spec("snntorch") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


def snntorch_version() -> str | None:
    if not snntorch_available():
        return None
    import snntorch

    return str(getattr(snntorch, "__version__", "unknown"))


def _scalar(t: torch.Tensor, what: str) -> float:
    t = t.detach()
    if not bool(torch.all(t == t.reshape(-1)[0])):
        raise ValueError(f"{what}: snnTorch peer needs homogeneous time constants in a layer")
    return float(t.reshape(-1)[0])


class SnnTorchPeer(nn.Module):
    """The network's single recurrent hidden layer and LI readout, simulated by snnTorch.

    Raises :class:`ImportError` with an installation hint when snnTorch is absent.
    ``forward(events)`` returns ``(voltage (B, T, K), hidden spike counts (B, N))``.
    """

    def __init__(self, network: Network, *, surrogate_slope: float = DEFAULT_SURROGATE_SLOPE):
        super().__init__()
        if not snntorch_available():
            raise ImportError(
                "snnTorch is not installed; install the optional extra: "
                "pip install 'eventprop[bench]'  (or: pip install snntorch)"
            )
        import snntorch as snn
        from snntorch import surrogate

        if len(network.hidden) != 1:
            raise ValueError(
                f"SnnTorchPeer maps networks with one hidden layer, got {len(network.hidden)}"
            )
        if network.readout.spiking:
            raise ValueError("SnnTorchPeer maps a leaky-integrator (non-spiking) readout only")
        hidden, readout = network.hidden[0], network.readout
        dt = network.dt
        h = hidden.engine_tensors(dt)
        r = readout.engine_tensors(dt)
        a_h, b_h, c_h = (_scalar(x, "hidden") for x in (h.beta, h.alpha, h.c))
        a_r, b_r, c_r = (_scalar(x, "readout") for x in (r.beta, r.alpha, r.c))
        self.avg_v = _scalar(r.a_avg, "readout")
        self.avg_syn = _scalar(r.c_avg, "readout") / c_r  # syn = c*I
        grad = surrogate.fast_sigmoid(slope=surrogate_slope)
        n_in, n_hid, n_out = hidden.n_in, hidden.n_out, readout.n_out
        self.n_in, self.dt, self.theta = n_in, dt, network.theta

        self.fc_in = nn.Linear(n_in, n_hid, bias=False)
        self.lif = snn.RSynaptic(
            alpha=a_h,
            beta=b_h,
            all_to_all=True,
            linear_features=n_hid,
            threshold=network.theta,
            spike_grad=grad,
            reset_mechanism="zero",
            reset_delay=False,
        )
        self.fc_out = nn.Linear(n_hid, n_out, bias=False)
        self.li = snn.Synaptic(
            alpha=a_r, beta=b_r, threshold=network.theta, spike_grad=grad, reset_mechanism="none"
        )
        with torch.no_grad():
            self.float()  # snnTorch's spike functions return float32
            self.fc_in.weight.copy_((h.w_in * c_h).T)
            rec = self.lif.recurrent
            if h.w_rec is not None:
                rec.weight.copy_((h.w_rec * c_h).T)
            else:
                rec.weight.zero_()
                rec.weight.requires_grad_(False)
            if rec.bias is not None:
                rec.bias.zero_()
                rec.bias.requires_grad_(False)  # the engine's model has no bias
            self.fc_out.weight.copy_((r.w_in * c_r).T)

    def forward(self, events: EventBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if events.n_channels != self.n_in:
            raise ValueError(f"events: {events.n_channels} channels, the network takes {self.n_in}")
        w = self.fc_in.weight
        device, dtype = w.device, torch.float32
        B, T, C = events.batch_size, events.n_steps, self.n_in
        # dense input spikes per step, built on the fly (a (T, B, C) tensor would be huge)
        step = events.step.to(device=device, dtype=torch.int64)
        order = torch.argsort(step, stable=True)
        b_idx = events.sample.to(device=device, dtype=torch.int64)[order]
        c_idx = events.channel.to(device=device, dtype=torch.int64)[order]
        ptr = torch.searchsorted(
            step[order], torch.arange(T + 1, device=device, dtype=torch.int64)
        ).tolist()
        ones = torch.ones(len(order), device=device, dtype=dtype)

        spk, syn, mem = self.lif.reset_mem()
        syn_r, mem_r = self.li.reset_mem()
        spk = torch.zeros(B, self.fc_in.out_features, device=device, dtype=dtype)
        syn = torch.zeros_like(spk)
        mem = torch.zeros_like(spk)
        syn_r = torch.zeros(B, self.fc_out.out_features, device=device, dtype=dtype)
        mem_r = torch.zeros_like(syn_r)
        counts = torch.zeros_like(spk)
        volts = []
        for n in range(T):
            x = torch.zeros(B, C, device=device, dtype=dtype)
            lo, hi = ptr[n], ptr[n + 1]
            if hi > lo:
                x.index_put_((b_idx[lo:hi], c_idx[lo:hi]), ones[lo:hi], accumulate=True)
            cur_r = self.fc_out(spk)  # hidden spikes of the previous step
            spk, syn, mem = self.lif(self.fc_in(x), spk, syn, mem)
            # snnTorch 1.0's RSynaptic applies its immediate reset (reset_delay=False) to a
            # local copy only; reset here, so that its delayed reset then sees V = 0
            mem = mem * (1.0 - spk.detach())
            mem_start = mem_r
            _, syn_r, mem_r = self.li(cur_r, syn_r, mem_r)
            counts = counts + spk
            volts.append(self.avg_v * mem_start + self.avg_syn * syn_r)
        return torch.stack(volts, dim=1), counts
