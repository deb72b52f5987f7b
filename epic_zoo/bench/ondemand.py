"""Refine on demand: what the devices' record upload adds to a distributed model's latents.

EPIC's devices send latents (:mod:`epic_zoo.hardware.payload`). To refine a
map by full-waveform inversion (:func:`epic_zoo.refine.refine_maps`) the
centre also needs the records, so it asks each device for them: the upload is
an :class:`Upload` setting (time stride in ms, float32 / float16, zlib). Its
cost is priced with the bench's own machinery:

- **bytes**: real byte strings of the records at the setting
  (:func:`upload_payloads`: ``raw_payloads`` of every ``stride``-th 1 ms
  sample, then ``compress_payloads``); the centre refines from what
  :func:`decode_upload` rebuilds from those bytes alone;
- **codec time**: the upload's serialise / parse calls are the raw-record
  codec of a centralised model at the upload's record length, timed by
  :func:`epic_zoo.hardware.simulator.measure_costs` together with the
  distributed model (:func:`measure_on_demand`);
- **latency and energy**: :func:`on_demand_cost` adds the upload to the
  latent's :class:`~epic_zoo.hardware.simulator.ModelCost` (one message per
  device carrying latent and records; the request's own round trip is not
  charged), and :func:`epic_zoo.bench.rows.link_rows` simulates it on every
  link, with the same ratios to the centralised raw baselines as every bench row.

The refinement itself runs at the centre: :func:`add_refinement` adds its
process CPU-seconds per map measured on this machine (``refine_cpu_s_host``),
scaled to the central profile like every ``measured`` time
(``refine_central_s``, ``latency_with_refine_s_measured``,
``refine_central_j``). The devices do not pay for it: the per-device energy
columns (``energy_per_device_j_*``: a device's compute + radio, mean over
devices) are what a device's battery pays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from epic_zoo.bench.rows import link_rows
from epic_zoo.bench.settings import Hardware
from epic_zoo.data.geometry import NT
from epic_zoo.data.transforms import normalize_seismic
from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.profiles import CodecWork
from epic_zoo.hardware.simulator import SOURCES, ModelCost, measure_costs
from epic_zoo.models import create_model

CENTRALISED: str = "inversionnet"
"""Centralised model whose raw-record codec times the upload and whose rows are the baselines."""
DEFAULT_UPLOADS: tuple[str, ...] = ("1ms-float32", "1ms-float16-zlib", "4ms-float16-zlib")
"""Upload settings of the bench rows: full records, float16 + zlib, and every 4th ms of those."""
_NAME = re.compile(r"^(\d+)ms-(float32|float16)(-zlib)?$")


@dataclass(frozen=True)
class Upload:
    """How a device uploads its records when the centre asks for them.

    Attributes:
        time_stride_ms: every this-many 1 ms samples is sent (1 = all).
        precision: ``float32`` or ``float16`` (little-endian).
        zlib: each device's bytes zlib-compressed (lossless).
    """

    time_stride_ms: int
    precision: str = "float32"
    zlib: bool = False

    def __post_init__(self) -> None:
        if int(self.time_stride_ms) != self.time_stride_ms or self.time_stride_ms < 1:
            raise ValueError(
                f"upload time stride {self.time_stride_ms!r} must be a whole number of ms >= 1"
            )
        pl.raw_format_name(self.precision)  # ValueError naming the precisions

    @property
    def name(self) -> str:
        """``{stride}ms-{precision}[-zlib]``, e.g. ``4ms-float16-zlib``."""
        return f"{self.time_stride_ms}ms-{self.precision}" + ("-zlib" if self.zlib else "")

    @property
    def raw_format(self) -> str:
        """The bench's raw-format name of the bytes (``f32``, ``f16-zlib``, ...)."""
        return pl.raw_format_name(self.precision, self.zlib)

    def time_samples(self, nt: int = NT) -> int:
        """Samples per trace sent from ``nt`` 1 ms samples."""
        return len(range(0, int(nt), self.time_stride_ms))

    @classmethod
    def parse(cls, text: str) -> Upload:
        """An upload from its :attr:`name`; ``ValueError`` naming the expected form."""
        match = _NAME.match(text.strip())
        if match is None:
            raise ValueError(
                f"upload setting {text!r}; write STRIDEms-PRECISION[-zlib], e.g. 4ms-float16-zlib "
                "(precision float32 or float16)"
            )
        return cls(int(match.group(1)), match.group(2), bool(match.group(3)))


