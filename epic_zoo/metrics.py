"""Velocity-map metrics: MAE, RMSE (normalised scale and m/s) and two SSIMs.

Conventions of OpenFWI (Deng et al., NeurIPS 2022; docs/data.md, "Normalisation"):

- MAE and RMSE on the normalised ``[-1, 1]`` scale; multiplied by
  :data:`~epic_zoo.data.transforms.VELOCITY_SCALE_MS` (1500) they are in m/s.
- SSIM on maps rescaled to ``[0, 1]`` (``(v + 1) / 2``) with an 11x11 Gaussian
  window (sigma 1.5), ``C1 = 0.01^2``, ``C2 = 0.03^2`` and a zero-padded
  convolution, averaged over the whole map (:func:`openfwi_ssim`).
  torchmetrics' SSIM pads by reflection and crops the border instead, so its
  value differs slightly: both are reported, as ``ssim`` (torchmetrics) and
  ``ssim_openfwi``.

All metrics take ``preds`` and ``target`` as normalised velocity maps
``[batch, 1, depth, offset]`` in ``[-1, 1]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection
from torchmetrics.image import StructuralSimilarityIndexMeasure
from torchmetrics.wrappers.transformations import MetricInputTransformer

from epic_zoo.data.transforms import VELOCITY_SCALE_MS

SSIM_WINDOW: int = 11
"""Side of the Gaussian SSIM window, pixels."""
SSIM_SIGMA: float = 1.5
"""Standard deviation of the Gaussian SSIM window, pixels."""
SSIM_C1: float = 0.01**2
"""SSIM luminance constant for data range 1."""
SSIM_C2: float = 0.03**2
"""SSIM contrast constant for data range 1."""


def _gaussian_window(
    size: int, sigma: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Normalised 2-D Gaussian window ``[1, 1, size, size]`` (sums to 1)."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype=dtype, device=device)[None, None]


def openfwi_ssim_map(
    preds: torch.Tensor,
    target: torch.Tensor,
    window_size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Per-pixel SSIM as OpenFWI computes it, ``[batch, channel, depth, offset]``.

    Args:
        preds, target: maps ``[batch, channel, depth, offset]`` rescaled to ``[0, 1]``.
        window_size: side of the Gaussian window (odd), pixels.
        sigma: its standard deviation, pixels.

    Local means and (co)variances come from a zero-padded convolution with the
    Gaussian window, so pixels within ``window_size // 2`` of the border see
    zeros outside the map (as in OpenFWI's ``pytorch_ssim``).
    """
    if preds.shape != target.shape or preds.ndim != 4:
        raise ValueError(
            f"SSIM needs preds and target of the same shape [batch, channel, depth, offset], "
            f"got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    channels = preds.shape[1]
    window = _gaussian_window(window_size, sigma, preds.dtype, preds.device).expand(
        channels, 1, -1, -1
    )

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, padding=window_size // 2, groups=channels)

    mu_p, mu_t = blur(preds), blur(target)
    var_p = blur(preds * preds) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(preds * target) - mu_p * mu_t
    return ((2 * mu_p * mu_t + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_p**2 + mu_t**2 + SSIM_C1) * (var_p + var_t + SSIM_C2)
    )


def openfwi_ssim(
    preds: torch.Tensor,
    target: torch.Tensor,
    reduction: str = "mean",
    window_size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """OpenFWI-style SSIM of maps in ``[0, 1]`` (see :func:`openfwi_ssim_map`).

    Args:
        preds, target: ``[batch, channel, depth, offset]`` in ``[0, 1]``.
        reduction: ``"mean"`` (scalar over the batch) or ``"none"`` (``[batch]``,
            one mean per sample).
    """
    per_sample = openfwi_ssim_map(preds, target, window_size, sigma).flatten(1).mean(dim=1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; use 'mean' or 'none'")


class OpenFWISSIM(Metric):
    """:func:`openfwi_ssim` accumulated over batches: the mean of per-sample SSIMs.

    ``update(preds, target)`` takes maps ``[batch, channel, depth, offset]`` in ``[0, 1]``.
    """

    is_differentiable = True
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = openfwi_ssim(preds, target, reduction="none")
        self.total += values.sum().to(torch.float64)
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count).to(torch.float32)


class Affine(MetricInputTransformer):
    """Feed ``scale * x + shift`` of both ``preds`` and ``target`` to the wrapped metric.

    Used to move normalised maps to m/s errors (``scale=1500``) or to ``[0, 1]``
    for SSIM (``scale=0.5, shift=0.5``).
    """

    def __init__(
        self, wrapped_metric: Metric, scale: float = 1.0, shift: float = 0.0, **kwargs
    ) -> None:
        super().__init__(wrapped_metric, **kwargs)
        self.scale = float(scale)
        self.shift = float(shift)

    def transform_pred(self, pred: torch.Tensor) -> torch.Tensor:
        return pred * self.scale + self.shift

    def transform_target(self, target: torch.Tensor) -> torch.Tensor:
        return target * self.scale + self.shift


def inversion_metrics(prefix: str = "", ssim: bool = True) -> MetricCollection:
    """The metric set of every inversion run, keys prefixed (e.g. ``"val/"``).

    Keys: ``mae``, ``rmse`` (normalised ``[-1, 1]`` scale), ``mae_ms``,
    ``rmse_ms`` (m/s), ``ssim`` (torchmetrics, maps in ``[0, 1]``,
    ``data_range=1``) and ``ssim_openfwi`` (:class:`OpenFWISSIM`). ``update``
    takes normalised maps ``[batch, 1, 70, 70]``. ``ssim=False`` leaves the two
    SSIMs out (training batches: they cost ~7 % of a CPU training step and no
    decision reads them).
    """
    metrics: dict[str, Metric] = {
        "mae": MeanAbsoluteError(),
        "rmse": MeanSquaredError(squared=False),
        "mae_ms": Affine(MeanAbsoluteError(), scale=VELOCITY_SCALE_MS),
        "rmse_ms": Affine(MeanSquaredError(squared=False), scale=VELOCITY_SCALE_MS),
    }
    if ssim:
        metrics["ssim"] = Affine(
            StructuralSimilarityIndexMeasure(
                data_range=1.0, kernel_size=SSIM_WINDOW, sigma=SSIM_SIGMA
            ),
            scale=0.5,
            shift=0.5,
        )
        metrics["ssim_openfwi"] = Affine(OpenFWISSIM(), scale=0.5, shift=0.5)
    return MetricCollection(
        metrics,
        prefix=prefix,
        compute_groups=False,
    )
