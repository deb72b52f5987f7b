"""Velocity-map metrics against independent references (scikit-image, numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.metrics import (
    SSIM_C1,
    SSIM_C2,
    OpenFWISSIM,
    inversion_metrics,
    openfwi_ssim,
    openfwi_ssim_map,
)

KEYS = ("mae", "rmse", "mae_ms", "rmse_ms", "ssim", "ssim_openfwi")


def _maps(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth-ish target and a noisy prediction, both ``[batch, 1, 70, 70]`` in ``[0, 1]``."""
    g = torch.Generator().manual_seed(seed)
    depth = torch.linspace(0, 1, 70).view(1, 1, 70, 1)
    target = (0.2 + 0.6 * depth + 0.05 * torch.rand(batch, 1, 70, 70, generator=g)).clamp(0, 1)
    pred = (target + 0.08 * torch.randn(batch, 1, 70, 70, generator=g)).clamp(0, 1)
    return pred.double(), target.double()


def _reference_pixel(pred: np.ndarray, target: np.ndarray, row: int, col: int) -> float:
    """SSIM at one pixel with an explicit zero-padded 11x11 Gaussian window (sigma 1.5)."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    p = np.pad(pred, 5)[row : row + 11, col : col + 11]
    t = np.pad(target, 5)[row : row + 11, col : col + 11]
    mp, mt = (w * p).sum(), (w * t).sum()
    vp, vt = (w * p * p).sum() - mp**2, (w * t * t).sum() - mt**2
    cov = (w * p * t).sum() - mp * mt
    return ((2 * mp * mt + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mp**2 + mt**2 + SSIM_C1) * (vp + vt + SSIM_C2)
    )


def test_openfwi_ssim_interior_matches_scikit_image():
    pred, target = _maps(batch=1)
    ours = openfwi_ssim_map(pred, target)[0, 0].numpy()
    _, theirs = structural_similarity(
        pred[0, 0].numpy(),
        target[0, 0].numpy(),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    # Away from the border (5 px) both are the same Gaussian-window SSIM.
    np.testing.assert_allclose(ours[5:-5, 5:-5], theirs[5:-5, 5:-5], atol=1e-12)


@pytest.mark.parametrize(("row", "col"), [(0, 0), (0, 35), (69, 69), (3, 66)])
def test_openfwi_ssim_border_uses_zero_padding(row, col):
    pred, target = _maps(batch=1, seed=1)
    ours = openfwi_ssim_map(pred, target)[0, 0, row, col].item()
    expected = _reference_pixel(pred[0, 0].numpy(), target[0, 0].numpy(), row, col)
    assert ours == pytest.approx(expected, abs=1e-12)


def test_openfwi_ssim_reductions_and_identity():
    pred, target = _maps(batch=4)
    per_sample = openfwi_ssim(pred, target, reduction="none")
    assert per_sample.shape == (4,)
    assert openfwi_ssim(pred, target).item() == pytest.approx(per_sample.mean().item())
    assert openfwi_ssim(target, target).item() == pytest.approx(1.0)
    assert (per_sample < 1).all()
    with pytest.raises(ValueError, match="reduction"):
        openfwi_ssim(pred, target, reduction="sum")
    with pytest.raises(ValueError, match="same shape"):
        openfwi_ssim(pred, target[:, :, :60])


def test_inversion_metrics_values_and_units():
    pred01, target01 = _maps(batch=5)
    pred, target = (pred01 * 2 - 1).float(), (target01 * 2 - 1).float()
    metrics = inversion_metrics("val/")
    metrics.update(pred, target)
    out = {k: v.item() for k, v in metrics.compute().items()}
    assert sorted(out) == sorted(f"val/{k}" for k in KEYS)
    mae = (pred - target).abs().mean().item()
    rmse = (pred - target).pow(2).mean().sqrt().item()
    assert out["val/mae"] == pytest.approx(mae, rel=1e-5)
    assert out["val/rmse"] == pytest.approx(rmse, rel=1e-5)
    assert out["val/mae_ms"] == pytest.approx(VELOCITY_SCALE_MS * mae, rel=1e-5)
    assert out["val/rmse_ms"] == pytest.approx(VELOCITY_SCALE_MS * rmse, rel=1e-5)
    # SSIMs are computed on [0, 1] maps; OpenFWI's and torchmetrics' differ at the border.
    assert out["val/ssim_openfwi"] == pytest.approx(openfwi_ssim(pred01, target01).item(), rel=1e-5)
    assert 0 < out["val/ssim"] < 1
    assert out["val/ssim"] != pytest.approx(out["val/ssim_openfwi"], abs=1e-4)


def test_training_metrics_leave_the_ssims_out_and_keep_the_rest():
    pred01, target01 = _maps(batch=5)
    pred, target = (pred01 * 2 - 1).float(), (target01 * 2 - 1).float()
    full, lean = inversion_metrics("train/"), inversion_metrics("train/", ssim=False)
    full.update(pred, target)
    lean.update(pred, target)
    a, b = full.compute(), lean.compute()
    assert sorted(b) == sorted(f"train/{k}" for k in KEYS if "ssim" not in k)
    for key in b:
        assert b[key].item() == a[key].item(), key


def test_metrics_accumulate_over_batches_like_one_batch():
    pred01, target01 = _maps(batch=6)
    pred, target = (pred01 * 2 - 1).float(), (target01 * 2 - 1).float()
    whole = inversion_metrics()
    whole.update(pred, target)
    parts = inversion_metrics()
    for sl in (slice(0, 1), slice(1, 4), slice(4, 6)):
        parts.update(pred[sl], target[sl])
    a, b = whole.compute(), parts.compute()
    for key in KEYS:
        assert b[key].item() == pytest.approx(a[key].item(), rel=1e-5), key


def test_identical_maps_are_perfect():
    _, target01 = _maps(batch=2)
    target = (target01 * 2 - 1).float()
    metrics = inversion_metrics()
    metrics.update(target, target)
    out = metrics.compute()
    assert out["mae"].item() == 0 and out["rmse_ms"].item() == 0
    assert out["ssim"].item() == pytest.approx(1.0, abs=1e-5)
    assert out["ssim_openfwi"].item() == pytest.approx(1.0, abs=1e-6)


def test_openfwi_ssim_metric_resets():
    pred, target = _maps(batch=2)
    metric = OpenFWISSIM()
    metric.update(pred, target)
    first = metric.compute().item()
    metric.reset()
    metric.update(target, target)
    assert metric.compute().item() == pytest.approx(1.0)
    assert first < 1
