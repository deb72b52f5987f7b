"""Refine-on-demand rows of the bench: real upload bytes, costs added up, the simulator's energy."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
import torch

from epic_zoo.bench import ondemand as od
from epic_zoo.bench.settings import Settings, resolve_hardware
from epic_zoo.data.contract import InputContract
from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.profiles import CodecWork
from epic_zoo.hardware.simulator import SOURCES, ModelCost, simulate
from epic_zoo.models import create_model


def receivers() -> list[np.ndarray]:
    return pl.model_receivers(create_model("inversionnet", time_samples=250))


def records(n: int = 2, seed: int = 0) -> np.ndarray:
    """Smooth-ish raw records ``[n, 5, 1000, 70]`` (zlib finds something to compress)."""
    rng = np.random.default_rng(seed)
    t = np.arange(1000, dtype=np.float32)[None, None, :, None]
    phase = rng.uniform(0, 6, size=(n, 5, 1, 70)).astype(np.float32)
    return (np.sin(t / 20.0 + phase) * np.exp(-t / 400.0)).astype(np.float32)


def test_upload_names_round_trip_and_bad_names_say_the_form() -> None:
    for name in od.DEFAULT_UPLOADS + ("2ms-float16", "4ms-float32-zlib"):
        assert od.Upload.parse(name).name == name
    assert od.Upload.parse("4ms-float16-zlib") == od.Upload(4, "float16", True)
    assert od.Upload(4, "float16", True).raw_format == "f16-zlib"
    assert od.Upload(4).time_samples(1000) == 250 and od.Upload(3).time_samples(1000) == 334
    with pytest.raises(ValueError, match="STRIDEms-PRECISION"):
        od.Upload.parse("4ms-int8")
    with pytest.raises(ValueError, match=">= 1"):
        od.Upload(0)


@pytest.mark.parametrize(
    "name", ["1ms-float32", "1ms-float16-zlib", "4ms-float16", "2ms-float32-zlib"]
)
def test_upload_bytes_are_the_payload_encoders_and_decode_to_what_was_sent(name: str) -> None:
    upload = od.Upload.parse(name)
    rec, rx = records(), receivers()
    payloads = od.upload_payloads(rec, rx, upload)
    sent = rec[:, :, :: upload.time_stride_ms]
    dtype = np.float16 if upload.precision == "float16" else np.float32
    for k, idx in enumerate(rx):
        for i in range(rec.shape[0]):
            plain = np.ascontiguousarray(sent[i][..., idx], dtype=dtype).tobytes()
            assert len(plain) == pl.raw_payload_bytes(sent.shape[2], len(idx), upload.precision)
            expected = zlib.compress(plain, pl.ZLIB_LEVEL) if upload.zlib else plain
            assert payloads[k][i] == expected
    sizes = od.upload_sizes(rec, rx, upload)
    assert sizes == tuple(int(round(np.mean([len(p) for p in device]))) for device in payloads)
    back = od.decode_upload(payloads, upload, rec.shape[2])
    assert back.shape == sent.shape and back.dtype == np.float32
    np.testing.assert_array_equal(back, sent.astype(dtype).astype(np.float32))


def test_smaller_settings_send_fewer_bytes() -> None:
    rec, rx = records(), receivers()
    order = [
        "1ms-float32",
        "1ms-float16",
        "1ms-float16-zlib",
        "2ms-float16-zlib",
        "4ms-float16-zlib",
    ]
    sizes = [max(od.upload_sizes(rec, rx, od.Upload.parse(n))) for n in order]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert sizes[0] == 2 * sizes[1] == 4 * 5 * 1000 * 14


def toy_cost(**overrides) -> ModelCost:
    fields = dict(
        name="epic",
        distributed=True,
        payload_bytes=(933,) * 5,
        device_flops=(2 * 10**7,) * 5,
        central_flops=3 * 10**8,
        device_host_s=(0.002,) * 5,
        central_host_s=0.004,
        device_codec_host_s=1e-5,
        central_codec_host_s=2e-5,
        encoder_params=88064,
        params=1218549,
        host_flops=7e10,
        device_codec_work=CodecWork(copy_bytes=3000),
        central_codec_work=CodecWork(copy_bytes=4665),
    )
    fields.update(overrides)
    return ModelCost(**fields)


def toy_raw(fmt: str, sizes: tuple[int, ...], host_flops: float = 3.5e10) -> ModelCost:
    return toy_cost(
        name=f"inversionnet+{fmt}",
        distributed=False,
        payload_bytes=sizes,
        device_flops=(0,) * 5,
        central_flops=2 * 10**9,
        device_host_s=(0.0,) * 5,
        central_host_s=0.05,
        device_codec_host_s=4e-4,
        central_codec_host_s=1e-3,
        encoder_params=0,
        host_flops=host_flops,
        raw_format=fmt,
        device_codec_work=CodecWork(copy_bytes=70000, deflate_bytes=35000),
        central_codec_work=CodecWork(copy_bytes=175000, inflate_bytes=175000),
    )


def test_on_demand_cost_adds_the_upload_to_the_latent() -> None:
    latent, upload = toy_cost(), od.Upload(4, "float16", True)
    raw = toy_raw("f16-zlib", (30000, 31000, 32000, 31000, 30000))
    cost = od.on_demand_cost(latent, raw, upload)
    assert cost.name == "epic+refine-4ms-float16-zlib" and cost.distributed
    assert cost.payload_bytes == tuple(933 + b for b in raw.payload_bytes)
    # raw timings rescaled to the latent's probe speed (raw host twice as slow: half the time)
    assert cost.device_codec_host_s == pytest.approx(1e-5 + 4e-4 * 0.5)
    assert cost.central_codec_host_s == pytest.approx(2e-5 + 1e-3 * 0.5)
    assert cost.device_codec_work == CodecWork(73000, 35000, 0)
    assert cost.central_codec_work == CodecWork(179665, 0, 175000)
    assert cost.device_flops == latent.device_flops and cost.central_host_s == latent.central_host_s
    with pytest.raises(ValueError, match="does not price"):
        od.on_demand_cost(latent, raw, od.Upload(4, "float32", True))
    with pytest.raises(ValueError, match="distributed"):
        od.on_demand_cost(raw, raw, upload)


@pytest.fixture(scope="module")
def hardware():
    return resolve_hardware(Settings(links=["wifi-ac", "4g-sporadic", "nbiot"]))


def toy_costs() -> od.OnDemandCosts:
    latent = toy_cost()
    sizes = {"1ms-float32": (280000,) * 5, "1ms-float16-zlib": (113000,) * 5}
    sizes["4ms-float16-zlib"] = (29650,) * 5
    uploads = {
        n: od.on_demand_cost(latent, toy_raw(od.Upload.parse(n).raw_format, s), od.Upload.parse(n))
        for n, s in sizes.items()
    }
    baselines = [toy_raw("f32", (70000,) * 5), toy_raw("f16-zlib", (29650,) * 5)]
    return od.OnDemandCosts(latent, uploads, baselines, sizes)


def test_costs_survive_a_json_round_trip() -> None:
    costs = toy_costs()
    back = od.OnDemandCosts.from_dict(json.loads(json.dumps(costs.as_dict())))
    assert back == costs


def test_rows_per_link_energy_from_the_simulator_and_ordered_by_bytes(hardware) -> None:
    costs = toy_costs()
    fidelity = {
        "latent": {"mae_ms": 100.0},
        "4ms-float16-zlib": {"mae_ms": 60.0, "refine_cpu_s_host": 90.0},
    }
    links = list(hardware.links)
    rows = od.on_demand_rows(costs, "curvevel-a", hardware, links, {"seed": 1}, fidelity)
    assert len(rows) == len(links) * (1 + 3 + 2)
    everything = [costs.latent, *costs.uploads.values(), *costs.baselines]
    for row in rows:
        cost = next(c for c in everything if c.name == row["model"])
        link = hardware.links[row["link"]]
        for s in SOURCES:
            est = simulate(cost, link, hardware.device, hardware.central, source=s)
            per_device = (est.device_compute_j + est.radio_energy_j) / 5
            assert row[f"energy_per_device_j_{s}"] == pytest.approx(per_device, rel=1e-12)
            assert row[f"latency_s_{s}"] == pytest.approx(est.latency_s, rel=1e-12)
        assert row["seed"] == 1 and row["payload_bytes_per_device"] == max(cost.payload_bytes)
    for link in links:
        mine = [r for r in rows if r["link"] == link and r["row_kind"] in ("latent", "refine")]
        by_bytes = sorted(mine, key=lambda r: r["payload_bytes_per_device"])
        assert [r["upload"] for r in by_bytes] == [
            None,
            "4ms-float16-zlib",
            "1ms-float16-zlib",
            "1ms-float32",
        ]
        radio = [r["energy_radio_j"] for r in by_bytes]
        assert radio == sorted(radio) and radio[0] < radio[-1]
        lean = next(r for r in mine if r["upload"] == "4ms-float16-zlib")
        assert lean["mae_ms"] == 60.0 and lean["upload_bytes_per_device"] == 29650
        scaled = 90.0 * lean["host_gflops_1thread"] * 1e9 / hardware.central.effective_flops
        assert lean["refine_central_s"] == pytest.approx(scaled)
        assert lean["latency_with_refine_s_measured"] == pytest.approx(
            lean["latency_s_measured"] + scaled
        )
        assert lean["refine_central_j"] == pytest.approx(hardware.central.active_power_w * scaled)
        assert "refine_central_s" not in next(r for r in mine if r["upload"] == "1ms-float32")
        assert next(r for r in mine if r["row_kind"] == "latent")["mae_ms"] == 100.0
    table = od.markdown(rows)
    assert table.count("\n") == len(rows) + 2 and "epic+refine-4ms-float16-zlib" in table


def test_measure_on_demand_times_real_models_and_counts_real_bytes(one_thread) -> None:
    torch.manual_seed(0)
    model = create_model("epic", time_samples=250).eval()
    rec = records(n=2)
    uploads = [od.Upload.parse("4ms-float16-zlib"), od.Upload.parse("1ms-float32")]
    with pytest.raises(ValueError, match="no input contract; load it with"):
        od.measure_on_demand(model, rec, "flatvel-a", uploads, warmup=0, repeats=1)
    model.contract = InputContract.make("flatvel-a", time_stride=4)  # as load_model sets it
    costs = od.measure_on_demand(model, rec, "flatvel-a", uploads, warmup=0, repeats=1)
    latent_bytes = model.payload_bytes()
    assert costs.latent.payload_bytes == (latent_bytes,) * 5
    rx = pl.model_receivers(model)
    for upload in uploads:
        cost = costs.uploads[upload.name]
        sizes = od.upload_sizes(rec, rx, upload)
        assert costs.upload_bytes[upload.name] == sizes
        assert cost.payload_bytes == tuple(latent_bytes + s for s in sizes)
        assert cost.device_codec_host_s > costs.latent.device_codec_host_s
    assert costs.uploads["1ms-float32"].payload_bytes[0] == latent_bytes + 4 * 5 * 1000 * 14
    names = [c.name for c in costs.baselines]
    assert names == [
        "inversionnet",
        "inversionnet+f16",
        "inversionnet+f32-zlib",
        "inversionnet+f16-zlib",
    ]
    # the lean upload is InversionNet's matched f16-zlib baseline, plus the latent
    f16z = costs.baselines[-1]
    assert f16z.payload_bytes == costs.upload_bytes["4ms-float16-zlib"]
    assert costs.baselines[0].payload_bytes == (4 * 5 * 250 * 14,) * 5  # EPIC's own 4 ms
