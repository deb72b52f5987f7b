"""Device, central-node and link profiles: the hardware teacher's numbers, as data.

Every constant carries its public source in a comment. Where no public number
fits the case exactly (radio round-trip times, the fraction of peak a server
reaches on batch-1 layers), the value is marked *assumption* with its
reasoning; change it with :func:`dataclasses.replace`, which re-validates.

Units: FLOP/s counts one multiply-add as 2 FLOP (as :mod:`torch.utils.flop_counter`
does); bandwidths in bit/s; sizes in bytes; times in s; power in W.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


def _check_values(obj: object, positive: tuple[str, ...], non_negative: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the first field that is not finite/positive as required."""
    for name in positive + non_negative:
        value = getattr(obj, name)
        strict = name in positive
        bad = not isinstance(value, int | float) or not math.isfinite(value)
        bad = bad or (value <= 0 if strict else value < 0)
        if bad:
            need = "a finite number > 0" if strict else "a finite number >= 0"
            raise ValueError(
                f"{type(obj).__name__} {getattr(obj, 'name', '?')!r}: {name}={value!r} must be {need}; "
                "fix the profile (dataclasses.replace(profile, ...)) or pick another one"
            )


# Byte rates of the codec work (no FLOPs) on one core. Anchor: lzbench 1.8 README
# (inikep/lzbench, one core of an Intel Core i7-8700K, silesia.tar): zlib 1.2.11 -6
# compresses 35 MB/s and decompresses 407 MB/s; memcpy 10362 MB/s. Assumption: one
# server core (Xeon Gold 6248, up to 3.9 GHz) runs them as fast.
_DEFLATE_BPS, _INFLATE_BPS, _COPY_BPS = 35e6, 407e6, 10.362e9
# Assumption: one Cortex-A72 core of a Raspberry Pi 4 (1.5 GHz, 3-wide) runs this
# integer/memory code 5x slower than one i7-8700K core (up to 4.7 GHz: 3.1x the
# clock, and a wider core). No public zlib figure for the Pi 4 was found.
_RPI4_BYTE_SLOWDOWN = 5.0


@dataclass(frozen=True)
class CodecWork:
    """Bytes one side's payload codec handles for one sample: the work that has no FLOPs.

    Attributes:
        copy_bytes: bytes read while slicing, casting (float32 -> float16),
            quantising, packing or parsing.
        deflate_bytes: bytes zlib compresses (its input).
        inflate_bytes: bytes zlib restores (its output).
    """

    copy_bytes: int = 0
    deflate_bytes: int = 0
    inflate_bytes: int = 0