def upload_payloads(
    records: np.ndarray, receivers: Sequence[np.ndarray], upload: Upload
) -> pl.Payloads:
    """The bytes each device sends: ``payloads[k][i]`` for raw 1 ms records ``[N, 5, T, 70]``."""
    payloads = pl.raw_payloads(records[:, :, :: upload.time_stride_ms], receivers, upload.precision)
    return pl.compress_payloads(payloads) if upload.zlib else payloads


def decode_upload(payloads: pl.Payloads, upload: Upload, nt: int = NT) -> np.ndarray:
    """What the centre holds: records ``[N, 5, T', 70]`` float32 rebuilt from the bytes alone
    (a sample every ``upload.time_stride_ms`` ms; pass ``data_time_stride`` to the refinement)."""
    return pl.records_from_payloads(
        payloads, upload.time_samples(nt), upload.zlib, upload.precision
    )


def upload_sizes(
    records: np.ndarray, receivers: Sequence[np.ndarray], upload: Upload
) -> tuple[int, ...]:
    """Bytes per device, mean over the maps of ``records`` ``[N, 5, T, 70]``, rounded."""
    sizes = pl.payload_sizes(upload_payloads(records, receivers, upload))
    return tuple(int(round(s)) for s in sizes.mean(axis=1))


def _plus(a: CodecWork, b: CodecWork) -> CodecWork:
    return CodecWork(
        a.copy_bytes + b.copy_bytes,
        a.deflate_bytes + b.deflate_bytes,
        a.inflate_bytes + b.inflate_bytes,
    )


def on_demand_cost(latent: ModelCost, raw: ModelCost, upload: Upload) -> ModelCost:
    """The distributed model's cost plus the record upload, named ``{model}+refine-{upload}``.

    Args:
        latent: the distributed model's cost (its devices send latents).
        raw: a centralised model's cost in ``upload.raw_format`` at the upload's
            record length, its ``payload_bytes`` the upload's real sizes: its
            device serialise and centre parse times are the upload's codec.
        upload: the setting (names the row).

    Each device sends latent + records in one message; the raw cost's timings
    are rescaled to the latent's probe speed (``host_flops``), so both are in
    one unit before the simulator scales them to a profile.
    """
    if not latent.distributed or raw.distributed:
        raise ValueError(
            f"on_demand_cost takes a distributed model's cost and a raw one; got "
            f"{latent.name} and {raw.name}"
        )
    if raw.raw_format != upload.raw_format or latent.num_devices != raw.num_devices:
        raise ValueError(
            f"{raw.name} ({raw.raw_format}, {raw.num_devices} devices) does not price upload "
            f"{upload.name} ({upload.raw_format}) for {latent.num_devices} devices"
        )
    scale = raw.host_flops / latent.host_flops
    return replace(
        latent,
        name=f"{latent.name}+refine-{upload.name}",
        payload_bytes=tuple(
            a + b for a, b in zip(latent.payload_bytes, raw.payload_bytes, strict=True)
        ),
        device_codec_host_s=latent.device_codec_host_s + raw.device_codec_host_s * scale,
        central_codec_host_s=latent.central_codec_host_s + raw.central_codec_host_s * scale,
        device_codec_work=_plus(latent.device_codec_work, raw.device_codec_work),
        central_codec_work=_plus(latent.central_codec_work, raw.central_codec_work),
        timing_spread=max(latent.timing_spread, raw.timing_spread),
    )


