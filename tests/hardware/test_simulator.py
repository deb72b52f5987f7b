"""Simulator and payload accounting: hand-checked arithmetic and real models' bytes."""

from __future__ import annotations

import dataclasses
import functools
import json
import zlib

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.profiles import CENTRALS, DEVICES, LINKS, CodecWork
from epic_zoo.hardware.simulator import (
    ModelCost,
    compute_seconds,
    count_flops,
    host_reference_flops,
    measure_cost,
    measure_costs,
    simulate,
    time_call,
    transfer_time,
)
from epic_zoo.hardware.timing import (
    Relative,
    Timings,
    default_cpu,
    pinned,
    probe_relative,
    time_interleaved,
)
from epic_zoo.models import create_model, list_models
from epic_zoo.models.codec import PayloadError, payload_size, unpack_payload

T = 250  # records of the tiny/lite profiles (1000 ms at a 4 ms stride)


@functools.cache
def zoo_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, time_samples=T).eval()


DISTRIBUTED = [name for name in list_models() if pl.is_distributed(zoo_model(name))]


def cost(**overrides) -> ModelCost:
    fields = dict(
        name="toy",
        distributed=True,
        payload_bytes=(1000, 2000, 3000),
        device_flops=(10**9, 10**9, 2 * 10**9),
        central_flops=10**10,
        device_host_s=(0.01, 0.01, 0.02),
        central_host_s=0.05,
        device_codec_host_s=0.001,
        central_codec_host_s=0.002,
        encoder_params=10,
        params=100,
        host_flops=2e10,
        device_codec_work=CodecWork(copy_bytes=4000),
        central_codec_work=CodecWork(copy_bytes=6000),
    )
    fields.update(overrides)
    return ModelCost(**fields)


def test_transfer_time_sums_on_a_shared_medium_and_overlaps_on_separate_links() -> None:
    shared = LINKS["wifi-n"]
    separate = dataclasses.replace(shared, shared_medium=False)
    sizes = [1000, 5000, 70000]
    airtimes = [shared.airtime_s(n) for n in sizes]
    assert transfer_time(sizes, shared) == pytest.approx(sum(airtimes))
    assert transfer_time(sizes, separate) == pytest.approx(max(airtimes))
    with pytest.raises(ValueError, match="at least one device"):
        transfer_time([], shared)


def test_compute_seconds_from_both_sources() -> None:
    rpi = dataclasses.replace(
        DEVICES["rpi4"], effective_flops=1e10, call_overhead_s=1e-3, deflate_bytes_per_s=1e7
    )
    host = 4e10  # this machine 4x faster than the device
    work = CodecWork(deflate_bytes=20_000)  # 2 ms of zlib on the device
    # FLOP-based: FLOPs and codec bytes only; the host timings play no part
    assert compute_seconds(2e8, 5e-3, 1e-4, rpi, "flops", host, work) == pytest.approx(
        1e-3 + 2e8 / 1e10 + 2e-3
    )
    assert compute_seconds(2e8, 9.0, 9.0, rpi, "flops", 1.0, work) == compute_seconds(
        2e8, 5e-3, 1e-4, rpi, "flops", host, work
    )
    # measured: host network and codec times scaled by the speed ratio
    assert compute_seconds(2e8, 5e-3, 1e-4, rpi, "measured", host, work) == pytest.approx(
        5e-3 * 4 + 1e-3 + 4e-4
    )
    # a raw sender only serialises: no network call, no call overhead
    assert compute_seconds(0, 0.0, 1e-4, rpi, "flops", host, work) == pytest.approx(2e-3)
    assert compute_seconds(0, 0.0, 1e-4, rpi, "measured", host, work) == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="unknown compute-time source"):
        compute_seconds(1, 1.0, 0.0, rpi, "guess", host)