@dataclass(frozen=True)
class ComputeProfile:
    """A processor running the network at batch 1.

    Attributes:
        name: registry key, e.g. ``"rpi4"``.
        description: one line for tables.
        effective_flops: sustained FLOP/s on small conv / attention layers at
            batch 1 (not the peak), used by the FLOP-count latency estimate and
            to scale timings measured on this machine.
        active_power_w: whole-board power while computing, W (compute energy =
            ``active_power_w * compute time``).
        call_overhead_s: fixed time per inference that FLOPs do not explain
            (kernel launches, host-device copies), s.
        copy_bytes_per_s, deflate_bytes_per_s, inflate_bytes_per_s: one
            core's rates for the payload codec's work (:class:`CodecWork`),
            bytes/s; the FLOP-count estimate charges codec work at these
            rates (defaults: a server core, see the constants' sources).
    """

    name: str
    description: str
    effective_flops: float
    active_power_w: float
    call_overhead_s: float = 0.0
    copy_bytes_per_s: float = _COPY_BPS
    deflate_bytes_per_s: float = _DEFLATE_BPS
    inflate_bytes_per_s: float = _INFLATE_BPS

    def __post_init__(self) -> None:
        _check_values(
            self,
            (
                "effective_flops",
                "active_power_w",
                "copy_bytes_per_s",
                "deflate_bytes_per_s",
                "inflate_bytes_per_s",
            ),
            ("call_overhead_s",),
        )

    def flops_seconds(self, flops: float) -> float:
        """Time to run ``flops`` FLOP (>= 0) on this processor, s."""
        if flops < 0:
            raise ValueError(f"flops={flops} must be >= 0")
        return self.call_overhead_s + flops / self.effective_flops

    def codec_seconds(self, work: CodecWork) -> float:
        """Time of the codec work ``work`` on one core of this processor, s."""
        return (
            work.copy_bytes / self.copy_bytes_per_s
            + work.deflate_bytes / self.deflate_bytes_per_s
            + work.inflate_bytes / self.inflate_bytes_per_s
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LinkProfile:
    """The uplink from an end device to the central node.

    A payload of ``n`` bytes is cut into packets of at most :attr:`mss_bytes`
    application bytes; each packet carries ``transport_header_bytes`` inside
    the MTU and ``link_header_bytes`` of framing outside it. Every
    ``aggregation`` packets share one channel access costing ``per_packet_s``
    (contention, preamble, acknowledgement). See :meth:`airtime_s`.

    Attributes:
        name, description: registry key and one line for tables.
        bandwidth_bps: bit rate one transmitter gets for its frames, bit/s.
        rtt_s: round-trip time device <-> centre (propagation, scheduling), s.
        mtu_bytes: largest network-layer packet, bytes.
        transport_header_bytes: IP + TCP/UDP header per packet (inside the MTU), bytes.
        link_header_bytes: link-layer framing per packet (outside the MTU), bytes.
        per_packet_s: channel-access time per access (not per byte), s.
        aggregation: packets sent per channel access (A-MPDU size; 1 = none).
        shared_medium: ``True`` if the devices take turns on one channel (Wi-Fi
            to one access point); ``False`` if each has its own scheduled link.
        tx_power_w: radio power while transmitting, W.
        listen_power_w: radio power while on but not transmitting (waiting for
            the medium or the final acknowledgement), W.
        promotion_s: radio state promotion before the first byte when the
            radio was idle (LTE RRC_IDLE -> RRC_CONNECTED), s; 0 for none.
        promotion_power_w: radio power during the promotion, W.
        tail_s: time the radio stays in a high-power state after its last
            byte before it drops to idle (LTE RRC inactivity tail), s.
        tail_power_w: radio power during the tail, W.
        inference_interval_s: time between consecutive inferences, s
            (``math.inf``: sporadic, every inference finds the radio idle).
            When the next inference starts within the tail, the radio never
            idles: no promotion, and the tail energy is that of the gap.
    """

    name: str
    description: str
    bandwidth_bps: float
    rtt_s: float
    mtu_bytes: int
    transport_header_bytes: int
    link_header_bytes: int
    per_packet_s: float
    aggregation: int
    shared_medium: bool
    tx_power_w: float
    listen_power_w: float
    promotion_s: float = 0.0
    promotion_power_w: float = 0.0
    tail_s: float = 0.0
    tail_power_w: float = 0.0
    inference_interval_s: float = math.inf

    def __post_init__(self) -> None:
        _check_values(
            self,
            ("bandwidth_bps", "mtu_bytes", "aggregation", "tx_power_w"),
            (
                "rtt_s",
                "transport_header_bytes",
                "link_header_bytes",
                "per_packet_s",
                "listen_power_w",
                "promotion_s",
                "promotion_power_w",
                "tail_s",
                "tail_power_w",
            ),
        )
        interval = self.inference_interval_s
        if not isinstance(interval, int | float) or math.isnan(interval) or interval <= 0:
            raise ValueError(
                f"LinkProfile {self.name!r}: inference_interval_s={interval!r} must be > 0 "
                "(math.inf for sporadic inferences)"
            )
        if self.transport_header_bytes >= self.mtu_bytes:
            raise ValueError(
                f"LinkProfile {self.name!r}: transport_header_bytes={self.transport_header_bytes} "
                f"leaves no room for data in mtu_bytes={self.mtu_bytes}; use a larger MTU"
            )

    @property
    def mss_bytes(self) -> int:
        """Application bytes per packet."""
        return int(self.mtu_bytes - self.transport_header_bytes)

    def packets(self, payload_bytes: int) -> int:
        """Packets needed for ``payload_bytes`` (> 0) application bytes."""
        if payload_bytes <= 0:
            raise ValueError(f"payload_bytes={payload_bytes} must be > 0")
        return math.ceil(payload_bytes / self.mss_bytes)

    def wire_bytes(self, payload_bytes: int) -> int:
        """Bytes on the air for one payload: data plus every packet's headers."""
        per_packet = self.transport_header_bytes + self.link_header_bytes
        return int(payload_bytes + self.packets(payload_bytes) * per_packet)

    def airtime_s(self, payload_bytes: int) -> float:
        """Time the channel is busy sending one payload, s (no propagation delay)."""
        accesses = math.ceil(self.packets(payload_bytes) / self.aggregation)
        return (
            self.wire_bytes(payload_bytes) * 8.0 / self.bandwidth_bps + accesses * self.per_packet_s
        )

    def stays_connected(self, busy_s: float) -> bool:
        """``True`` if the next inference starts before the tail of this one ends
        (``busy_s``: time from the radio's first to its last activity, s)."""
        return self.inference_interval_s - busy_s < self.tail_s

    def promotion_delay_s(self, busy_s: float) -> float:
        """State promotion paid before sending, s (0 while the radio stays connected)."""
        return 0.0 if self.stays_connected(busy_s) else self.promotion_s

    def state_energy_j(self, busy_s: float) -> float:
        """Promotion plus tail energy of one radio for one inference, J.

        Sporadic: the full promotion and the full tail. Streaming (the next
        inference starts within the tail): no promotion, and the tail lasts
        the gap to the next inference, ``inference_interval_s - busy_s``.
        """
        if self.stays_connected(busy_s):
            return self.tail_power_w * max(0.0, self.inference_interval_s - busy_s)
        return self.promotion_power_w * self.promotion_s + self.tail_power_w * self.tail_s

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- end devices
# Effective FLOP/s of a Raspberry Pi 4 on small convs, from the PyTorch tutorial
# "Real Time Inference on Raspberry Pi 4 and 5" (pytorch/tutorials,
# intermediate_source/realtime_rpi.rst), fp32 model times at 4 threads:
# shufflenet_v2_x1_0 37.7 ms, x1_5 56.3 ms, x2_0 82.7 ms; with torchvision's
# multiply-add counts 0.14 / 0.30 / 0.58 G (torchvision model docs) that is
# 7.4 / 10.7 / 14.0 GFLOP/s (resnet18's large convs reach 36 GFLOP/s: 1.81 G MAC
# in 100.3 ms). Small convs: the middle, 10 GFLOP/s.
_RPI4_FLOPS = 10.0e9
# Raspberry Pi 5 / Pi 4 speed: HPL 30.249 vs 11.889 Gflops (geerlingguy/top500-benchmark
# README results table), ratio 2.54.
_RPI5_OVER_RPI4 = 30.249 / 11.889

DEVICES: dict[str, ComputeProfile] = {
    p.name: p
    for p in (
        ComputeProfile(
            "rpi4",
            "Raspberry Pi 4 B (4x Cortex-A72), PyTorch fp32, 4 threads",
            effective_flops=_RPI4_FLOPS,
            # Pi Dramble power benchmarks (pidramble.com/wiki/benchmarks/power-consumption):
            # Pi 4 B under `stress --cpu 4`: 1280 mA at 5 V = 6.4 W.
            active_power_w=6.4,
            copy_bytes_per_s=_COPY_BPS / _RPI4_BYTE_SLOWDOWN,
            deflate_bytes_per_s=_DEFLATE_BPS / _RPI4_BYTE_SLOWDOWN,
            inflate_bytes_per_s=_INFLATE_BPS / _RPI4_BYTE_SLOWDOWN,
        ),
        ComputeProfile(
            "rpi5",
            "Raspberry Pi 5 (4x Cortex-A76), PyTorch fp32, 4 threads",
            effective_flops=_RPI4_FLOPS * _RPI5_OVER_RPI4,
            # geerlingguy/top500-benchmark README: Raspberry Pi 5 at 11 W during HPL.
            active_power_w=11.0,
            # assumption: the Pi 5's HPL ratio holds for the codec work too
            copy_bytes_per_s=_COPY_BPS / _RPI4_BYTE_SLOWDOWN * _RPI5_OVER_RPI4,
            deflate_bytes_per_s=_DEFLATE_BPS / _RPI4_BYTE_SLOWDOWN * _RPI5_OVER_RPI4,
            inflate_bytes_per_s=_INFLATE_BPS / _RPI4_BYTE_SLOWDOWN * _RPI5_OVER_RPI4,
        ),
    )
}

# --------------------------------------------------------------------------- central nodes
CENTRALS: dict[str, ComputeProfile] = {
    p.name: p
    for p in (
        ComputeProfile(
            "server-cpu",
            "one Intel Xeon Gold 6248 (20 cores, AVX-512), batch 1",
            # Intel ARK: 20 cores, 2.5 GHz base, 2 AVX-512 FMA units -> peak
            # 20 * 2.5e9 * 2 FMA * 16 lanes * 2 = 3.2 TFLOP/s fp32. Assumption: batch-1
            # layers of a few MFLOP reach ~10 % of peak.
            effective_flops=0.10 * 3.2e12,
            # Intel ARK: TDP 150 W.
            active_power_w=150.0,
        ),
        ComputeProfile(
            "gpu",
            "one NVIDIA H100 SXM 80 GB, fp32, batch 1",
            # Measured for this project (H100 80GB HBM3, torch 2.11+cu130, batch 1, fp32,
            # median of 50 after 10 warm-ups): EPIC's decoder (0.28 GFLOP) 2.2 ms,
            # InversionNet 2.6 ms at T=250 (1.8 GFLOP) and 3.3 ms at T=1000 (4.2 GFLOP).
            # Batch-1 calls are launch-bound: ~2 ms fixed, then
            # ((4.19 - 1.82) GFLOP / (3.3 - 2.6) ms = 3.4 TFLOP/s), 5 % of the 67 TFLOP/s fp32 peak
            # (NVIDIA H100 datasheet).
            effective_flops=3.4e12,
            # NVIDIA H100 datasheet: max TDP 700 W (SXM); an upper bound at batch 1.
            active_power_w=700.0,
            call_overhead_s=2.0e-3,
        ),
    )
}

# --------------------------------------------------------------------------- links
# Header sizes shared by the TCP/IP links: IPv4 20 B (RFC 791) + TCP 20 B (RFC 9293)
# + 12 B timestamp option (RFC 7323), as Linux sends by default.
_TCP_IP = 20 + 20 + 12
# 802.11 QoS data frame: MAC header 26 B + LLC/SNAP 8 B (RFC 1042) + FCS 4 B
# (IEEE 802.11-2016, 9.2.4).
_WIFI_FRAMING = 26 + 8 + 4


def _wifi_access_s(slot: float, sifs: float, preamble: float, ack: float) -> float:
    """Mean time of one DCF channel access: DIFS + mean backoff + preamble + SIFS + ACK, s.

    IEEE 802.11-2016 (10.3.2.3, 10.22.2): DIFS = SIFS + 2 slots; with CWmin = 15
    the mean backoff is 7.5 slots.
    """
    difs = sifs + 2 * slot
    return difs + 7.5 * slot + preamble + sifs + ack


# ATWILC3000 data sheet (Microchip, "Current Consumption in Various Device States",
# VBAT = VDDIO = 3.3 V): 802.11n MCS7 transmit 229 mA + 23.9 mA, receive
# 60.5 mA + 23.6 mA -> 0.83 W transmitting, 0.28 W listening. An IoT-class
# single-stream 802.11n radio, used for every Wi-Fi profile.
_WIFI_TX_W = (0.229 + 0.0239) * 3.3
_WIFI_LISTEN_W = (0.0605 + 0.0236) * 3.3
# Assumption: one-hop WLAN round trip of a few ms on a lightly loaded access point.
_WIFI_RTT_S = 3e-3

# 2.4 GHz OFDM (IEEE 802.11-2016 tables 17-21, 19-25): slot 9 us, SIFS 10 us;
# HT-mixed preamble 36 us; ACK = 20 us legacy preamble + 14 B at 24 Mbit/s
# (2 OFDM symbols, 8 us) + 6 us signal extension = 34 us; Block Ack = 20 us + 32 B
# at 24 Mbit/s (3 symbols, 12 us) + 6 us = 38 us.
_WIFI_N_ACK_S = _wifi_access_s(slot=9e-6, sifs=10e-6, preamble=36e-6, ack=34e-6)
_WIFI_N_BLOCK_ACK_S = _wifi_access_s(slot=9e-6, sifs=10e-6, preamble=36e-6, ack=38e-6)
# IEEE 802.11n-2009 HT MCS table: MCS7, 20 MHz, 800 ns guard interval, 1 stream = 65 Mbit/s.
_WIFI_N_BPS = 65e6
# + 4 B A-MPDU delimiter per MPDU (IEEE 802.11-2016, 10.13.1).
_AMPDU_DELIMITER = 4
# Assumption: 16 MPDUs per A-MPDU (802.11n/ac allow up to 64; short bursts from a
# small device rarely fill it).
_AMPDU_MPDUS = 16

# Huang et al., "A Close Examination of Performance and Power Characteristics of
# 4G LTE Networks", MobiSys 2012, table 3 (LTE power model): RRC promotion
# 260.1 ms at 1210.7 mW; RRC_CONNECTED tail 11576.0 ms at 1060.0 mW; uplink
# P = alpha_u * t_u + beta with alpha_u = 438.39 mW per Mbit/s, beta = 1288.04 mW.
# Median LTE uplink throughput in their measurements: 6 Mbit/s.
_LTE_BPS = 6e6
_LTE = {
    "bandwidth_bps": _LTE_BPS,
    # Assumption: 50 ms, within the tens of ms that commercial LTE shows (Huang et
    # al. 2012) and above the 3GPP TR 36.913 user-plane target (10 ms one-way).
    "rtt_s": 50e-3,
    "mtu_bytes": 1500,
    "transport_header_bytes": _TCP_IP,
    # PDCP 2 B (TS 36.323, 12-bit SN) + RLC 2 B (TS 36.322) + MAC subheader 2 B (TS 36.321).
    "link_header_bytes": 2 + 2 + 2,
    # Scheduled uplink: grants are counted in the RTT, no per-packet contention.
    "per_packet_s": 0.0,
    "aggregation": 1,
    "shared_medium": False,
    "tx_power_w": 438.39e-3 * _LTE_BPS / 1e6 + 1.28804,
    "listen_power_w": 1.28804,
    "promotion_s": 260.1e-3,
    "promotion_power_w": 1.2107,
    "tail_s": 11.576,
    "tail_power_w": 1.060,
}
# Inference rates of the two LTE variants. Sporadic: one inference per minute
# (beyond the 11.6 s tail: every inference promotes the radio and pays the whole
# tail). Streaming: one inference per second (the radio never leaves
# RRC_CONNECTED; each inference pays the tail power for the gap to the next).
SPORADIC_INTERVAL_S: float = 60.0
STREAMING_INTERVAL_S: float = 1.0

LINKS: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile(
            "wifi-ac",
            "Wi-Fi 802.11ac 5 GHz, 80 MHz, 1 stream (the Pi 4's CYW43455), A-MPDU, shared access point",
            # Infineon/Cypress CYW43455 data sheet (the Pi 4 radio): single-stream 802.11ac,
            # MCS9 at 80 MHz up to 433.3 Mbit/s.
            bandwidth_bps=433.3e6,
            rtt_s=_WIFI_RTT_S,
            mtu_bytes=1500,
            transport_header_bytes=_TCP_IP,
            link_header_bytes=_WIFI_FRAMING + _AMPDU_DELIMITER,
            # 5 GHz OFDM: slot 9 us, SIFS 16 us; VHT preamble 40 us (L-STF/L-LTF/L-SIG 20 +
            # VHT-SIG-A 8 + VHT-STF 4 + VHT-LTF 4 + VHT-SIG-B 4); Block Ack = 20 us preamble
            # + 32 B at 24 Mbit/s (3 symbols, 12 us) = 32 us.
            per_packet_s=_wifi_access_s(slot=9e-6, sifs=16e-6, preamble=40e-6, ack=32e-6),
            aggregation=_AMPDU_MPDUS,
            shared_medium=True,
            tx_power_w=_WIFI_TX_W,
            listen_power_w=_WIFI_LISTEN_W,
        ),
        LinkProfile(
            "wifi-n-ampdu",
            "Wi-Fi 802.11n 2.4 GHz, 20 MHz, 1 stream, A-MPDU aggregation, shared access point",
            bandwidth_bps=_WIFI_N_BPS,
            rtt_s=_WIFI_RTT_S,
            mtu_bytes=1500,
            transport_header_bytes=_TCP_IP,
            link_header_bytes=_WIFI_FRAMING + _AMPDU_DELIMITER,
            per_packet_s=_WIFI_N_BLOCK_ACK_S,
            aggregation=_AMPDU_MPDUS,
            shared_medium=True,
            tx_power_w=_WIFI_TX_W,
            listen_power_w=_WIFI_LISTEN_W,
        ),
        LinkProfile(
            "wifi-n",
            "Wi-Fi 802.11n 2.4 GHz, 20 MHz, 1 stream, no aggregation (one access per packet)",
            bandwidth_bps=_WIFI_N_BPS,
            rtt_s=_WIFI_RTT_S,
            mtu_bytes=1500,  # Ethernet/802.11 IP MTU (RFC 894 / RFC 1042).
            transport_header_bytes=_TCP_IP,
            link_header_bytes=_WIFI_FRAMING,
            per_packet_s=_WIFI_N_ACK_S,  # ~175 us per access, every packet pays one
            aggregation=1,
            shared_medium=True,
            tx_power_w=_WIFI_TX_W,
            listen_power_w=_WIFI_LISTEN_W,
        ),
        LinkProfile(
            "4g-sporadic",
            "4G/LTE uplink, one UE per device, RRC promotion + tail, one inference per minute",
            inference_interval_s=SPORADIC_INTERVAL_S,
            **_LTE,
        ),
        LinkProfile(
            "4g-streaming",
            "4G/LTE uplink, one UE per device, radio kept connected, one inference per second",
            inference_interval_s=STREAMING_INTERVAL_S,
            **_LTE,
        ),
        LinkProfile(
            "nbiot",
            "NB-IoT (LTE Cat-NB1) uplink, UDP/IP, one module per device (no RRC state model)",
            # 3GPP Release 13 Cat-NB1 (TS 36.306): uplink peak ~62.5 kbit/s (multi-tone).
            bandwidth_bps=62.5e3,
            # Assumption: 1.5 s; 3GPP TR 45.820 targets <= 10 s latency for NB-IoT
            # exception reports, field RTTs are of the order of a second or more.
            rtt_s=1.5,
            # Assumption: 1280 B, the IPv6 minimum MTU (RFC 8200) that NB-IoT
            # deployments commonly configure.
            mtu_bytes=1280,
            transport_header_bytes=20 + 8,  # IPv4 + UDP (RFC 768).
            link_header_bytes=2 + 2 + 2,  # PDCP + RLC + MAC as for LTE.
            per_packet_s=0.0,
            aggregation=1,
            shared_medium=False,
            # Cat-NB1 module data sheets (e.g. u-blox SARA-N2, Quectel BC95), 23 dBm power
            # class: ~220 mA transmitting, ~55 mA receiving at 3.6 V.
            tx_power_w=0.220 * 3.6,
            listen_power_w=0.055 * 3.6,
        ),
    )
}
LINK_ALIASES: dict[str, str] = {"wifi": "wifi-ac", "4g": "4g-sporadic"}
"""Older names, kept for scripts: ``wifi`` is the Pi's own radio, ``4g`` sporadic LTE."""


