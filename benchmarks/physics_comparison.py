"""Physics guidance at equal small budget: epic vs epic-phys, semi- vs supervised, refinement.

For each dataset it generates a small synthetic split (default 200 train /
25 val / 50 test, every 4th ms, float32) into a cache outside the repo and
trains four runs through the Hydra runner (:func:`epic_zoo.run.train`), all
with the same data, batch size, epochs and seed:

- ``epic``: ``recipe=epic`` (supervised L1);
- ``epic-phys``: ``recipe=epic_phys`` (L1 + physics loss);
- ``sup-50``: ``recipe=epic_semi task.physics.weight=0`` (L1 on the labelled half only);
- ``semi-50``: ``recipe=epic_semi`` (L1 on the labelled half, physics loss
  on the unlabelled half first, :class:`~epic_zoo.tasks.physics_inversion.PhysicsInversionTask`).

Each run's best checkpoint (by validation MAE, the one the runner tests) is
scored with :func:`epic_zoo.evaluation.evaluate_model`, the function behind
``python -m epic_zoo.evaluate``: SSIM, MAE, and the raw relative data misfit
(all shots, whole record) on the first ``--misfit-samples`` test samples.
Then ``epic``'s predictions of the first ``--refine-samples`` test samples
are refined (``--refine-iterations`` FWI iterations, the same function) and
scored before and after. Finally one training step of epic and of epic-phys
is timed on the same batch (``--step-repeats`` repeats, median), which is
the cost of the physics loss per step.

    python benchmarks/physics_comparison.py            # ~25 min on one shared core
    python benchmarks/physics_comparison.py --datasets flatvel-a --epochs 2 --train 48

Runs live in ``--runs`` (a rerun reuses finished runs, so a killed benchmark
continues); results go to ``benchmarks/results/physics_comparison.{json,md}``.
The CPU is shared, so seconds carry that noise.
"""

from __future__ import annotations

import argparse
import os


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["flatvel-a", "curvevel-a", "flatfault-a"])
    parser.add_argument("--train", type=int, default=200, help="training samples (200)")
    parser.add_argument("--val", type=int, default=25, help="validation samples (25)")
    parser.add_argument("--test", type=int, default=50, help="test samples (50)")
    parser.add_argument("--time-stride", type=int, default=4, help="ms between kept samples (4)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of every run (6)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (16)")
    parser.add_argument(
        "--misfit-samples", type=int, default=16, help="test samples scored by data misfit (16)"
    )
    parser.add_argument(
        "--refine-samples", type=int, default=4, help="test samples refined (4; 0 = none)"
    )
    parser.add_argument(
        "--refine-iterations",
        type=int,
        default=10,
        help="refinement iterations (10): the default schedule of epic_zoo.refine scaled to about N",
    )
    parser.add_argument(
        "--step-repeats", type=int, default=3, help="timed training steps per task (3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument(
        "--root",
        default=None,
        help="data cache root (default: $EPIC_ZOO_DATA or ~/.cache/epic_zoo/data)",
    )
    parser.add_argument("--runs", default="runs/physics_comparison", help="run folders")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args()
    if args.root is None:
        from epic_zoo.data.store import default_root

        args.root = str(default_root())
    return args


if __name__ == "__main__":  # thread counts must be set before torch starts its pools
    ARGS = _parse()
    os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from epic_zoo.data.datamodule import FWIDataModule  # noqa: E402
from epic_zoo.data.generate import ensure_data  # noqa: E402
from epic_zoo.data.profiles import Profile  # noqa: E402
from epic_zoo.data.store import H5Split, profile_root  # noqa: E402
from epic_zoo.evaluation import evaluate_model  # noqa: E402
from epic_zoo.models import load_model  # noqa: E402
from epic_zoo.provenance import cpu_name, git_commit  # noqa: E402
from epic_zoo.run import (  # noqa: E402
    config_dir,
    model_kwargs_for,
    train,
)
from epic_zoo.run_layout import RESULTS_FILE  # noqa: E402
from epic_zoo.tasks.inversion import InversionTask, to_plain  # noqa: E402
from epic_zoo.tasks.physics_inversion import PhysicsInversionTask  # noqa: E402