@pytest.mark.parametrize("source", ["measured", "flops"])
def test_simulate_breakdown_by_hand(source: str) -> None:
    c = cost()
    link, device, central = LINKS["wifi-n"], DEVICES["rpi4"], CENTRALS["server-cpu"]
    host = c.host_flops
    est = simulate(c, link, device, central, source=source)
    dev = [
        compute_seconds(f, h, c.device_codec_host_s, device, source, host, c.device_codec_work)
        for f, h in zip(c.device_flops, c.device_host_s, strict=True)
    ]
    cen = compute_seconds(
        c.central_flops,
        c.central_host_s,
        c.central_codec_host_s,
        central,
        source,
        host,
        c.central_codec_work,
    )
    air = [link.airtime_s(n) for n in c.payload_bytes]
    assert est.device_compute_s == pytest.approx(max(dev))
    assert est.comm_s == pytest.approx(sum(air))
    assert est.propagation_s == pytest.approx(link.rtt_s / 2)
    assert est.latency_s == pytest.approx(max(dev) + sum(air) + link.rtt_s / 2 + cen)
    assert est.device_compute_j == pytest.approx(device.active_power_w * sum(dev))
    assert est.comm_energy_j == pytest.approx(link.tx_power_w * sum(air))
    # device k listens while the k devices before it send, then one round trip
    waits = [0 + link.rtt_s, air[0] + link.rtt_s, air[0] + air[1] + link.rtt_s]
    assert est.radio_listen_j == pytest.approx(link.listen_power_w * sum(waits))
    assert est.energy_j == pytest.approx(
        est.device_compute_j + est.radio_energy_j + central.active_power_w * cen
    )
    assert set(est.as_dict()) >= {"latency_s", "comm_energy_j", "radio_energy_j", "energy_j"}


def test_separate_links_listen_for_one_round_trip_only() -> None:
    link = LINKS["4g-sporadic"]
    est = simulate(cost(), link, DEVICES["rpi4"], CENTRALS["gpu"], source="flops")
    assert est.radio_listen_j == pytest.approx(3 * link.listen_power_w * link.rtt_s)
    assert est.comm_s == pytest.approx(link.airtime_s(3000))


def test_lte_promotion_adds_latency_and_state_energy() -> None:
    link = LINKS["4g-sporadic"]
    est = simulate(cost(), link, DEVICES["rpi4"], CENTRALS["gpu"], source="flops")
    plain = simulate(
        cost(),
        dataclasses.replace(link, promotion_s=0.0, tail_s=0.0),
        DEVICES["rpi4"],
        CENTRALS["gpu"],
        source="flops",
    )
    assert est.promotion_s == pytest.approx(0.2601)
    assert est.latency_s == pytest.approx(plain.latency_s + 0.2601)
    busy = [link.rtt_s + link.airtime_s(n) for n in (1000, 2000, 3000)]
    assert est.radio_state_j == pytest.approx(sum(link.state_energy_j(b) for b in busy))
    assert est.radio_energy_j == pytest.approx(
        est.radio_tx_j + est.radio_listen_j + est.radio_state_j
    )
    assert est.energy_j == pytest.approx(plain.energy_j + est.radio_state_j)


def test_measuring_helpers() -> None:
    layer = nn.Linear(64, 32)
    x = torch.zeros(1, 64)
    assert count_flops(lambda: layer(x)) == 2 * 64 * 32
    threads = torch.get_num_threads()
    assert time_call(lambda: layer(x), warmup=1, repeats=3, threads=1) > 0
    assert torch.get_num_threads() == threads
    assert host_reference_flops() > 1e8
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)