def _lookup(table: dict, name: str | object, kind: str) -> object:
    if not isinstance(name, str):
        return name
    key = name.strip().lower()
    if table is LINKS:
        key = LINK_ALIASES.get(key, key)
    if key not in table:
        raise KeyError(f"unknown {kind} profile {name!r}; choose one of: {', '.join(table)}")
    return table[key]


def get_link(name: str | LinkProfile) -> LinkProfile:
    """Link profile by name (a :class:`LinkProfile` passes through); ``KeyError`` lists the names."""
    return _lookup(LINKS, name, "link")  # type: ignore[return-value]


def get_device(name: str | ComputeProfile) -> ComputeProfile:
    """End-device profile by name; ``KeyError`` lists the names."""
    return _lookup(DEVICES, name, "device")  # type: ignore[return-value]


def get_central(name: str | ComputeProfile) -> ComputeProfile:
    """Central-node profile by name; ``KeyError`` lists the names."""
    return _lookup(CENTRALS, name, "central")  # type: ignore[return-value]


def profile_table() -> list[dict]:
    """Every profile as a flat dict (``kind`` + fields), for reports and W&B."""
    rows = []
    for kind, table in (("device", DEVICES), ("central", CENTRALS), ("link", LINKS)):
        for profile in table.values():
            row = {"kind": kind}
            row.update({f.name: getattr(profile, f.name) for f in fields(profile)})
            rows.append(row)
    return rows
