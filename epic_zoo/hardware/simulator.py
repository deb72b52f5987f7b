"""Latency and energy of one inference (one sample) on a device/link/centre deployment.

The pipeline per sample:

1. every end device encodes its records (in parallel; centralised baselines
   only serialise them) -- ``device_compute_s`` is the slowest device;
2. the payloads cross the link: on a shared medium the devices take turns, so
   the channel is busy for the *sum* of their airtimes; on separate links for
   the *largest* (:func:`transfer_time`; packetisation, headers and channel
   access from :meth:`~epic_zoo.hardware.profiles.LinkProfile.airtime_s`);
   the last byte then needs half a round trip (``propagation_s``);
3. the centre decodes (or runs the whole centralised network).

``latency = device_compute + comm + propagation + central_compute``.

Energy: compute = board power x compute time (every device, the centre);
radio = transmit power x own airtime (``radio_tx_j``, the *communication
energy*) + listen power x time the radio is on but not sending
(``radio_listen_j``: waiting for its turn on a shared medium, then one round
trip for the final acknowledgement).

Compute time comes from two sources, reported side by side:

- ``"measured"``: the network timed on this machine (warmed up, median of
  repeats, ``torch.set_num_threads(1)``), scaled by the profile's speed
  relative to this machine, ``host_flops / profile.effective_flops``, where
  ``host_flops`` is measured on a small reference conv stack
  (:func:`host_reference_flops`) right before and after the model's timings,
  so that a busy machine slows both alike;
- ``"flops"``: FLOPs counted by :class:`torch.utils.flop_counter.FlopCounterMode`
  divided by ``profile.effective_flops``.

Work that has no FLOP count (packing bytes, zlib) is timed and scaled in both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from epic_zoo.hardware.payload import (
    Payloads,
    compress_payloads,
    encode_latents,
    is_distributed,
    model_receivers,
    pack_latents,
    raw_payloads,
    records_from_payloads,
)
from epic_zoo.hardware.profiles import ComputeProfile, LinkProfile
from epic_zoo.models.codec import unpack_payload

SOURCES: tuple[str, ...] = ("measured", "flops")
"""Compute-time sources of :func:`simulate`."""


# --------------------------------------------------------------------------- measuring


@contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous value."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def time_call(
    fn: Callable[[], object], *, warmup: int = 2, repeats: int = 5, threads: int = 1
) -> float:
    """Median wall time of ``fn()`` in s, after ``warmup`` untimed calls, with ``threads`` torch threads."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    with torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one ``fn()`` call (a multiply-add counts 2), from :class:`FlopCounterMode`."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _reference_convs() -> tuple[nn.Module, torch.Tensor]:
    """Small conv stack (16 -> 64 channels, 64x64 -> 32x32) at batch 1: the host speed probe."""
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
    ).eval()
    return net, torch.randn(1, 16, 64, 64, generator=gen)


def host_reference_flops(repeats: int = 9) -> float:
    """FLOP/s this machine sustains now on small convs at batch 1 and 1 thread."""
    net, x = _reference_convs()
    flops = count_flops(lambda: net(x))
    return flops / time_call(lambda: net(x), warmup=3, repeats=repeats)


def speed_ratio(profile: ComputeProfile, host_flops: float) -> float:
    """How many times faster ``profile`` is than this machine's single thread (< 1: slower)."""
    return profile.effective_flops / host_flops


# --------------------------------------------------------------------------- model cost


@dataclass(frozen=True)
class ModelCost:
    """What one sample costs a model, independent of the link.

    Attributes:
        name: row name (``"epic"``, ``"inversionnet"``, ``"inversionnet+zlib"``).
        distributed: devices send latents (``False``: raw records).
        payload_bytes: bytes each device sends for the sample.
        device_flops: each device's network FLOPs (0 for raw senders).
        central_flops: the centre's network FLOPs.
        device_host_s: each device's network time on this machine (1 thread), s.
        central_host_s: the centre's network time on this machine (1 thread), s.
        device_codec_host_s: per device, time to serialise its payload (pack /
            tobytes / zlib) on this machine, s.
        central_codec_host_s: time to parse every payload at the centre, s.
        encoder_params: parameters one device holds (0 for raw senders).
        params: parameters of the whole model.
        host_flops: this machine's reference speed while the timings were
            taken (:func:`host_reference_flops`), FLOP/s.
    """

    name: str
    distributed: bool
    payload_bytes: tuple[int, ...]
    device_flops: tuple[int, ...]
    central_flops: int
    device_host_s: tuple[float, ...]
    central_host_s: float
    device_codec_host_s: float
    central_codec_host_s: float
    encoder_params: int
    params: int
    host_flops: float

    @property
    def num_devices(self) -> int:
        return len(self.payload_bytes)

    def as_dict(self) -> dict:
        return asdict(self)


