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

``latency = device_compute + promotion + comm + propagation + central_compute``.

Energy: compute = board power x compute time (every device, the centre);
radio = transmit power x own airtime (``radio_tx_j``, the EPIC paper's
*communication energy*) + listen power x time the radio is on but not
sending (``radio_listen_j``: waiting for its turn on a shared medium, then one
round trip for the final acknowledgement) + the radio state machine's
promotion and tail (``radio_state_j``, LTE). Total radio energy
(``radio_energy_j``) and total energy (``energy_j``, radio + compute) are what
a battery pays.

Compute time comes from two sources, reported side by side:

- ``"measured"``: the network and its payload codec (packing, float16
  conversion, zlib) timed on this machine at batch 1, one torch thread pinned
  to one core, in thread CPU time, every call interleaved with the others in
  rounds with a reference conv stack (the probe) run before each
  (:mod:`~epic_zoo.hardware.timing`); the median over rounds of each call's
  time as a multiple of the probe's, times the probe's FLOPs, divided by
  ``profile.effective_flops`` (the interquartile spread of the per-round
  multiples is kept as ``timing_spread``). Not bit-stable: steady to a few
  per cent between runs; report it with its spread.
- ``"flops"``: network FLOPs counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (autograd on, attention
  unfused) divided by ``profile.effective_flops``, plus the codec's bytes
  (:class:`~epic_zoo.hardware.profiles.CodecWork`) at the profile's byte
  rates. Nothing in it is timed: bit-for-bit the same on every run.

