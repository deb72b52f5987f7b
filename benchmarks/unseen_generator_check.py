"""Do the weights hold on maps from a generator they never saw, with records made by the OpenFWI recipe?

OpenFWI never released its velocity generators, so every family here is a
re-creation (``epic_zoo.data.families``), and a model may fit our generator's
habits (layer counts, thickness and contrast laws, constant layers) rather
than the family. This check draws maps from **probe generators** written
independently of ``families.py``, with other laws for the same family,
simulates them with the exact OpenFWI recipe port (as real OpenFWI files are
made), writes them as an OpenFWI-layout ``.npy`` pair, and evaluates models on
them beside two input-free baselines: the probe set's own mean map (a
baseline that knows the set; the stricter one) and the mean of the model's
training maps.

Probes (:data:`PROBES`), each checked against a dataset's models:

- ``flat-gradient`` (FlatVel-A's family: flat layers, velocity increasing
  with depth from 1500-2500 m/s): 3-10 layers at uniform random depths (at
  least 3 cells thick), steps of 50-600 m/s, and a velocity gradient of
  0-15 m/s per cell *inside* every layer, where FlatVel-A's layers are
  constant (a profile that would pass 4500 m/s is squeezed below it);
- ``smooth-field`` (Style-A's family: smooth maps on a depth trend): a
  depth trend from 1500-2300 to 3000-4300 m/s plus a Gaussian random field
  (correlation 3-8 cells, 300-900 m/s peak-to-peak), where Style-A crops
  and blurs images.
- ``well-log`` (FlatVel-A's family again, other laws than both its default
  and its wide generator): 4-15 flat beds rising from 1500-2300 to
  3000-4500 m/s in gamma-distributed steps, contacts smoothed over 0-2 cells.

    python benchmarks/unseen_generator_check.py --probes flat-gradient smooth-field \\
        --models 'epic.{dataset}' 'epic.{dataset}.lite10k_100k_wsd' --num 48 --out DIR \\
        --json benchmarks/results/unseen_generators/check.json

A model spec that is not registered for a probe's dataset is skipped with a
note. Simulated folders are reused when present (the port costs ~5 s per map
on one core).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from epic_zoo.data.families import generate_velocity
from epic_zoo.data.forward import simulate
from epic_zoo.data.geometry import NX, NZ, V_MAX, V_MIN
from epic_zoo.data.openfwi import OpenFWIFolder
from epic_zoo.evaluation import per_map_mae
from epic_zoo.evidence import bootstrap_ratio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openfwi_backend_check import official_test_names  # noqa: E402

PROBE_SEED = 60221
"""Seed of the probe maps (no training, test or check draw uses it)."""


def flat_gradient(rng: np.random.Generator) -> np.ndarray:
    """Flat layers with a velocity gradient inside each, increasing with depth, ``[NZ, NX]``."""
    layers = int(rng.integers(3, 11))
    min_thickness = 3
    free = NZ - layers * min_thickness
    cuts = np.sort(rng.integers(0, free + 1, size=layers - 1))
    tops = np.concatenate([[0], cuts + min_thickness * np.arange(1, layers)])
    velocity = np.empty(NZ)
    top = v = rng.uniform(1500.0, 2500.0)
    for k in range(layers):
        bottom = tops[k + 1] if k + 1 < layers else NZ
        gradient = rng.uniform(0.0, 15.0)
        velocity[tops[k] : bottom] = v + gradient * np.arange(bottom - tops[k])
        v = velocity[bottom - 1] + rng.uniform(50.0, 600.0)
    if velocity.max() > V_MAX:  # squeeze the increase below V_MAX rather than clip a flat floor
        velocity = top + (velocity - top) * (V_MAX - top) / (velocity.max() - top)
    return np.repeat(velocity[:, None], NX, axis=1)


def smooth_field(rng: np.random.Generator) -> np.ndarray:
    """A depth trend plus a smooth Gaussian random field, ``[NZ, NX]``."""
    top, bottom = rng.uniform(1500.0, 2300.0), rng.uniform(3000.0, 4300.0)
    trend = np.linspace(top, bottom, NZ)[:, None]
    field = ndimage.gaussian_filter(
        rng.standard_normal((NZ, NX)), sigma=rng.uniform(3.0, 8.0), mode="reflect"
    )
    field -= field.mean()
    field *= rng.uniform(300.0, 900.0) / max(np.ptp(field), 1e-9)
    return np.clip(trend + field, V_MIN, V_MAX)


def well_log(rng: np.random.Generator) -> np.ndarray:
    """Flat, blocky, increasing with depth like a sonic log, ``[NZ, NX]``.

    4-15 beds at least 2 cells thick, velocity rising from 1500-2300 m/s at
    the surface to 3000-4500 m/s at the bottom in gamma-distributed steps
    (a few large jumps among many small ones), contacts smoothed over 0-2
    cells (gradational beds): other laws than both FlatVel-A's and its wide
    variant (``epic_zoo.data.families.widen``).
    """
    beds = int(rng.integers(4, 16))
    thickness = 2 + rng.dirichlet(np.ones(beds)) * (NZ - 2 * beds)
    tops = np.concatenate([[0], np.cumsum(thickness)[:-1]]).round().astype(int)
    top, bottom = rng.uniform(1500.0, 2300.0), rng.uniform(3000.0, 4500.0)
    steps = rng.gamma(rng.uniform(0.5, 3.0), size=beds - 1)
    levels = top + (bottom - top) * np.concatenate([[0.0], np.cumsum(steps) / steps.sum()])
    index = np.searchsorted(tops, np.arange(NZ), side="right") - 1
    profile = levels[index]
    sigma = rng.uniform(0.0, 2.0)
    if sigma > 0.05:  # smoothing a rising profile keeps it rising
        profile = ndimage.gaussian_filter1d(profile, sigma, mode="nearest")
    return np.repeat(np.clip(profile, V_MIN, V_MAX)[:, None], NX, axis=1)


PROBES: dict[str, tuple[str, Callable[[np.random.Generator], np.ndarray]]] = {
    "flat-gradient": ("flatvel-a", flat_gradient),
    "smooth-field": ("style-a", smooth_field),
    "well-log": ("flatvel-a", well_log),
}
"""Probe name -> (the dataset whose models it checks, map generator)."""

PROBE_IDS: dict[str, int] = {"flat-gradient": 0, "smooth-field": 1, "well-log": 2}
"""Each probe's number in its maps' seeds (fixed: adding a probe changes no other probe's maps)."""


def probe_maps(probe: str, num: int, seed: int = PROBE_SEED) -> np.ndarray:
    """``num`` maps of a probe, ``[num, 1, NZ, NX]`` float32 m/s; map ``i`` depends on (probe, seed, i)."""
    _, draw = PROBES[probe]
    offset = PROBE_IDS[probe]
    maps = [draw(np.random.default_rng([seed, offset, i])).astype(np.float32) for i in range(num)]
    return np.stack(maps)[:, None]


def simulate_probe(probe: str, num: int, out: Path, seed: int = PROBE_SEED) -> Path:
    """The probe's maps and their recipe-port records as an OpenFWI ``.npy`` pair in ``out/probe``."""
    dataset, _ = PROBES[probe]
    folder = out / probe
    seis_name, vel_name = official_test_names(dataset)
    draw = {"probe": probe, "num": num, "seed": seed, "backend": "openfwi"}
    made = folder / "maps.json"
    if (folder / seis_name).is_file() and made.is_file() and json.loads(made.read_text()) == draw:
        return folder
    velocity = probe_maps(probe, num, seed)
    started = time.time()
    seismic = np.asarray(simulate(velocity[:, 0], backend="openfwi"), dtype=np.float32)
    print(f"{probe}: {num} maps through the OpenFWI recipe in {time.time() - started:.0f} s")
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / vel_name, velocity)
    np.save(folder / seis_name, seismic)
    made.write_text(json.dumps(draw) + "\n")
    return folder