VARIANTS: dict[str, list[str]] = {
    "epic": ["recipe=epic"],
    "epic-phys": ["recipe=epic_phys"],
    "sup-50": ["recipe=epic_semi", "task.physics.weight=0"],
    "semi-50": ["recipe=epic_semi"],
}
"""Run name -> Hydra overrides that make it."""
SCORES: tuple[str, ...] = ("ssim", "ssim_openfwi", "mae", "mae_ms")


def profile(args: argparse.Namespace) -> Profile:
    return Profile(
        f"physbench-{args.train}-{args.val}-{args.test}-stride{args.time_stride}",
        train=args.train,
        val=args.val,
        test=args.test,
        time_stride=args.time_stride,
        dtype="float32",
        shard_size=50,
    )


def overrides(args: argparse.Namespace, dataset: str, run_dir: Path) -> list[str]:
    """What every run shares: data, budget, seed, quiet trainer."""
    prof = profile(args)
    mapping = ",".join(f"{k}:{v}" for k, v in prof.as_dict().items())
    return [
        f"data.dataset={dataset}",
        f"data.profile={{{mapping}}}",
        f"data.root={args.root}",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.num_sanity_val_steps=0",
        "task.num_panels=0",
        f"threads={args.threads}",
        "seed=0",
        f"run_dir={run_dir}",
    ]


def compose_cfg(args: argparse.Namespace, variant: str, dataset: str, run_dir: Path):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("config", overrides=VARIANTS[variant] + overrides(args, dataset, run_dir))


def best_checkpoint(summary: dict[str, Any]) -> Path:
    """The checkpoint the runner tested: best by ``val/mae`` (``results.json`` ``checkpoint``)."""
    return Path(summary["checkpoint"])


def train_variant(args: argparse.Namespace, variant: str, dataset: str) -> dict[str, Any]:
    """Train (or reuse) one run; returns its results.json."""
    run_dir = Path(args.runs) / dataset / variant
    results = run_dir / RESULTS_FILE
    if not results.is_file():
        print(f"== training {variant} on {dataset}", flush=True)
        train(compose_cfg(args, variant, dataset, run_dir))
    return json.loads(results.read_text())


def test_split(args: argparse.Namespace, dataset: str) -> H5Split:
    return H5Split(profile_root(args.root, profile(args), 0) / dataset / "test")


def evaluate_run(args: argparse.Namespace, variant: str, dataset: str) -> dict[str, Any]:
    summary = train_variant(args, variant, dataset)
    model = load_model(str(best_checkpoint(summary)))
    result = evaluate_model(
        model, test_split(args, dataset), misfit=True, physics_limit=args.misfit_samples
    )
    row = {"variant": variant, "dataset": dataset, **{k: result[k] for k in SCORES}}
    row["misfit"] = result["misfit"]
    row["misfit_worst_device"] = max(result["misfit_per_device"])
    row["train_seconds"] = summary["wall_time_s"]
    row["steps"] = summary["global_step"]
    row["checkpoint"] = best_checkpoint(summary).stem
    return row