@dataclass(frozen=True)
class OnDemandCosts:
    """Costs of one measurement: the latent row, one per upload, the centralised baselines.

    Attributes:
        latent: the distributed model sending latents only.
        uploads: ``{upload name: cost}`` from :func:`on_demand_cost`.
        baselines: the centralised model's raw rows at the distributed model's
            own time sampling (the bench's matched baselines), real byte sizes.
        upload_bytes: ``{upload name: bytes per device}`` (the records alone).
    """

    latent: ModelCost
    uploads: dict[str, ModelCost]
    baselines: list[ModelCost]
    upload_bytes: dict[str, tuple[int, ...]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``from_dict`` reads it back): a timed measurement can be reused."""
        return {
            "latent": self.latent.as_dict(),
            "uploads": {k: c.as_dict() for k, c in self.uploads.items()},
            "baselines": [c.as_dict() for c in self.baselines],
            "upload_bytes": {k: list(v) for k, v in self.upload_bytes.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OnDemandCosts:
        """Inverse of :meth:`as_dict` (after a JSON round trip)."""
        return cls(
            latent=ModelCost.from_dict(data["latent"]),
            uploads={k: ModelCost.from_dict(c) for k, c in data["uploads"].items()},
            baselines=[ModelCost.from_dict(c) for c in data["baselines"]],
            upload_bytes={k: tuple(v) for k, v in data["upload_bytes"].items()},
        )


def measure_on_demand(
    model: nn.Module,
    records: np.ndarray,
    dataset: str,
    uploads: Sequence[Upload],
    *,
    warmup: int = 3,
    repeats: int = 60,
    cpu: int | None = None,
) -> OnDemandCosts:
    """Time the model and the upload codecs together; sizes from every map of ``records``.

    Args:
        model: a distributed model in eval mode with its input ``contract``
            (as :func:`epic_zoo.models.load_model` returns it).
        records: raw 1 ms records ``[N, 5, 1000, 70]`` (the first map is timed;
            sizes are means over all ``N``).
        dataset: normalisation of the model's input.
        uploads: the settings to price.
        warmup, repeats, cpu: as :func:`~epic_zoo.hardware.simulator.measure_costs`.
    """
    if not pl.is_distributed(model):
        raise ValueError(f"{model.config['name']} sends records already; pass a distributed model")
    contract = getattr(model, "contract", None)
    if contract is None:
        raise ValueError(
            f"{model.config['name']} carries no input contract; load it with "
            "epic_zoo.models.load_model(spec) so its time sampling is known"
        )
    receivers = pl.model_receivers(model)
    first = records[:1]
    inputs = contract.decimate(first, axis=2)  # what the devices encode
    stride = NT // inputs.shape[2]  # the model's own sampling, as the contract decimates
    strides = sorted({stride, *(u.time_stride_ms for u in uploads)})
    entries, sizes = [], {}
    x = torch.from_numpy(normalize_seismic(inputs, dataset).astype(np.float32))
    entries.append(("latent", model.eval(), x, inputs))
    for s in strides:
        raw = np.ascontiguousarray(first[:, :, ::s], dtype=np.float32)
        centre = create_model(CENTRALISED, time_samples=raw.shape[2]).eval()
        xs = torch.from_numpy(normalize_seismic(raw, dataset).astype(np.float32))
        entries.append((f"raw-{s}ms", centre, xs, raw))
        for precision, zipped in pl.RAW_FORMATS:
            u = Upload(s, precision, zipped)
            sizes[u.name] = upload_sizes(records, receivers, u)
    costs = measure_costs(entries, warmup=warmup, repeats=repeats, cpu=cpu)
    latent = costs["latent"][0]

    def raw_cost(u: Upload) -> ModelCost:
        cost = next(c for c in costs[f"raw-{u.time_stride_ms}ms"] if c.raw_format == u.raw_format)
        return replace(cost, payload_bytes=sizes[u.name])

    baselines = [raw_cost(Upload(stride, p, z)) for p, z in pl.RAW_FORMATS]
    return OnDemandCosts(
        latent=latent,
        uploads={u.name: on_demand_cost(latent, raw_cost(u), u) for u in uploads},
        baselines=baselines,
        upload_bytes={u.name: sizes[u.name] for u in uploads},
    )


def per_device_columns(row: dict[str, Any]) -> dict[str, float]:
    """``energy_per_device_j_SRC``: one device's compute + radio energy (mean over devices), J."""
    devices = int(row["num_devices"])
    return {
        f"energy_per_device_j_{s}": (row[f"device_compute_j_{s}"] + row["energy_radio_j"]) / devices
        for s in SOURCES
    }