def _params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def measure_cost(
    model: nn.Module,
    seismic: torch.Tensor,
    seismic_raw: np.ndarray,
    *,
    compress: bool = False,
    name: str | None = None,
    warmup: int = 2,
    repeats: int = 5,
) -> ModelCost:
    """Time and count one sample through ``model`` and its payload codec.

    Args:
        model: a zoo network in eval mode.
        seismic: ``[1, 5, T, 70]`` normalised records (the network input).
        seismic_raw: ``[1, 5, T, 70]`` the same records as raw amplitudes (what a
            centralised device sends).
        compress: for a centralised model, zlib-compress the raw records (the
            lossless baseline variant); ignored for distributed models.
        name: row name; default ``model.config["name"]`` (+ ``"+zlib"``).
        warmup, repeats: see :func:`time_call`.
    """
    if seismic.shape[0] != 1 or np.shape(seismic_raw)[0] != 1:
        raise ValueError("measure_cost times one sample: pass seismic [1, 5, T, 70]")
    model = model.eval()
    before = host_reference_flops()
    cost = _measure(
        model, seismic, seismic_raw, compress, name, {"warmup": warmup, "repeats": repeats}
    )
    return replace(cost, host_flops=(before + host_reference_flops()) / 2)


def _measure(
    model: nn.Module,
    seismic: torch.Tensor,
    seismic_raw: np.ndarray,
    compress: bool,
    name: str | None,
    timing: dict[str, int],
) -> ModelCost:
    """:func:`measure_cost` without the host reference (``host_flops`` left 0)."""
    arch = model.config["name"]
    receivers = model_receivers(model)
    if is_distributed(model):
        parts = [seismic[..., torch.as_tensor(idx)].contiguous() for idx in receivers]
        latents = encode_latents(model, seismic)
        payloads = [device[0] for device in pack_latents(model, latents)]
        return ModelCost(
            name=name or arch,
            distributed=True,
            payload_bytes=tuple(len(p) for p in payloads),
            device_flops=tuple(
                count_flops(lambda k=k, x=x: model.encode(k, x)) for k, x in enumerate(parts)
            ),
            central_flops=count_flops(lambda: model.decode(latents, None)),
            device_host_s=tuple(
                time_call(lambda k=k, x=x: model.encode(k, x), **timing)
                for k, x in enumerate(parts)
            ),
            central_host_s=time_call(lambda: model.decode(latents, None), **timing),
            device_codec_host_s=time_call(lambda: pack_latents(model, latents), **timing)
            / len(receivers),
            central_codec_host_s=time_call(lambda: [unpack_payload(p) for p in payloads], **timing),
            encoder_params=max(_params(model.encoder_module(k)) for k in range(len(receivers))),
            params=_params(model),
            host_flops=0.0,
        )

    def serialise() -> Payloads:
        payloads = raw_payloads(seismic_raw, receivers)
        return compress_payloads(payloads) if compress else payloads

    payloads = serialise()
    time_samples = seismic.shape[2]

    def parse() -> np.ndarray:
        return records_from_payloads(payloads, time_samples, compressed=compress)

    return ModelCost(
        name=name or (f"{arch}+zlib" if compress else arch),
        distributed=False,
        payload_bytes=tuple(len(p[0]) for p in payloads),
        device_flops=(0,) * len(receivers),
        central_flops=count_flops(lambda: model(seismic)),
        device_host_s=(0.0,) * len(receivers),
        central_host_s=time_call(lambda: model(seismic), **timing),
        device_codec_host_s=time_call(serialise, **timing) / len(receivers),
        central_codec_host_s=time_call(parse, **timing),
        encoder_params=0,
        params=_params(model),
        host_flops=0.0,
    )


# --------------------------------------------------------------------------- the simulator