@pytest.fixture(scope="module")
def records() -> tuple[torch.Tensor, np.ndarray]:
    """Two samples: normalised ``[2, 5, T, 70]`` and raw amplitudes (smooth, so zlib bites)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 20, T)
    raw = torch.sin(t)[None, None, :, None] * torch.rand(2, 5, 1, 70, generator=gen)
    return (raw / 2).float(), raw.numpy().astype(np.float32)


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_distributed_payloads_are_codec_bytes_and_decode_exactly(name: str, records) -> None:
    seismic = records[0][:1]
    model = zoo_model(name)
    payloads = pl.encode_payloads(model, seismic, first_sample_id=7)
    assert len(payloads) == model.num_devices and all(len(p) == 1 for p in payloads)
    for k, (data,) in enumerate(payloads):
        assert len(data) == payload_size(model.latent_shape(k), model.codec_bits)
        header, _ = unpack_payload(data)
        assert (header["device_id"], header["sample_id"]) == (k, 7)
    assert pl.payload_sizes(payloads).max() == model.payload_bytes()
    assert pl.roundtrip_error(model, seismic) == 0.0
    # the bytes carry device ids: swapping devices is caught
    with pytest.raises(ValueError, match="arrived in slot 0"):
        pl.decode_payloads(model, [payloads[1], payloads[0], *payloads[2:]])


def test_corrupted_payload_is_rejected(records) -> None:
    model = zoo_model("epic")
    payloads = pl.encode_payloads(model, records[0][:1])
    broken = bytearray(payloads[0][0])
    broken[30] ^= 0xFF
    with pytest.raises(PayloadError, match="checksum"):
        pl.decode_payloads(model, [[bytes(broken)], *payloads[1:]])


def test_float16_raw_payloads_halve_the_bytes_and_round_trip(records) -> None:
    _, raw = records
    receivers = pl.model_receivers(zoo_model("inversionnet"))
    half = pl.raw_payloads(raw, receivers, "float16")
    assert [len(p[0]) for p in half] == [
        pl.raw_payload_bytes(T, len(i), "float16") for i in receivers
    ]
    assert (
        pl.raw_payload_bytes(T, 14, "float16") * 2 == pl.raw_payload_bytes(T, 14) == 4 * 5 * T * 14
    )
    back = pl.records_from_payloads(
        pl.compress_payloads(half), T, compressed=True, precision="float16"
    )
    assert back.dtype == np.float32 and np.allclose(back, raw, atol=1e-3)
    assert [pl.raw_format_name(p, z) for p, z in pl.RAW_FORMATS] == [
        "f32",
        "f16",
        "f32-zlib",
        "f16-zlib",
    ]
    with pytest.raises(ValueError, match="float64"):
        pl.raw_payloads(raw, receivers, "float64")


def test_raw_payloads_are_the_float32_records(records) -> None:
    _, raw = records
    receivers = pl.model_receivers(zoo_model("inversionnet"))
    payloads = pl.raw_payloads(raw, receivers)
    assert [len(p[0]) for p in payloads] == [pl.raw_payload_bytes(T, len(i)) for i in receivers]
    back = np.frombuffer(payloads[2][1], dtype="<f4").reshape(5, T, -1)
    assert np.array_equal(back, raw[1][..., receivers[2]])
    assert np.array_equal(pl.records_from_payloads(payloads, T), raw)
    packed = pl.compress_payloads(payloads)
    assert zlib.decompress(packed[2][1]) == payloads[2][1]
    assert np.array_equal(pl.records_from_payloads(packed, T, compressed=True), raw)
    assert pl.payload_sizes(packed).sum() < pl.payload_sizes(payloads).sum()
    with pytest.raises(ValueError, match="sources"):
        pl.raw_payloads(raw[:, :3], receivers)


def test_measure_cost_of_a_distributed_and_a_centralised_model(records) -> None:
    seismic, raw = records
    epic = zoo_model("epic")
    c = measure_cost(epic, seismic[:1], raw[:1], repeats=1, warmup=0)
    assert c.distributed and c.name == "epic" and c.host_flops > 1e8
    assert c.payload_bytes == (epic.payload_bytes(),) * epic.num_devices
    assert all(f > 0 for f in c.device_flops) and c.central_flops > 0
    assert 0 < c.encoder_params < c.params
    inv = zoo_model("inversionnet")
    base = measure_cost(inv, seismic[:1], raw[:1], repeats=1, warmup=0)
    zipped = measure_cost(inv, seismic[:1], raw[:1], compress=True, repeats=1, warmup=0)
    assert not base.distributed and base.device_flops == (0,) * 5
    assert sum(base.payload_bytes) == 5 * T * 70 * 4
    assert zipped.name == "inversionnet+f32-zlib" and sum(zipped.payload_bytes) < sum(
        base.payload_bytes
    )
    assert base.central_flops > 0 and base.encoder_params == 0
    with pytest.raises(ValueError, match="one sample"):
        measure_cost(epic, seismic, raw)


def test_interleaved_costs_of_several_models_share_one_probe(records) -> None:
    seismic, raw = records
    entries = [(n, zoo_model(n), seismic[:1], raw[:1]) for n in ("epic", "inversionnet")]
    costs = measure_costs(entries, repeats=2, warmup=0)
    (epic,) = costs["epic"]
    formats = [c.raw_format for c in costs["inversionnet"]]
    assert formats == ["f32", "f16", "f32-zlib", "f16-zlib"]
    assert len({c.host_flops for cs in costs.values() for c in cs}) == 1
    assert all(c.timing_spread >= 0 for cs in costs.values() for c in cs)
    f32, f16 = costs["inversionnet"][:2]
    assert sum(f16.payload_bytes) * 2 == sum(f32.payload_bytes)
    assert f16.central_host_s == f32.central_host_s  # one forward timing, shared
    # codec work: a device reads its float32 records (14 receivers) and zlibs the cast bytes;
    # the centre restores and reads every device's cast bytes
    f16_zlib = costs["inversionnet"][3]
    assert f32.device_codec_work == CodecWork(copy_bytes=4 * 5 * T * 14)
    assert f16_zlib.device_codec_work == CodecWork(4 * 5 * T * 14, deflate_bytes=2 * 5 * T * 14)
    assert f16_zlib.central_codec_work == CodecWork(2 * 5 * T * 70, inflate_bytes=2 * 5 * T * 70)
    assert epic.central_codec_work.copy_bytes == sum(epic.payload_bytes)
    assert epic.device_codec_work.deflate_bytes == 0 < epic.device_codec_work.copy_bytes
    assert ModelCost.from_dict(json.loads(json.dumps(f16_zlib.as_dict()))) == f16_zlib
    with pytest.raises(ValueError, match="duplicate"):
        measure_costs(entries + entries[:1], repeats=1, warmup=0)


def test_flop_based_estimates_are_the_same_on_every_run(records) -> None:
    """Nothing timed enters the FLOP-based figures: two timings give identical estimates."""
    seismic, raw = records
    entries = [(n, zoo_model(n), seismic[:1], raw[:1]) for n in ("epic", "inversionnet")]
    first, second = (measure_costs(entries, repeats=1, warmup=0) for _ in range(2))
    hardware = (LINKS["wifi-ac"], DEVICES["rpi4"], CENTRALS["server-cpu"])
    for key in first:
        for a, b in zip(first[key], second[key], strict=True):
            assert simulate(a, *hardware, source="flops") == simulate(b, *hardware, source="flops")


def test_flops_are_counted_with_attention_unfused() -> None:
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True).eval()
    x = torch.randn(1, 10, 32)
    with torch.inference_mode(), FlopCounterMode(display=False) as fused:
        layer(x)  # the fast path: invisible to the counter
    counted = count_flops(lambda: layer(x))
    # q/k/v/out projections 4 x (10 x 32 x 32), scores and mixing 2 x (10 x 10 x 32),
    # feed-forward 2 x (10 x 32 x 64); 2 FLOP per multiply-add
    assert counted == 2 * (4 * 10 * 32 * 32 + 2 * 10 * 10 * 32 + 2 * 10 * 32 * 64)
    assert fused.get_total_flops() < counted


def test_interleaved_timing_rotates_and_runs_the_probe_before_every_call() -> None:
    order: list[str] = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = time_interleaved(calls, lambda: order.append("p"), warmup=1, repeats=2)
    assert order == ["p", "a", "b"] + ["p", "a", "p", "b"] + ["p", "b", "p", "a"]
    assert all(len(v) == 2 for v in (*timings.calls.values(), *timings.probes.values()))
    with pytest.raises(ValueError, match="repeats"):
        time_interleaved(calls, lambda: None, repeats=0)


def test_times_relative_to_the_probe_cancel_a_load_change() -> None:
    steady = Timings({"a": [3.0, 6.0, 3.0, 6.0]}, {"a": [1.0, 2.0, 1.0, 2.0]})
    assert probe_relative(steady, "a") == Relative(3.0, 0.0)  # the host halved its speed twice
    noisy = Timings({"a": [2.0, 2.0, 9.0, 2.0, 2.0]}, {"a": [1.0, 1.0, 1.0, 1.0, 1.0]})
    rel = probe_relative(noisy, "a")
    assert rel.median == 2.0 and rel.spread == 0.0  # one disturbed round moves neither
    assert noisy.probe_seconds() == 1.0


def test_timings_are_the_threads_cpu_time() -> None:
    import time

    def sleep() -> None:  # waiting (as when another process holds the core) costs no CPU time
        time.sleep(0.05)

    timings = time_interleaved({"sleep": sleep}, lambda: None, warmup=0, repeats=2)
    assert max(timings.calls["sleep"]) < 0.04
    with pinned(default_cpu()):
        assert torch.get_num_threads() == 1


pytestmark = pytest.mark.usefixtures("one_thread")