LTE-like links add the radio's state machine (:class:`LinkProfile` fields
``promotion_s``, ``tail_s``, ``inference_interval_s``): an idle radio first
promotes (latency ``promotion_s`` and its energy) and after its last byte
stays in a high-power tail (``radio_state_j``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from epic_zoo.hardware.payload import (
    RAW_FORMATS,
    compress_payloads,
    encode_latents,
    is_distributed,
    model_receivers,
    pack_latents,
    raw_format_name,
    raw_payload_bytes,
    raw_payloads,
    records_from_payloads,
)
from epic_zoo.hardware.profiles import CodecWork, ComputeProfile, LinkProfile
from epic_zoo.hardware.timing import (
    count_flops,
    host_reference_flops,
    pinned,
    probe_relative,
    reference_probe,
    time_call,
    time_interleaved,
    torch_threads,
)
from epic_zoo.models.codec import unpack_payload

__all__ = [
    "SOURCES",
    "Estimate",
    "ModelCost",
    "compute_seconds",
    "count_flops",
    "host_reference_flops",
    "measure_cost",
    "measure_costs",
    "simulate",
    "speed_ratio",
    "time_call",
    "torch_threads",
    "transfer_time",
]

SOURCES: tuple[str, ...] = ("measured", "flops")
"""Compute-time sources of :func:`simulate`."""


def speed_ratio(profile: ComputeProfile, host_flops: float) -> float:
    """How many times faster ``profile`` is than this machine's single thread (< 1: slower)."""
    return profile.effective_flops / host_flops


# --------------------------------------------------------------------------- model cost


@dataclass(frozen=True)
class ModelCost:
    """What one sample costs a model, independent of the link.

    Attributes:
        name: row name (``"epic"``, ``"inversionnet"``, ``"inversionnet+f16-zlib"``).
        distributed: devices send latents (``False``: raw records).
        payload_bytes: bytes each device sends for the sample.
        device_flops: each device's network FLOPs (0 for raw senders).
        central_flops: the centre's network FLOPs.
        device_host_s: each device's network time on this machine (1 thread), s.
        central_host_s: the centre's network time on this machine (1 thread), s.
        device_codec_host_s: per device, time to serialise its payload (pack /
            tobytes / float16 / zlib) on this machine, s.
        central_codec_host_s: time to parse every payload at the centre, s.
        encoder_params: parameters one device holds (0 for raw senders).
        params: parameters of the whole model.
        host_flops: this machine's reference speed while the timings were
            taken (probe FLOPs / median probe CPU time), FLOP/s.
        timing_spread: largest interquartile spread (relative) of the
            network timings, as probe multiples (0 = steady).
        raw_format: raw baseline format (``f32``, ``f16``, ``f32-zlib``,
            ``f16-zlib``); empty for distributed models.
        device_codec_work: bytes the largest device's codec handles
            (the ``"flops"`` source charges them at the profile's byte rates).
        central_codec_work: bytes the centre's codec handles (every payload).
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
    timing_spread: float = 0.0
    raw_format: str = ""
    device_codec_work: CodecWork = CodecWork()
    central_codec_work: CodecWork = CodecWork()

    @property
    def num_devices(self) -> int:
        return len(self.payload_bytes)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCost:
        """Inverse of :meth:`as_dict` (after a JSON round trip: lists back to tuples)."""
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        for key in ("device_codec_work", "central_codec_work"):
            if key in fields:
                fields[key] = CodecWork(**fields[key])
        return cls(**fields)


def _params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def cost_name(architecture: str, raw_format: str = "") -> str:
    """Row name of a cost: the architecture, ``+FORMAT`` for raw formats other than float32."""
    return architecture if raw_format in ("", "f32") else f"{architecture}+{raw_format}"


@dataclass
class _Plan:
    """Calls to time for one model and how to assemble its costs from the timings."""

    calls: dict[str, Callable[[], object]]
    build: Callable[[Callable[[str], tuple[float, float]], float], list[ModelCost]]


def _plan(
    key: str,
    model: nn.Module,
    seismic: torch.Tensor,
    seismic_raw: np.ndarray,
    formats: Sequence[tuple[str, bool]],
) -> _Plan:
    arch = model.config["name"]
    receivers = model_receivers(model)
    params = _params(model)
    if is_distributed(model):
        # devices hold equal-sized encoders; time the one with the most receivers
        big = int(np.argmax([len(idx) for idx in receivers]))
        parts = [seismic[..., torch.as_tensor(idx)].contiguous() for idx in receivers]
        with torch.inference_mode():
            latents = encode_latents(model, seismic)
        payloads = [device[0] for device in pack_latents(model, latents)]
        # the device quantises and packs its float32 latent; the centre parses every payload
        device_work = CodecWork(copy_bytes=4 * latents[big].numel())
        central_work = CodecWork(copy_bytes=sum(len(p) for p in payloads))
        flops = tuple(count_flops(lambda k=k, x=x: model.encode(k, x)) for k, x in enumerate(parts))
        central_flops = count_flops(lambda: model.decode(latents, None))
        calls = {
            f"{key}/encode": lambda: model.encode(big, parts[big]),
            f"{key}/decode": lambda: model.decode(latents, None),
            f"{key}/pack": lambda: pack_latents(model, latents),
            f"{key}/unpack": lambda: [unpack_payload(p) for p in payloads],
        }

        def build(time_of, host_flops: float) -> list[ModelCost]:
            (enc, s1), (dec, s2) = time_of(f"{key}/encode"), time_of(f"{key}/decode")
            return [
                ModelCost(
                    name=arch,
                    distributed=True,
                    payload_bytes=tuple(len(p) for p in payloads),
                    device_flops=flops,
                    central_flops=central_flops,
                    device_host_s=(enc,) * len(receivers),
                    central_host_s=dec,
                    device_codec_host_s=time_of(f"{key}/pack")[0] / len(receivers),
                    central_codec_host_s=time_of(f"{key}/unpack")[0],
                    encoder_params=max(
                        _params(model.encoder_module(k)) for k in range(len(receivers))
                    ),
                    params=params,
                    host_flops=host_flops,
                    timing_spread=max(s1, s2),
                    device_codec_work=device_work,
                    central_codec_work=central_work,
                )
            ]

        return _Plan(calls, build)

    time_samples = seismic.shape[2]
    central_flops = count_flops(lambda: model(seismic))
    calls: dict[str, Callable[[], object]] = {f"{key}/forward": lambda: model(seismic)}
    sent: dict[str, list[bytes]] = {}
    work: dict[str, tuple[CodecWork, CodecWork]] = {}
    float32 = [raw_payload_bytes(time_samples, len(idx)) for idx in receivers]
    for precision, compressed in formats:
        fmt = raw_format_name(precision, compressed)

        def serialise(precision=precision, compressed=compressed):
            payloads = raw_payloads(seismic_raw, receivers, precision)
            return compress_payloads(payloads) if compressed else payloads

        payloads = serialise()
        sent[fmt] = [p[0] for p in payloads]
        # device: read its float32 records (slice, cast), zlib the cast bytes;
        # centre: zlib-restore and read back every device's cast bytes
        plain = [raw_payload_bytes(time_samples, len(idx), precision) for idx in receivers]
        work[fmt] = (
            CodecWork(copy_bytes=max(float32), deflate_bytes=max(plain) if compressed else 0),
            CodecWork(copy_bytes=sum(plain), inflate_bytes=sum(plain) if compressed else 0),
        )
        calls[f"{key}/serialise-{fmt}"] = serialise
        calls[f"{key}/parse-{fmt}"] = (
            lambda payloads=payloads, precision=precision, compressed=compressed: (
                records_from_payloads(payloads, time_samples, compressed, precision)
            )
        )

    def build_raw(time_of, host_flops: float) -> list[ModelCost]:
        forward, spread = time_of(f"{key}/forward")
        return [
            ModelCost(
                name=cost_name(arch, fmt),
                distributed=False,
                payload_bytes=tuple(len(p) for p in payloads),
                device_flops=(0,) * len(receivers),
                central_flops=central_flops,
                device_host_s=(0.0,) * len(receivers),
                central_host_s=forward,
                device_codec_host_s=time_of(f"{key}/serialise-{fmt}")[0] / len(receivers),
                central_codec_host_s=time_of(f"{key}/parse-{fmt}")[0],
                encoder_params=0,
                params=params,
                host_flops=host_flops,
                timing_spread=spread,
                raw_format=fmt,
                device_codec_work=work[fmt][0],
                central_codec_work=work[fmt][1],
            )
            for fmt, payloads in sent.items()
        ]

    return _Plan(calls, build_raw)


def measure_costs(
    entries: Sequence[tuple[str, nn.Module, torch.Tensor, np.ndarray]],
    *,
    formats: Sequence[tuple[str, bool]] = RAW_FORMATS,
    warmup: int = 2,
    repeats: int = 15,
    cpu: int | None = None,
) -> dict[str, list[ModelCost]]:
    """Time and count one sample through several models, interleaved, in one pinned thread.

    Args:
        entries: ``(key, model, seismic [1, 5, T, 70] normalised, seismic_raw
            [1, 5, T, 70] raw amplitudes)``; keys must differ.
        formats: raw formats ``(precision, zlib)`` costed for centralised models.
        warmup, repeats: untimed calls per call, and timing rounds.
        cpu: core to pin the timing thread to (``None``: no affinity change).

    Returns:
        ``{key: [ModelCost, ...]}``: one cost for a distributed model, one per
        raw format for a centralised one (named by :func:`cost_name`).
    """
    plans = {}
    for key, model, seismic, seismic_raw in entries:
        if seismic.shape[0] != 1 or np.shape(seismic_raw)[0] != 1:
            raise ValueError("measure_costs times one sample: pass seismic [1, 5, T, 70]")
        if key in plans:
            raise ValueError(f"duplicate cost key {key!r}")
        plans[key] = _plan(key, model.eval(), seismic, seismic_raw, formats)
    probe, probe_flops = reference_probe()
    calls = {}
    for plan in plans.values():
        calls.update(plan.calls)
    with pinned(cpu):
        timings = time_interleaved(calls, probe, warmup=warmup, repeats=repeats)
    probe_s = timings.probe_seconds()

    def time_of(call: str) -> tuple[float, float]:
        rel = probe_relative(timings, call)
        return rel.median * probe_s, rel.spread

    return {key: plan.build(time_of, probe_flops / probe_s) for key, plan in plans.items()}


def measure_cost(
    model: nn.Module,
    seismic: torch.Tensor,
    seismic_raw: np.ndarray,
    *,
    compress: bool = False,
    precision: str = "float32",
    name: str | None = None,
    warmup: int = 2,
    repeats: int = 5,
    cpu: int | None = None,
) -> ModelCost:
    """One model's cost (:func:`measure_costs` for a single model and raw format).

    Args:
        model: a zoo network in eval mode.
        seismic: ``[1, 5, T, 70]`` normalised records (the network input).
        seismic_raw: ``[1, 5, T, 70]`` the same records as raw amplitudes.
        compress, precision: for a centralised model, the raw format it sends.
        name: row name; default :func:`cost_name`.
    """
    costs = measure_costs(
        [("model", model, seismic, seismic_raw)],
        formats=[(precision, compress)],
        warmup=warmup,
        repeats=repeats,
        cpu=cpu,
    )["model"]
    return replace(costs[0], name=name) if name else costs[0]


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

    ``device_compute_j`` sums all devices; ``radio_tx_j`` (communication energy),
    ``radio_listen_j`` and ``radio_state_j`` (promotion + tail) sum all radios.
    ``promotion_s`` is the radio state promotion before sending (0 on Wi-Fi).
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
    promotion_s: float = 0.0
    radio_state_j: float = 0.0

    @property
    def latency_s(self) -> float:
        return (
            self.device_compute_s
            + self.promotion_s
            + self.comm_s
            + self.propagation_s
            + self.central_compute_s
        )

    @property
    def comm_energy_j(self) -> float:
        """Energy the radios spend transmitting (the EPIC paper's communication energy)."""
        return self.radio_tx_j

    @property
    def radio_energy_j(self) -> float:
        """Everything the radios spend: transmit + listen + state (promotion, tail)."""
        return self.radio_tx_j + self.radio_listen_j + self.radio_state_j

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
    codec_work: CodecWork | None = None,
) -> float:
    """Time of one network call plus its codec work on ``profile``, s (see the module docstring).

    ``"measured"`` scales the host times ``host_s`` and ``codec_host_s`` by
    ``host_flops / profile.effective_flops``; ``"flops"`` uses ``flops`` and
    ``codec_work`` only (nothing timed; ``None``: no codec work).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown compute-time source {source!r}; use one of {SOURCES}")
    if host_flops <= 0:
        raise ValueError(f"host_flops={host_flops} must be > 0")
    scale = host_flops / profile.effective_flops
    if source == "measured":
        codec = codec_host_s * scale
        network = host_s * scale + profile.call_overhead_s
    else:
        codec = profile.codec_seconds(codec_work or CodecWork())
        network = profile.flops_seconds(flops)
    if flops == 0 and host_s == 0:
        return codec  # nothing but serialising: no network call, no call overhead
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
        compute_seconds(
            f, h, cost.device_codec_host_s, device, source, host_flops, cost.device_codec_work
        )
        for f, h in zip(cost.device_flops, cost.device_host_s, strict=True)
    ]
    central_s = compute_seconds(
        cost.central_flops,
        cost.central_host_s,
        cost.central_codec_host_s,
        central,
        source,
        host_flops,
        cost.central_codec_work,
    )
    airtimes = [link.airtime_s(int(n)) for n in cost.payload_bytes]
    if link.shared_medium:
        waits = [sum(airtimes[:k]) + link.rtt_s for k in range(len(airtimes))]
    else:
        waits = [link.rtt_s] * len(airtimes)
    busy = [w + a for w, a in zip(waits, airtimes, strict=True)]
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
        promotion_s=max(link.promotion_delay_s(b) for b in busy),
        radio_state_j=sum(link.state_energy_j(b) for b in busy),
    )
