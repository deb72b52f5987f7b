"""Parameter and FLOP counts, for the models table and the hardware simulator.

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
matrix products and convolutions (``2 x`` multiply-accumulates) and ignores
element-wise ops (norms, activations, quantisation): a slight undercount that
is the same convention for every model. All counts are per sample (batch 1),
forward pass only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES
from epic_zoo.wire import is_distributed, link_bytes


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    params = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


@torch.no_grad()
def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Forward FLOPs of ``module(*inputs)`` in eval mode (training flag restored afterwards)."""
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(*inputs)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())


def model_summary(model: nn.Module) -> dict:
    """Sizes of one model for the models table (docs/models.md) and benchmarks.

    Keys: ``name``, ``params``, ``flops`` (whole forward pass per sample),
    ``time_samples``; for distributed models also ``encoder_params`` and
    ``encoder_flops`` (what one end device runs per sample, device 0),
    ``payload_bytes`` (per device per sample) and ``raw_bytes_per_device``
    (float32 records that device would otherwise send). Centralised models
    run nothing on the devices: ``encoder_flops = 0`` and their payload is the
    raw records.
    """
    time_samples = int(model.config["time_samples"])
    seismic = torch.zeros(1, NUM_SOURCES, time_samples, NUM_RECEIVERS)
    summary = {
        "name": model.config["name"],
        "params": count_parameters(model),
        "flops": count_flops(model, seismic),
        "time_samples": time_samples,
    }
    if is_distributed(model):
        n0 = model.num_receivers(0)
        seismic_0 = torch.zeros(1, NUM_SOURCES, time_samples, n0)
        encoder = model.encoder_module(0)
        summary.update(
            encoder_params=count_parameters(encoder),
            encoder_flops=count_flops(encoder, model.encoder_input(0, seismic_0)),
        )
    else:
        summary.update(encoder_params=0, encoder_flops=0)
    wire = link_bytes(model)  # epic_zoo.wire: the one home of the link arithmetic
    summary.update(
        payload_bytes=wire["payload_bytes_per_device"],
        raw_bytes_per_device=wire["raw_bytes_per_device"],
    )
    return summary
