"""Hardware profiles: validation, lookup and the packetisation arithmetic."""

from __future__ import annotations

import dataclasses
import math

import pytest

from epic_zoo.hardware.profiles import (
    CENTRALS,
    DEVICES,
    LINKS,
    CodecWork,
    ComputeProfile,
    LinkProfile,
    get_central,
    get_device,
    get_link,
    profile_table,
)


def toy_link(**overrides) -> LinkProfile:
    """8 Mbit/s, 1000 B MTU, 40 + 10 B headers, 0.1 ms per access."""
    fields = dict(
        name="toy",
        description="toy link",
        bandwidth_bps=8e6,
        rtt_s=0.01,
        mtu_bytes=1000,
        transport_header_bytes=40,
        link_header_bytes=10,
        per_packet_s=1e-4,
        aggregation=1,
        shared_medium=True,
        tx_power_w=1.0,
        listen_power_w=0.5,
    )
    fields.update(overrides)
    return LinkProfile(**fields)


def test_builtin_profiles_are_registered_by_name() -> None:
    assert {"wifi-ac", "wifi-n-ampdu", "wifi-n", "4g-sporadic", "4g-streaming", "nbiot"} <= set(
        LINKS
    )
    assert {"rpi4", "rpi5"} <= set(DEVICES)
    assert {"server-cpu", "gpu"} <= set(CENTRALS)
    for table in (LINKS, DEVICES, CENTRALS):
        for name, profile in table.items():
            assert profile.name == name
    # older names are aliases: the Pi's own radio, sporadic LTE
    assert get_link(" WiFi ") is LINKS["wifi-ac"] and get_link("4g") is LINKS["4g-sporadic"]
    assert get_device(DEVICES["rpi5"]) is DEVICES["rpi5"]
    kinds = {row["kind"] for row in profile_table()}
    assert kinds == {"device", "central", "link"}
    assert len(profile_table()) == len(LINKS) + len(DEVICES) + len(CENTRALS)


@pytest.mark.parametrize(
    ("getter", "name", "listed"),
    [(get_link, "5g", "wifi"), (get_device, "jetson", "rpi4"), (get_central, "tpu", "server-cpu")],
)
def test_unknown_name_lists_the_valid_ones(getter, name: str, listed: str) -> None:
    with pytest.raises(KeyError, match=listed):
        getter(name)


@pytest.mark.parametrize("field", ["bandwidth_bps", "mtu_bytes", "aggregation", "tx_power_w"])
@pytest.mark.parametrize("value", [0, -1])
def test_link_rejects_non_positive_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{field}={value}.*> 0"):
        dataclasses.replace(LINKS["wifi-n"], **{field: value})


@pytest.mark.parametrize("field", ["rtt_s", "per_packet_s", "link_header_bytes", "listen_power_w"])
def test_link_rejects_negative_values_but_allows_zero(field: str) -> None:
    assert getattr(dataclasses.replace(LINKS["4g-sporadic"], **{field: 0}), field) == 0
    with pytest.raises(ValueError, match=rf"'4g-sporadic': {field}=-1"):
        dataclasses.replace(LINKS["4g-sporadic"], **{field: -1})


def test_link_rejects_nan_and_headers_filling_the_mtu() -> None:
    with pytest.raises(ValueError, match="bandwidth_bps=nan"):
        toy_link(bandwidth_bps=math.nan)
    with pytest.raises(ValueError, match="no room for data"):
        toy_link(transport_header_bytes=1000)


@pytest.mark.parametrize(
    "field", ["effective_flops", "active_power_w", "deflate_bytes_per_s", "copy_bytes_per_s"]
)
def test_compute_profile_rejects_non_positive_values(field: str) -> None:
    with pytest.raises(ValueError, match=rf"ComputeProfile 'rpi4': {field}=0"):
        dataclasses.replace(DEVICES["rpi4"], **{field: 0.0})
    with pytest.raises(ValueError, match="call_overhead_s=-0.001"):
        dataclasses.replace(CENTRALS["gpu"], call_overhead_s=-1e-3)


def test_packetisation_by_hand() -> None:
    link = toy_link()
    assert link.mss_bytes == 960
    assert link.packets(960) == 1
    assert link.packets(2000) == 3
    assert link.wire_bytes(2000) == 2000 + 3 * 50
    # 2150 B at 1 MB/s = 2.15 ms, plus 3 accesses of 0.1 ms
    assert link.airtime_s(2000) == pytest.approx(2.15e-3 + 3e-4, rel=1e-12)
    aggregated = toy_link(aggregation=2)
    assert aggregated.airtime_s(2000) == pytest.approx(2.15e-3 + 2e-4, rel=1e-12)
    with pytest.raises(ValueError, match="payload_bytes=0"):
        link.packets(0)