def refine_row(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """Refine epic's first test predictions; scores before and after."""
    summary = train_variant(args, "epic", dataset)
    model = load_model(str(best_checkpoint(summary)))
    result = evaluate_model(
        model,
        test_split(args, dataset),
        limit=args.refine_samples,
        refine_iterations=args.refine_iterations,
        physics_limit=args.refine_samples,
    )["refine"]
    return {
        "dataset": dataset,
        "samples": result["samples"],
        "iterations": result["iterations"],
        "refinement": "epic_zoo.refine default schedule, scaled to the iterations",
        **{f"{k}_before": v for k, v in result["before"].items()},
        **{f"{k}_after": v for k, v in result["after"].items()},
        "seconds": result["seconds"],
        "seconds_per_sample_iteration": result["seconds"]
        / max(1, result["samples"] * result["iterations"]),
    }


def step_cost(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """Median seconds of one optimiser step (forward, loss, backward, AdamW) of epic and epic-phys."""
    cfg = compose_cfg(args, "epic-phys", dataset, Path(args.runs) / "unused")
    dm = FWIDataModule(
        dataset, profile(args), root=args.root, batch_size=args.batch_size, generate=False
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    kwargs = model_kwargs_for(cfg.model, dm)
    physics = to_plain(cfg.task.physics)
    tasks = {
        "epic": InversionTask("epic", kwargs),
        "epic-phys": PhysicsInversionTask(
            "epic",
            kwargs,
            physics=physics,
            dataset_name=dataset,
            data_time_stride=args.time_stride,
        ),
    }
    out: dict[str, Any] = {"batch_size": args.batch_size, "physics": physics}
    for name, task in tasks.items():
        optimizer = torch.optim.AdamW(task.parameters(), lr=1e-3)
        times = []
        for repeat in range(args.step_repeats + 1):  # the first (warm-up) is not timed
            started = time.perf_counter()
            optimizer.zero_grad()
            with warnings.catch_warnings():  # self.log() outside a Trainer warns
                warnings.simplefilter("ignore")
                loss = task.training_step(batch, 0)
            loss.backward()
            optimizer.step()
            if repeat:
                times.append(time.perf_counter() - started)
        out[f"{name}_seconds"] = statistics.median(times)
    out["ratio"] = out["epic-phys_seconds"] / out["epic_seconds"]
    return out


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "command": "python benchmarks/physics_comparison.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k not in ("root", "runs", "out")
        ),
        "data": profile(args).as_dict(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "load_average": os.getloadavg(),
        "commit": git_commit(short=True) or "unknown",
    }


def _f(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    rows, refs, cost = result["runs"], result["refinement"], result["step_cost"]
    c = result["conditions"]
    lines = [
        "# Physics guidance at equal budget",
        "",
        f"Command: `{c['command']}`",
        "",
        f"Data: synthetic, {c['data']['train']} train / {c['data']['val']} val / "
        f"{c['data']['test']} test samples per dataset, every {c['data']['time_stride']}th ms. "
        f"Every run: same data, batch size, epochs ({result['epochs']}) and seed, scored "
        "with its best checkpoint by val/mae (listed), as the runner tests it. "
        "torch "
        f"{c['torch']}, {c['threads']} thread(s) on a shared CPU (load {c['load_average'][0]:.1f}).",
        "",
        "SSIM (torchmetrics) and MAE on the test split (MAE normalised, x1500 = m/s); misfit = "
        "raw relative L2 data misfit (all shots, whole record) of the first "
        f"{result['misfit_samples']} test samples. Seconds: whole run (training, validation, test).",
        "",
        "| dataset | run | SSIM | MAE | MAE m/s | misfit | steps | seconds | checkpoint |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {_f(r['ssim'])} | {_f(r['mae'], 4)} | "
            f"{_f(r['mae_ms'], 1)} | {_f(r['misfit'])} | {r['steps']} | {r['train_seconds']:.0f} "
            f"| {r['checkpoint']} |"
        )
    lines += [
        "",
        f"## Cost of the physics loss per step (batch {cost['batch_size']}, {cost['dataset']})",
        "",
        f"epic: {cost['epic_seconds']:.2f} s per optimiser step; epic-phys: "
        f"{cost['epic-phys_seconds']:.2f} s ({cost['ratio']:.1f}x), physics settings "
        f"`{json.dumps(cost['physics'])}`.",
    ]
    if refs:
        lines += [
            "",
            "## Refinement of epic's predictions",
            "",
            "| dataset | samples | iterations | SSIM before -> after | MAE m/s before -> after "
            "| misfit before -> after | s per sample-iteration |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in refs:
            lines.append(
                f"| {r['dataset']} | {r['samples']} | {r['iterations']} | "
                f"{_f(r['ssim_before'])} -> {_f(r['ssim_after'])} | "
                f"{_f(r['mae_ms_before'], 1)} -> {_f(r['mae_ms_after'], 1)} | "
                f"{_f(r['misfit_before'])} -> {_f(r['misfit_after'])} | "
                f"{r['seconds_per_sample_iteration']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results"
    prof = profile(args)
    for dataset in args.datasets:
        ensure_data(dataset, prof, args.root)
    rows, refs = [], []
    for dataset in args.datasets:  # score each run while its model code is the one it trained
        rows += [evaluate_run(args, variant, dataset) for variant in VARIANTS]
        if args.refine_samples:
            refs.append(refine_row(args, dataset))
    cost = {"dataset": args.datasets[0], **step_cost(args, args.datasets[0])}
    result = {
        "conditions": conditions(args),
        "epochs": args.epochs,
        "misfit_samples": args.misfit_samples,
        "runs": rows,
        "refinement": refs,
        "step_cost": cost,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "physics_comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "physics_comparison.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main(ARGS)
