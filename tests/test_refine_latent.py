"""benchmarks/refine_latent.py: the centre's view of EPIC's encoders and the latent distances."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys

import torch

from epic_zoo.data.geometry import NT
from epic_zoo.models import load_model
from epic_zoo.models.codec import levels
from tests.helpers import BENCHMARKS


def _script():
    """The script as a module, registered in ``sys.modules`` (its dataclass needs that)."""
    if "refine_latent" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "refine_latent", BENCHMARKS / "refine_latent.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["refine_latent"] = module
        spec.loader.exec_module(module)
    return sys.modules["refine_latent"]


def test_the_centres_encoder_view_reproduces_what_the_devices_send() -> None:
    script = _script()
    torch.manual_seed(0)
    view = script.LatentView(load_model("epic.curvevel-a"), "curvevel-a")
    records = torch.randn(2, 5, NT, 70) * 3.0  # raw amplitudes; the check needs no physics
    stages = view.stages(records)
    received = view.received(records)
    step = 1.0 / levels(view.bits)
    for latent, pre, sent in zip(stages["latent"], stages["pretanh"], received, strict=True):
        assert latent.shape == sent.shape
        torch.testing.assert_close(latent, torch.tanh(pre))
        # the devices' 8-bit codes are the centre's latents rounded to the code step
        assert float((latent - sent).abs().max()) <= 0.5 * step + 1e-6
    assert [f.shape[1] for f in stages["features_l1"]] == [32] * 5
    assert float(script.latent_distance(stages["latent"], received).max()) < step**2


def test_pretanh_distance_matches_inner_codes_and_only_hinges_saturated_ones() -> None:
    script = _script()
    bits = 8
    top = levels(bits)
    codes = [torch.tensor([[[0.5, -1.0, 1.0]]])]  # one unsaturated, two saturated codes
    edge = math.atanh(1.0 - 0.5 / top)
    exact = [torch.tensor([[[math.atanh(0.5), -edge - 2.0, edge + 0.1]]])]
    assert float(script.pretanh_distance(exact, codes, bits)) < 1e-10
    wrong = [torch.tensor([[[math.atanh(0.5), edge, edge + 0.1]]])]  # saturated the wrong way
    assert math.isclose(
        float(script.pretanh_distance(wrong, codes, bits)), (2 * edge) ** 2 / 3, rel_tol=1e-5
    )


def test_optimise_moves_a_map_towards_a_target_within_its_evaluation_budget() -> None:
    script = _script()
    target = torch.full((2, 1, 70, 70), 3000.0)
    start = torch.full((2, 1, 70, 70), 2500.0)

    def objective(v: torch.Tensor) -> torch.Tensor:
        return ((v - target) / 1000.0).square().flatten(1).mean(1)

    for optimizer in ("lbfgs", "adam"):
        variant = dataclasses.replace(
            script.Variant("latent", optimizer=optimizer), evaluations=12, lr=0.2
        )
        final, history, evaluations = script.optimise(start, objective, variant)
        assert evaluations <= 12 + 3  # L-BFGS may finish its last line search
        assert history[-1] < 0.5 * history[0]
        assert float((final - target).abs().mean()) < 250.0
        assert final.min() >= 1500.0 and final.max() <= 4500.0