def transfer_time(payload_bytes: Sequence[int], link: LinkProfile) -> float:
    """Time the link is busy until every device's payload has been sent, s.

    Shared medium: the sum of the devices' airtimes; separate links: the
    largest. Propagation (half the round trip) is not included.
    """
    if not payload_bytes:
        raise ValueError("no payloads: at least one device must send")
    airtimes = [link.airtime_s(int(n)) for n in payload_bytes]
    return sum(airtimes) if link.shared_medium else max(airtimes)


@dataclass(frozen=True)
class Estimate:
    """Latency (s) and energy (J) of one sample, with their breakdown.

    ``device_compute_j`` sums all devices; ``radio_tx_j`` (communication energy)
    and ``radio_listen_j`` sum all radios.
    """

    source: str
    device_compute_s: float
    comm_s: float
    propagation_s: float
    central_compute_s: float
    device_compute_j: float
    radio_tx_j: float
    radio_listen_j: float
    central_compute_j: float

    @property
    def latency_s(self) -> float:
        return self.device_compute_s + self.comm_s + self.propagation_s + self.central_compute_s

    @property
    def comm_energy_j(self) -> float:
        """Energy the radios spend transmitting (the EPIC paper's communication energy)."""
        return self.radio_tx_j

    @property
    def radio_energy_j(self) -> float:
        return self.radio_tx_j + self.radio_listen_j

    @property
    def energy_j(self) -> float:
        return self.device_compute_j + self.radio_energy_j + self.central_compute_j

    def as_dict(self) -> dict[str, float]:
        """Every component and total, keys without the source."""
        out = {k: v for k, v in asdict(self).items() if k != "source"}
        out.update(
            latency_s=self.latency_s,
            comm_energy_j=self.comm_energy_j,
            radio_energy_j=self.radio_energy_j,
            energy_j=self.energy_j,
        )
        return out


def compute_seconds(
    flops: float,
    host_s: float,
    codec_host_s: float,
    profile: ComputeProfile,
    source: str,
    host_flops: float,
) -> float:
    """Time of one network call plus its codec work on ``profile``, s (see the module docstring)."""
    if source not in SOURCES:
        raise ValueError(f"unknown compute-time source {source!r}; use one of {SOURCES}")
    if host_flops <= 0:
        raise ValueError(f"host_flops={host_flops} must be > 0")
    scale = host_flops / profile.effective_flops
    codec = codec_host_s * scale
    if flops == 0 and host_s == 0:
        return codec  # nothing but serialising: no network call, no call overhead
    network = (
        host_s * scale + profile.call_overhead_s
        if source == "measured"
        else profile.flops_seconds(flops)
    )
    return network + codec


def simulate(
    cost: ModelCost,
    link: LinkProfile,
    device: ComputeProfile,
    central: ComputeProfile,
    *,
    source: str,
) -> Estimate:
    """Latency and energy of one sample of ``cost`` on a deployment.

    Args:
        cost: from :func:`measure_cost` (its ``host_flops`` scales the measured times).
        link, device, central: the deployment's profiles.
        source: ``"measured"`` or ``"flops"`` compute times.
    """
    host_flops = cost.host_flops
    device_s = [
        compute_seconds(f, h, cost.device_codec_host_s, device, source, host_flops)
        for f, h in zip(cost.device_flops, cost.device_host_s, strict=True)
    ]
    central_s = compute_seconds(
        cost.central_flops,
        cost.central_host_s,
        cost.central_codec_host_s,
        central,
        source,
        host_flops,
    )
    airtimes = [link.airtime_s(int(n)) for n in cost.payload_bytes]
    if link.shared_medium:
        waits = [sum(airtimes[:k]) + link.rtt_s for k in range(len(airtimes))]
    else:
        waits = [link.rtt_s] * len(airtimes)
    return Estimate(
        source=source,
        device_compute_s=max(device_s),
        comm_s=transfer_time(cost.payload_bytes, link),
        propagation_s=link.rtt_s / 2.0,
        central_compute_s=central_s,
        device_compute_j=device.active_power_w * sum(device_s),
        radio_tx_j=link.tx_power_w * sum(airtimes),
        radio_listen_j=link.listen_power_w * sum(waits),
        central_compute_j=central.active_power_w * central_s,
    )
