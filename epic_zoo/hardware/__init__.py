"""The hardware teacher: what the devices, links and centre afford, in bytes, seconds and joules.

- :mod:`~epic_zoo.hardware.profiles`: end devices (Raspberry Pi 4/5), central
  nodes (server CPU, GPU) and links (Wi-Fi 802.11n/ac, 4G/LTE, NB-IoT) as
  validated dataclasses with cited constants (LTE with RRC promotion and tail).
- :mod:`~epic_zoo.hardware.payload`: the bytes each device sends per sample,
  from the models' link codec (distributed) or raw records (centralised:
  float32 / float16, plain or zlib); ``is_distributed``.
- :mod:`~epic_zoo.hardware.timing`: interleaved, pinned timings and FLOP counts.
- :mod:`~epic_zoo.hardware.profiles_file`: extra profiles from a YAML file.
- :mod:`~epic_zoo.hardware.simulator`: latency and energy per sample with a
  per-component breakdown, from measured and FLOP-count compute times.
- :mod:`~epic_zoo.hardware.shaping`: a token-bucket sender that replays a link
  profile over loopback TCP. It checks that the shaper and the simulator's
  transfer arithmetic agree (packetisation, shared medium); it cannot check
  the radio model itself (the bucket is charged the simulator's own
  per-packet costs).

``python -m epic_zoo.bench`` puts these next to the models' fidelity.

The package imports only the profile tables (no torch); import the payload,
timing and simulator functions from their modules.
"""

from __future__ import annotations

from epic_zoo.hardware.profiles import (
    CENTRALS,
    DEVICES,
    LINKS,
    ComputeProfile,
    LinkProfile,
    get_central,
    get_device,
    get_link,
)

__all__ = [
    "CENTRALS",
    "DEVICES",
    "LINKS",
    "ComputeProfile",
    "LinkProfile",
    "get_central",
    "get_device",
    "get_link",
]