def test_compute_profile_flop_time() -> None:
    gpu = dataclasses.replace(CENTRALS["gpu"], effective_flops=1e12, call_overhead_s=1e-3)
    assert gpu.flops_seconds(2e9) == pytest.approx(3e-3)
    assert gpu.flops_seconds(0) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="flops"):
        gpu.flops_seconds(-1)


def test_compute_profile_codec_time() -> None:
    cpu = dataclasses.replace(
        CENTRALS["server-cpu"],
        copy_bytes_per_s=1e9,
        deflate_bytes_per_s=1e7,
        inflate_bytes_per_s=1e8,
    )
    work = CodecWork(copy_bytes=2_000_000, deflate_bytes=50_000, inflate_bytes=300_000)
    assert cpu.codec_seconds(work) == pytest.approx(2e-3 + 5e-3 + 3e-3)
    assert cpu.codec_seconds(CodecWork()) == 0.0
    # a Pi core is slower than a server core at every codec step
    pi = DEVICES["rpi4"]
    assert pi.codec_seconds(work) > CENTRALS["server-cpu"].codec_seconds(work)


def test_wifi_goodput_is_that_of_a_single_stream_2_4_ghz_link() -> None:
    # 802.11n MCS7 (65 Mbit/s PHY) without aggregation delivers ~30 Mbit/s of TCP payload
    payload = 1_000_000
    goodput = 8 * payload / LINKS["wifi-n"].airtime_s(payload)
    assert 25e6 < goodput < 40e6
    # A-MPDU on 802.11ac gets much closer to its PHY rate
    ac = 8 * payload / LINKS["wifi-ac"].airtime_s(payload)
    assert 150e6 < ac < LINKS["wifi-ac"].bandwidth_bps
    # and aggregation helps 802.11n too: one access per 16 MPDUs
    ampdu = 8 * payload / LINKS["wifi-n-ampdu"].airtime_s(payload)
    assert goodput * 1.5 < ampdu < LINKS["wifi-n-ampdu"].bandwidth_bps


def test_lte_radio_state_machine_from_huang_et_al_2012() -> None:
    sporadic, streaming = LINKS["4g-sporadic"], LINKS["4g-streaming"]
    # table 3 of Huang et al. 2012: promotion 260.1 ms at 1210.7 mW, tail 11576 ms at 1060 mW
    assert sporadic.promotion_delay_s(0.1) == pytest.approx(0.2601)
    assert sporadic.state_energy_j(0.1) == pytest.approx(0.2601 * 1.2107 + 11.576 * 1.060)
    # streaming at 1 inference/s: no promotion; the tail lasts the gap to the next inference
    assert streaming.inference_interval_s == 1.0 and streaming.promotion_delay_s(0.1) == 0.0
    assert streaming.state_energy_j(0.1) == pytest.approx(0.9 * 1.060)
    # the radio idles once the gap after the busy time exceeds the tail; Wi-Fi has no state cost
    slow = dataclasses.replace(streaming, inference_interval_s=11.8)
    assert not slow.stays_connected(0.1) and slow.stays_connected(0.5)
    assert LINKS["wifi-ac"].state_energy_j(0.1) == 0.0
    with pytest.raises(ValueError, match="inference_interval_s"):
        dataclasses.replace(streaming, inference_interval_s=0.0)
    with pytest.raises(ValueError, match="tail_s"):
        dataclasses.replace(streaming, tail_s=-1.0)


def test_cited_power_models() -> None:
    # Huang et al. 2012: P = 438.39 mW/(Mbit/s) * 6 Mbit/s + 1288.04 mW
    assert LINKS["4g-sporadic"].tx_power_w == pytest.approx(3.918, abs=1e-3)
    assert LINKS["4g-streaming"].tx_power_w == LINKS["4g-sporadic"].tx_power_w
    # ATWILC3000 at 3.3 V: (229 + 23.9) mA transmit, (60.5 + 23.6) mA receive
    assert LINKS["wifi-n"].tx_power_w == pytest.approx(0.8346, abs=1e-4)
    assert LINKS["wifi-n"].listen_power_w == pytest.approx(0.2775, abs=1e-4)
    assert DEVICES["rpi5"].effective_flops > DEVICES["rpi4"].effective_flops
    assert isinstance(DEVICES["rpi4"], ComputeProfile)