def check(probe: str, spec: str, folder: Path) -> dict:
    """One row: the model's MAE on the probe beside the probe's own and the training mean maps,
    with a bootstrap 95 % interval (over maps) of the ratio to the probe's own mean map."""
    from epic_zoo.evaluation import evaluate_model
    from epic_zoo.models import load_model

    dataset, _ = PROBES[probe]
    model = load_model(spec)
    data = OpenFWIFolder(folder, dataset, split=None)
    metrics = evaluate_model(model, data)
    truth = np.load(folder / official_test_names(dataset)[1])
    own_maps = np.abs(truth - truth.mean(0, keepdims=True)).reshape(len(truth), -1).mean(1)
    own = float(own_maps.mean())
    interval = bootstrap_ratio(per_map_mae(model, data), own_maps)
    record = (model.source.get("config") or {}).get("record") or {}
    train = record.get("train")
    trained = None
    if train:  # the mean of the maps the model was trained on (seed 0 training split, its laws)
        laws = str(record.get("generator", "default"))
        train_mean = generate_velocity(dataset, range(int(train)), generator=laws).mean(0)
        trained = float(np.abs(truth - train_mean.reshape(1, 1, NZ, NX)).mean())
    return {
        "probe": probe,
        "dataset": dataset,
        "model": spec,
        "maps": int(truth.shape[0]),
        "records": "exact OpenFWI recipe port (backend='openfwi'), 1 ms float32",
        "mae_ms": metrics["mae_ms"],
        "ssim_openfwi": metrics.get("ssim_openfwi"),
        "probe_mean_map_mae_ms": own,
        "ratio_to_probe_mean_map": metrics["mae_ms"] / own,
        "ratio_ci95": list(interval),
        "training_mean_map_mae_ms": trained,
        "training_maps": train,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", nargs="+", default=sorted(PROBES), choices=sorted(PROBES))
    parser.add_argument("--models", nargs="+", default=["epic.{dataset}"], help="specs; {dataset}")
    parser.add_argument("--num", type=int, default=48, help="probe maps (48)")
    parser.add_argument("--seed", type=int, default=PROBE_SEED)
    parser.add_argument("--out", type=Path, required=True, help="folder for the .npy pairs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    from epic_zoo.hub import list_pretrained

    torch.set_num_threads(args.threads)
    rows = []
    for probe in args.probes:
        folder = simulate_probe(probe, args.num, args.out, args.seed)
        dataset, _ = PROBES[probe]
        for template in args.models:
            spec = template.format(dataset=dataset)
            if "." in spec and not Path(spec).exists() and spec not in list_pretrained():
                print(f"{probe}: skipped {spec} (not registered)", file=sys.stderr)
                continue
            row = check(probe, spec, folder)
            rows.append(row)
            print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
