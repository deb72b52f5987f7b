"""Input-free baselines: what a model scores without looking at the records.

Every fidelity number in epic_zoo stands next to these (docs/training.md,
"The fair protocol"): a model *learns* on a dataset when its test MAE is at most
:data:`epic_zoo.tables.LEARNS_RATIO` times the ``mean-map`` MAE on the same test data.

- ``mean-map``: the mean training velocity map (pixel by pixel), the best
  input-free prediction under an L2 loss and a strong one under L1 for
  layered media (velocity grows with depth on average).
- ``constant``: one velocity everywhere, the mean of all training maps.

Both are ``nn.Module`` s with the zoo's model contract (normalised seismic
``[B, 5, T, 70]`` in, normalised velocity ``[B, 1, 70, 70]`` out) and no
trainable parameters. :meth:`InputFreeBaseline.fit` computes the map from
training velocities; the map is a buffer (saved with the weights) and
``config["fitted_on"]`` records the data it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from epic_zoo.data.geometry import DEFAULT_NUM_DEVICES, NT, NUM_RECEIVERS, NUM_SOURCES, NX, NZ
from epic_zoo.models.hub_mixin import HubMixin
from epic_zoo.models.inversionnet import check_seismic
from epic_zoo.models.registry import register_model
from epic_zoo.tables import LEARNS_RATIO, learns  # the rule lives with the tables that print it

__all__ = ["LEARNS_RATIO", "ConstantVelocity", "InputFreeBaseline", "MeanMap", "learns"]


class InputFreeBaseline(nn.Module, HubMixin):
    """A fixed velocity map ``[1, 70, 70]`` (normalised) predicted for every record.

    Args:
        time_samples: ``T`` of the records it accepts (checked, then ignored).
        num_devices: accepted for a uniform model signature; ignored.
        fitted_on: provenance of the fitted map (dataset, profile, seed,
            samples); filled by :meth:`fit` callers such as the runner.
    """

    input_free: bool = True
    kind: str = ""

    def __init__(
        self,
        time_samples: int = NT,
        num_devices: int = DEFAULT_NUM_DEVICES,
        fitted_on: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.time_samples = int(time_samples)
        self.register_buffer("velocity", torch.zeros(1, NZ, NX))
        self.config: dict[str, Any] = {
            "name": self.kind,
            "time_samples": self.time_samples,
            "num_devices": int(num_devices),
            "fitted_on": dict(fitted_on or {}),
        }

    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        """``[B, 5, T, 70]`` (ignored) -> the fitted map ``[B, 1, 70, 70]`` in [-1, 1]."""
        check_seismic(seismic, self.time_samples, NUM_RECEIVERS, self.kind, NUM_SOURCES)
        return self.velocity.to(seismic.dtype).expand(seismic.shape[0], -1, -1, -1).clone()

    def _reduce(self, total: torch.Tensor, count: int) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def fit(self, velocities: Iterable[torch.Tensor], **provenance: Any) -> InputFreeBaseline:
        """Set the map from normalised training velocities (batches ``[B, 1, 70, 70]``).

        ``provenance`` (dataset, profile, seed, ...) goes to ``config["fitted_on"]``
        with the number of samples used. Returns ``self``.
        """
        total = torch.zeros(1, NZ, NX, dtype=torch.float64)
        count = 0
        for batch in velocities:
            batch = torch.as_tensor(batch).reshape(-1, 1, NZ, NX).to(torch.float64)
            total += batch.sum(0)
            count += batch.shape[0]
        if count == 0:
            raise ValueError(f"{self.kind}: no training velocities to fit the baseline on")
        self.velocity.copy_(self._reduce(total, count).to(self.velocity.dtype))
        self.config["fitted_on"] = {**dict(provenance), "samples": count}
        return self


class MeanMap(InputFreeBaseline):
    """``mean-map``: the pixel-wise mean of the training velocity maps."""

    kind = "mean-map"

    def _reduce(self, total: torch.Tensor, count: int) -> torch.Tensor:
        return total / count


class ConstantVelocity(InputFreeBaseline):
    """``constant``: the mean training velocity, the same at every pixel."""

    kind = "constant"

    def _reduce(self, total: torch.Tensor, count: int) -> torch.Tensor:
        return torch.full_like(total, float(total.sum() / (count * NZ * NX)))


@register_model("mean-map")
def mean_map(**kwargs) -> MeanMap:
    """Input-free baseline: the mean training velocity map."""
    return MeanMap(**kwargs)


@register_model("constant")
def constant(**kwargs) -> ConstantVelocity:
    """Input-free baseline: one velocity, the training mean."""
    return ConstantVelocity(**kwargs)