def add_refinement(
    row: dict[str, Any], refine_cpu_s_host: float, host_flops: float, hardware: Hardware
) -> dict[str, float]:
    """Columns of the centre's refinement: its host CPU-seconds per map scaled to the central
    profile (``host_flops / central.effective_flops``, as every ``measured`` time), the latency
    with it and its energy at the centre."""
    central_s = refine_cpu_s_host * host_flops / hardware.central.effective_flops
    return {
        "refine_cpu_s_host": refine_cpu_s_host,
        "refine_central_s": central_s,
        "latency_with_refine_s_measured": row["latency_s_measured"] + central_s,
        "refine_central_j": hardware.central.active_power_w * central_s,
    }


def on_demand_rows(
    costs: OnDemandCosts,
    dataset: str,
    hardware: Hardware,
    links: Sequence[str],
    facts: dict[str, Any] | None = None,
    fidelity: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Bench rows per link: the latent row, one per upload, the centralised baselines.

    Args:
        costs: from :func:`measure_on_demand`.
        dataset, hardware, links: as the sweep's.
        facts: columns added to every row (conditions).
        fidelity: ``{row kind: columns}``: ``"latent"`` (the distributed model's
            map), each upload name (after refinement; a ``refine_cpu_s_host`` key
            adds :func:`add_refinement`'s columns), ``"baseline"``.

    Every row has ``row_kind`` (``latent``, ``refine``, ``baseline``),
    ``upload`` (the setting or ``None``) and ``payload_bytes_per_device``
    (the largest device's; for uploads also ``upload_bytes_per_device``).
    """
    facts = dict(facts or {})
    fidelity = fidelity or {}
    rows: list[dict[str, Any]] = []
    refs = costs.baselines
    entries: list[tuple[str, str | None, ModelCost]] = [("latent", None, costs.latent)]
    entries += [("refine", name, cost) for name, cost in costs.uploads.items()]
    entries += [("baseline", None, cost) for cost in refs]
    for kind, upload, cost in entries:
        extra = {
            "row_kind": kind,
            "upload": upload,
            "distributed": cost.distributed,
            "raw_format": cost.raw_format or None,
            "num_devices": cost.num_devices,
            "payload_bytes_per_device": max(cost.payload_bytes),
            "payload_bytes_per_sample": sum(cost.payload_bytes),
        }
        if upload is not None:
            extra["upload_bytes_per_device"] = max(costs.upload_bytes[upload])
        known = dict(fidelity.get(upload if upload is not None else kind, {}))
        refine_s = known.pop("refine_cpu_s_host", None)
        for row in link_rows(
            cost.name, dataset, {**facts, **extra, **known}, cost, refs, hardware, links
        ):
            row.update(per_device_columns(row))
            if refine_s is not None and not math.isnan(refine_s):
                row.update(add_refinement(row, refine_s, cost.host_flops, hardware))
            rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table row per (row, link): bytes, latency, energy per device, fidelity when known."""
    lines = [
        "| row | link | B/device | x latent bytes | latency ms (meas / FLOPs) | + refinement s "
        "| energy/device mJ (meas / FLOPs) | MAE m/s | SSIM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    latent = {r["link"]: r for r in rows if r["row_kind"] == "latent"}
    for r in rows:
        base = latent.get(r["link"])
        times = (
            r["payload_bytes_per_device"] / base["payload_bytes_per_device"] if base else math.nan
        )
        refine = r.get("refine_central_s")
        mae, ssim = r.get("mae_ms"), r.get("ssim_openfwi")
        lines.append(
            f"| {r['model']} | {r['link']} | {r['payload_bytes_per_device']:,} | {times:.1f} "
            f"| {1e3 * r['latency_s_measured']:.1f} / {1e3 * r['latency_s_flops']:.1f} "
            f"| {'-' if refine is None else f'{refine:.1f}'} "
            f"| {1e3 * r['energy_per_device_j_measured']:.3g} / "
            f"{1e3 * r['energy_per_device_j_flops']:.3g} "
            f"| {'-' if mae is None else f'{mae:.1f}'} | {'-' if ssim is None else f'{ssim:.3f}'} |"
        )
    return "\n".join(lines) + "\n"
