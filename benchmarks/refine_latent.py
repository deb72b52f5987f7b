"""Refinement from the latents alone (no record upload): does anything make the MAE move?

The centre holds EPIC's device encoders, so it can simulate records of its
current map (deepwave), normalise them as the data module does (the weights'
:class:`~epic_zoo.data.contract.InputContract`: signed log, the dataset's
range, the contract's time stride), encode them per device and compare those
latents with the ones it received (the 8-bit latents of the observed
recipe-port records). Starting from EPIC's own map (the decoding of the
received latents), each variant minimises one such distance over the map,
with the bounded velocity and depth preconditioning of
:mod:`epic_zoo.refine`, for a fixed number of forward + backward simulations:

- ``latent_adam``: mean squared latent difference, Adam (the first try);
- ``latent_lbfgs``: the same, L-BFGS (strong Wolfe, as the default refinement);
- ``latent_channel``: each (device, channel) of the difference divided by its
  mean square at the start, so rarely-mismatched channels weigh as much;
- ``pretanh``: before the encoder's ``tanh``: an unsaturated received code's
  ``atanh`` is the target; a saturated one (code +-127, 81 % of them) only
  asks the simulated token to stay beyond the saturation point (a hinge), so
  the gradient does not die in the ``tanh``;
- ``pretanh_prior``: ``pretanh`` plus the family prior
  (:func:`epic_zoo.refine.prior_for`) relative to its value at the start;
- ``decoded``: the centre's decoder applied to both latent sets, compared as
  maps (cycle consistency: EPIC of the simulated records should give EPIC's map);
- ``features_l1`` / ``features_l3`` (**oracles**: the devices would have to
  send these, 32 x 63 and 64 x 16 values per receiver, 31x and 16x the
  latent's 64): the encoder's intermediate features after its second /
  fourth stage, per channel normalised.

Before the variants, a sensitivity check per map (no optimisation): the
latent distance to the received latents of maps on the straight line from
EPIC's map to the true map, of the true map itself (deepwave records: the
propagator gap), of the recipe-port records with 20 dB noise (the noise
scale), beside the record misfit of the same maps. If the latent distance
does not fall towards the true map while the record misfit does, the encoder
is blind to what separates EPIC's map from the truth.

Per map: MAE (m/s) and OpenFWI SSIM before / after, the latent distance
before / after, the record misfit (diagnostic only: the centre has no
records), the mean-map MAE of the same maps, process CPU-seconds, one thread.
One record ``{out}`` (default ``benchmarks/results/refine/latent_only.json``),
written after every variant; resumable (variants already in it are skipped).

    python benchmarks/refine_latent.py --dataset curvevel-a --num 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refine_check import (  # noqa: E402
    MEASURE_SEED,
    commit_of_tree,
    load_record,
    map_metrics,
    mean_map,
    network_prediction,
    save_record,
)
from refine_data import port_pairs  # noqa: E402
from refine_starts import smoothed  # noqa: E402

from epic_zoo.data.degrade import band_limited_noise  # noqa: E402
from epic_zoo.data.forward import simulate  # noqa: E402
from epic_zoo.data.geometry import NT, V_MAX, V_MIN  # noqa: E402
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic  # noqa: E402
from epic_zoo.models import load_model  # noqa: E402
from epic_zoo.models.codec import levels  # noqa: E402
from epic_zoo.models.norm import DeviceBatchNorm2d  # noqa: E402
from epic_zoo.refine import (  # noqa: E402
    PRIOR_FUNCTIONS,
    BoundedVelocity,
    depth_weights,
    full_band_misfit,
    lowpass,
    prior_for,
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One latent-only refinement.

    Attributes:
        target: ``latent`` (after tanh), ``pretanh`` (before it), ``decoded``
            (the decoder's map of the latents) or ``features`` (an oracle).
        layer: for ``features``: the encoder stage (0-3) whose output is compared.
        channel_norm: divide each (device, channel)'s squared difference by its
            mean at the start.
        prior: add the family prior (:func:`epic_zoo.refine.prior_for`).
        prior_weight: its weight, the prior being divided by its value at the start.
        optimizer: ``lbfgs`` or ``adam``.
        evaluations: forward + backward simulations allowed (the batch of maps at once).
        lr: Adam step in the velocity parameter's (logit) units.
    """

    target: str
    layer: int | None = None
    channel_norm: bool = False
    prior: bool = False
    prior_weight: float = 0.1
    optimizer: str = "lbfgs"
    evaluations: int = 60
    lr: float = 0.05


VARIANTS: dict[str, Variant] = {
    "latent_adam": Variant("latent", optimizer="adam", evaluations=15),
    "latent_lbfgs": Variant("latent"),
    "latent_channel": Variant("latent", channel_norm=True),
    "pretanh": Variant("pretanh"),
    "pretanh_prior": Variant("pretanh", prior=True),
    "decoded": Variant("decoded"),
    "features_l1": Variant("features", layer=1, channel_norm=True),
    "features_l3": Variant("features", layer=3, channel_norm=True),
}
ORACLES = ("features_l1", "features_l3")
"""Variants that need more than the latents from the devices."""


class LatentView:
    """EPIC's device encoders as the centre runs them on simulated records.

    Args:
        model: an ``epic.*`` model (frozen here, eval mode).
        dataset: its dataset (the normalisation).
    """

    def __init__(self, model: torch.nn.Module, dataset: str) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dataset = dataset
        self.stride = int(model.contract.time_stride)
        self.bits = int(model.codec_bits)

    def inputs(self, records: torch.Tensor) -> list[torch.Tensor]:
        """Raw 1 ms records ``[N, 5, 1000, 70]`` -> per-device normalised ``[N, 5, T, n_k]``."""
        x = normalize_seismic(records, self.dataset)[:, :, :: self.stride]
        return self.model.split_seismic(x)

    def stages(self, records: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Per device: each encoder stage's features, the pre-tanh tokens and the latents."""
        out: dict[str, list[torch.Tensor]] = {"pretanh": [], "latent": []}
        for k, x in enumerate(self.inputs(records)):
            view = self.model.encoder_module(k)
            encoder = view.encoder
            index = view.device_index
            for module in encoder.features:
                if isinstance(module, DeviceBatchNorm2d):
                    module.device = index
            h, stage = x, 0
            for module in encoder.features:
                h = module(h)
                if isinstance(module, torch.nn.LeakyReLU):
                    out.setdefault(f"features_l{stage}", []).append(h)
                    stage += 1
            tokens = encoder.to_token(h).squeeze(2).transpose(1, 2)  # [N, n_k, latent]
            out["pretanh"].append(tokens)
            out["latent"].append(torch.tanh(tokens))
        return out

    def received(self, records: torch.Tensor) -> list[torch.Tensor]:
        """The quantised latents the devices send for ``records`` ``[N, n_k, latent]`` each."""
        with torch.no_grad():
            return self.model.encode_all(torch.cat(self.inputs(records), dim=-1))

    def decode(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """The centre's map ``[N, 1, 70, 70]`` in [-1, 1] of per-device latents."""
        return self.model.decode(latents)


def latent_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared difference per map ``[N]`` over all devices' latents."""
    diff = torch.cat([(x - y).flatten(1) for x, y in zip(a, b, strict=True)], dim=1)
    return diff.square().mean(1)


def pretanh_distance(
    tokens: list[torch.Tensor], codes: list[torch.Tensor], bits: int
) -> torch.Tensor:
    """Per map ``[N]``: unsaturated codes matched in atanh space, saturated ones as a hinge."""
    top = levels(bits)
    edge = math.atanh(1.0 - 0.5 / top)  # a token beyond this quantises to +-1
    parts = []
    for t, q in zip(tokens, codes, strict=True):
        saturated = q.abs() >= 1.0 - 0.25 / top
        target = torch.atanh(q.clamp(-1.0 + 1.0 / top, 1.0 - 1.0 / top))
        inner = (t - target).square()
        hinge = torch.relu(edge - torch.sign(q) * t).square()
        parts.append(torch.where(saturated, hinge, inner).flatten(1))
    return torch.cat(parts, dim=1).mean(1)


def make_objective(
    view: LatentView,
    variant: Variant,
    received: list[torch.Tensor],
    observed_features: dict[str, list[torch.Tensor]],
    start: torch.Tensor,
    prior_name: str,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The variant's per-map loss ``[N]`` of a velocity ``[N, 1, 70, 70]`` m/s."""
    target_map = view.decode(received) if variant.target == "decoded" else None
    prior_fn = PRIOR_FUNCTIONS[prior_name]
    prior_start = prior_fn(start).detach().clamp_min(1e-12)

    def raw(velocity: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Loss per map, or per-element squared differences per device when normalised."""
        stages = view.stages(simulate(velocity, nt=NT))
        if variant.target == "latent":
            sq = [(s - r).square() for s, r in zip(stages["latent"], received, strict=True)]
        elif variant.target == "features":
            key = f"features_l{variant.layer}"
            sq = [
                (s - o).square() for s, o in zip(stages[key], observed_features[key], strict=True)
            ]
        elif variant.target == "pretanh":
            return pretanh_distance(stages["pretanh"], received, view.bits), None
        elif variant.target == "decoded":
            return (view.decode(stages["latent"]) - target_map).square().flatten(1).mean(1), None
        else:
            raise ValueError(f"target {variant.target!r} is unknown")
        return torch.cat([s.flatten(1) for s in sq], 1).mean(1), sq

    scales: list[torch.Tensor] | None = None
    if variant.channel_norm:
        with torch.no_grad():
            _, sq = raw(start)
        # latent [N, n_k, C]: channel is the last axis; features [N, C, T, n_k]: axis 1
        axis = -1 if variant.target == "latent" else 1
        scales = []
        for s in sq:
            dims = [d for d in range(s.ndim) if d != (axis % s.ndim)]
            scales.append(s.mean(dim=dims, keepdim=True).clamp_min(1e-12))

    def objective(velocity: torch.Tensor) -> torch.Tensor:
        loss, sq = raw(velocity)
        if scales is not None and sq is not None:
            loss = torch.cat([(s / c).flatten(1) for s, c in zip(sq, scales, strict=True)], 1)
            loss = loss.mean(1)
        if variant.prior:
            loss = loss + variant.prior_weight * prior_fn(velocity) / prior_start
        return loss

    return objective


def optimise(
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    variant: Variant,
) -> tuple[torch.Tensor, list[float], int]:
    """Minimise the summed ``objective`` from ``start`` ``[N, 1, 70, 70]`` m/s.

    The map is ``BoundedVelocity(m0 + w(z) p)`` as in :mod:`epic_zoo.refine`.
    Returns the final map, the objective at each evaluation and the evaluation count.
    """
    bounded = BoundedVelocity()
    base = bounded.to_parameter(start[:, 0]).detach()
    weights = depth_weights(0.5)
    update = torch.zeros_like(base, requires_grad=True)
    history: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = objective(bounded.to_velocity(base + weights * update)[:, None]).sum()
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    if variant.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam([update], lr=variant.lr)
        for _ in range(variant.evaluations):
            closure()
            optimizer.step()
    elif variant.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            [update],
            lr=1.0,
            max_iter=1,
            max_eval=4,
            history_size=10,
            tolerance_grad=1e-12,
            tolerance_change=1e-14,
            line_search_fn="strong_wolfe",
        )
        while len(history) < variant.evaluations:
            before = len(history)
            optimizer.step(closure)
            if len(history) == before:
                break
    else:
        raise ValueError(f"optimizer {variant.optimizer!r} is not adam or lbfgs")
    with torch.no_grad():
        final = bounded.to_velocity(base + weights * update)[:, None]
    return final.detach(), history, len(history)


def plain_distance(
    view: LatentView, velocity: torch.Tensor, received: list[torch.Tensor]
) -> list[float]:
    """Latent distance per map of ``velocity``'s deepwave records to ``received``."""
    with torch.no_grad():
        return latent_distance(view.stages(simulate(velocity, nt=NT))["latent"], received).tolist()


ALIGNED = ("latent_lbfgs", "latent_channel", "pretanh", "decoded", "features_l1", "features_l3")
"""Variants whose gradient at EPIC's map :func:`gradient_alignment` compares with the truth's direction."""


def gradient_alignment(
    view: LatentView,
    epic: torch.Tensor,
    truth: torch.Tensor,
    records: torch.Tensor,
    received: list[torch.Tensor],
    prior_name: str,
) -> dict[str, list[float]]:
    """Per objective, per map: cosine of its descent direction at EPIC's map with ``truth - epic``.

    Objectives: the :data:`ALIGNED` variants and, for comparison, the record
    misfits the default refinement uses (full band; low-passed to 4 Hz, its
    first stage), which need the records. Gradients with respect to velocity
    (m/s), whole map; 1 is the direction to the truth, 0 is blind to it.
    """
    with torch.no_grad():
        observed = view.stages(records)
    objectives: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        name: make_objective(view, VARIANTS[name], received, observed, epic, prior_name)
        for name in ALIGNED
    }
    norm = records.flatten(1).square().sum(1)
    for cutoff in (None, 4.0):
        target = lowpass(records, cutoff)

        def misfit(v: torch.Tensor, target: torch.Tensor = target, cutoff=cutoff) -> torch.Tensor:
            sim = lowpass(simulate(v, nt=NT), cutoff)
            return (sim - target).flatten(1).square().sum(1) / norm

        objectives["records_full_band" if cutoff is None else "records_4hz"] = misfit
    towards = (truth - epic).flatten(1)
    out = {}
    for name, objective in objectives.items():
        v = epic.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(v).sum(), v)
        out[name] = torch.nn.functional.cosine_similarity(-grad.flatten(1), towards, dim=1).tolist()
    return out


def sensitivity(
    view: LatentView,
    epic: torch.Tensor,
    truth: torch.Tensor,
    records: torch.Tensor,
    received: list[torch.Tensor],
    dataset: str,
) -> dict:
    """Latent distance and record misfit along EPIC -> truth, and the noise / propagator scales."""
    out: dict = {"alpha": [0.0, 0.25, 0.5, 0.75, 1.0], "path": []}
    with torch.no_grad():
        for alpha in out["alpha"]:
            v = epic + alpha * (truth - epic)
            stages = view.stages(simulate(v, nt=NT))
            out["path"].append(
                {
                    "alpha": alpha,
                    "mae": map_metrics(v, truth)["mae_ms"],
                    "latent_distance": latent_distance(stages["latent"], received).tolist(),
                    "pretanh_distance": pretanh_distance(
                        stages["pretanh"], received, view.bits
                    ).tolist(),
                    "record_misfit": full_band_misfit(v, records).tolist(),
                }
            )
        for name, v in (
            ("mean_map", mean_map(dataset).float().expand_as(truth)),
            ("smoothed_truth", smoothed(truth)),
        ):
            out[name] = {
                "mae": map_metrics(v, truth)["mae_ms"],
                "latent_distance": plain_distance(view, v, received),
                "record_misfit": full_band_misfit(v, records).tolist(),
            }
        noisy = []
        for seed in range(3):
            rec = torch.from_numpy(band_limited_noise(records.numpy(), 20.0, seed=seed)).float()
            noisy.append(latent_distance(view.received(rec), received).tolist())
        out["noise_20db_latent_distance"] = np.mean(noisy, axis=0).tolist()
        saturated = torch.cat(
            [r.abs().flatten(1) >= 1.0 - 0.25 / levels(view.bits) for r in received], 1
        )
        out["received_saturated_fraction"] = saturated.float().mean(1).tolist()
        truth_latents = view.stages(simulate(truth, nt=NT))["latent"]
        epic_of_truth = denormalize_velocity(view.decode(truth_latents)).clamp(V_MIN, V_MAX)
        out["epic_of_deepwave_truth_mae"] = map_metrics(epic_of_truth, truth)["mae_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="curvevel-a")
    parser.add_argument("--num", type=int, default=2)
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--cache", type=Path, default=Path("data/refine"))
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/refine/latent_only.json")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    record = load_record(args.out)
    entry = record.setdefault(args.dataset, {})
    if entry and (entry.get("seed"), entry.get("maps")) != (args.seed, list(range(args.num))):
        raise SystemExit(
            f"{args.out} holds {args.dataset} maps {entry.get('maps')} of seed {entry.get('seed')}; "
            "pass the same --seed/--num or another --out"
        )
    velocity, raw_records = port_pairs(args.dataset, args.seed, range(args.num), args.cache)
    truth = torch.from_numpy(velocity).float()
    records = torch.from_numpy(raw_records).float()
    model = load_model(f"epic.{args.dataset}")
    view = LatentView(model, args.dataset)
    received = view.received(records)
    epic = network_prediction(model, raw_records, args.dataset)
    entry.update(
        {
            "seed": args.seed,
            "maps": list(range(args.num)),
            "model": f"epic.{args.dataset}",
            "records": "exact OpenFWI recipe port, clean; the centre sees only their 8-bit latents",
            "mean_map_mae": map_metrics(mean_map(args.dataset).float().expand_as(truth), truth)[
                "mae_ms"
            ],
            "threads": 1,
        }
    )
    if "sensitivity" not in entry:
        started = time.process_time()
        entry["sensitivity"] = sensitivity(view, epic, truth, records, received, args.dataset)
        entry["sensitivity"]["cpu_seconds"] = time.process_time() - started
        record["commit"] = commit_of_tree()
        save_record(args.out, record)
        print(json.dumps(entry["sensitivity"]), flush=True)
    variants = entry.setdefault("variants", {})
    prior_name = prior_for(args.dataset)
    if "gradient_alignment" not in entry:
        started = time.process_time()
        entry["gradient_alignment"] = gradient_alignment(
            view, epic, truth, records, received, prior_name
        )
        entry["gradient_alignment"]["cpu_seconds"] = time.process_time() - started
        record["commit"] = commit_of_tree()
        save_record(args.out, record)
        print(json.dumps(entry["gradient_alignment"]), flush=True)
    for name in args.variants:
        if name in variants:
            print(f"{name}: already in {args.out}, skipped", flush=True)
            continue
        variant = VARIANTS[name]
        started = time.process_time()
        observed = {}
        if variant.target == "features":
            with torch.no_grad():
                observed = view.stages(records)
        objective = make_objective(view, variant, received, observed, epic, prior_name)
        refined, history, evaluations = optimise(epic, objective, variant)
        cpu = time.process_time() - started
        before, after = map_metrics(epic, truth), map_metrics(refined, truth)
        variants[name] = {
            "variant": dataclasses.asdict(variant),
            "oracle": name in ORACLES,
            "prior": prior_name if variant.prior else None,
            "mae_before": before["mae_ms"],
            "mae_after": after["mae_ms"],
            "ssim_before": before["ssim_openfwi"],
            "ssim_after": after["ssim_openfwi"],
            "latent_distance_before": plain_distance(view, epic, received),
            "latent_distance_after": plain_distance(view, refined, received),
            "objective_before": history[0] if history else None,
            "objective_lowest": min(history) if history else None,
            "record_misfit_before": full_band_misfit(epic, records).tolist(),
            "record_misfit_after": full_band_misfit(refined, records).tolist(),
            "evaluations": evaluations,
            "cpu_seconds_per_map": cpu / args.num,
        }
        record["commit"] = commit_of_tree()
        save_record(args.out, record)
        v = variants[name]
        print(
            f"{name}: MAE {np.mean(v['mae_before']):.1f} -> {np.mean(v['mae_after']):.1f} m/s, "
            f"latent {np.mean(v['latent_distance_before']):.2e} -> "
            f"{np.mean(v['latent_distance_after']):.2e}, {v['cpu_seconds_per_map']:.0f} CPU-s/map",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
