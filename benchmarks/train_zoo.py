"""Train the zoo: every (recipe, dataset) pair through the real runner, several at a time.

This is how the committed sweep and the pretrained weights were made (see
docs/fidelity.md, "Reproduce", for the exact command and budget). Each pair is one
call of :func:`epic_zoo.run.train_from_overrides` in its own process, writing
``{runs}/{recipe_name}/{dataset}/results.json`` (the runner's name for the
recipe at that scale: ``epic`` at ``--scale lite`` is ``epic_lite``); a pair whose results file exists is
skipped, and an interrupted pair resumes from its ``last.ckpt``.

Example (the lite CPU scale, two datasets, two models, one job at a time)::

    python benchmarks/train_zoo.py --datasets flatvel-a curvevel-a \\
        --recipes epic inversionnet --scale lite --runs runs/zoo --jobs 1

On a GPU machine add ``--trainer gpu --jobs 6``: the GPU is shared by the jobs.
``--deadline-min`` caps every job's training time (Lightning ``max_time``) so
the whole sweep ends in time; the epochs each job actually ran are recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.profiles import Profile, get_profile
from epic_zoo.run_layout import RESULTS_FILE

SWEEP_RECIPES = ("epic", "epic_equal", "epic_isolated", "split", "federated", "inversionnet")


def sweep_profile(name: str, sizes: list[int] | None) -> Profile:
    """The named profile, or a copy of it with other (train, val, test) sizes."""
    base = get_profile(name)
    if not sizes:
        return base
    train, val, test = sizes
    return dataclasses.replace(base, name=f"{base.name}-{train}", train=train, val=val, test=test)


def _generate(args: tuple[str, Profile, str | None, str, int]) -> str:
    """Generate one dataset's profile splits (worker process)."""
    dataset, profile, root, device, seed = args
    import torch

    torch.set_num_threads(1)
    from epic_zoo.data.generate import ensure_data

    ensure_data(dataset, profile=profile, root=root, seed=seed, device=device, progress=False)
    return dataset


def _train(job: dict) -> dict:
    """Train and test one (recipe, dataset) pair (worker process)."""
    import torch

    torch.set_num_threads(job["threads"])
    from epic_zoo.run import train_from_overrides

    run_dir = Path(job["run_dir"])
    log = run_dir / "train.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            summary = train_from_overrides(job["overrides"])
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - one failed job must not stop the sweep
            summary, status = {"error": repr(exc)}, "failed"
    return {
        "recipe": job["recipe"],
        "dataset": job["dataset"],
        "status": status,
        "seconds": round(time.time() - started, 1),
        "metrics": summary.get("metrics", {}),
        "epochs": summary.get("epochs"),
        "error": summary.get("error"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(DATASET_NAMES),
        help="dataset names (default: all ten)",
    )
    parser.add_argument(
        "--recipes", nargs="+", default=list(SWEEP_RECIPES), help="runner recipes to train"
    )
    parser.add_argument(
        "--scale", default="lite", help="runner scale for every recipe (lite | full | none)"
    )
    parser.add_argument("--runs", default="runs/zoo", help="runs root: {runs}/{recipe}/{dataset}")
    parser.add_argument(
        "--data-root", default=None, help="data cache root (default: $EPIC_ZOO_DATA or ~/.cache)"
    )
    parser.add_argument("--profile", default="lite", help="data profile (tiny | lite | full)")
    parser.add_argument(
        "--epochs", type=int, default=30, help="epochs for every job (equal budget)"
    )
    parser.add_argument("--trainer", default="cpu", help="trainer config group: cpu | gpu | ddp")
    parser.add_argument("--jobs", type=int, default=1, help="jobs trained at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--data-workers", type=int, default=0, help="DataLoader workers per job")
    parser.add_argument(
        "--deadline-min",
        type=float,
        default=None,
        help="cap each job's training time so the sweep ends within this many minutes",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument(
        "--sizes",
        nargs=3,
        type=int,
        metavar=("TRAIN", "VAL", "TEST"),
        default=None,
        help="override the profile's split sizes (the profile is then named PROFILE-TRAIN)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use at most this many samples per split (data.limit)",
    )
    parser.add_argument(
        "--extra", nargs="*", default=[], help="extra runner overrides for every job"
    )
    parser.add_argument(
        "--summary",
        default=None,
        help="write the sweep summary JSON here (default {runs}/summary.json)",
    )
    args = parser.parse_args(argv)

    started = time.time()
    profile = sweep_profile(args.profile, args.sizes)
    profile_override = "{" + ",".join(f"{k}:{v}" for k, v in profile.as_dict().items()) + "}"
    device = "cuda" if args.trainer in ("gpu", "ddp") else "cpu"
    ctx = mp.get_context("spawn")
    print(
        f"train_zoo: generating {args.profile} data for {len(args.datasets)} datasets on {device}",
        flush=True,
    )
    with ctx.Pool(min(args.jobs, len(args.datasets))) as pool:
        for name in pool.imap_unordered(
            _generate, [(d, profile, args.data_root, device, args.seed) for d in args.datasets]
        ):
            print(f"  data ready: {name} ({time.time() - started:.0f} s)", flush=True)

    from epic_zoo.run import compose_config

    names = {  # the runner's run name, e.g. epic at scale lite -> epic_lite
        r: compose_config([f"recipe={r}", f"scale={args.scale}"]).recipe_name for r in args.recipes
    }
    jobs = []
    for dataset in args.datasets:  # dataset-major: a stopped sweep leaves whole datasets done
        for recipe in args.recipes:
            run_dir = Path(args.runs) / names[recipe] / dataset
            if (run_dir / RESULTS_FILE).is_file():
                continue
            overrides = [
                f"recipe={recipe}",
                f"scale={args.scale}",
                f"data.dataset={dataset}",
                f"data.profile={profile_override}",
                f"data.seed={args.seed}",
                f"data.num_workers={args.data_workers}",
                f"run_dir={run_dir}",
                f"trainer={args.trainer}",
                f"trainer.max_epochs={args.epochs}",
                "trainer.enable_progress_bar=false",
                "early_stopping.enabled=false",
            ]
            if args.limit:
                overrides.append(f"data.limit={args.limit}")
            if args.data_root:
                overrides.append(f"data.root={args.data_root}")
            overrides += list(args.extra)
            jobs.append(
                {
                    "recipe": names[recipe],
                    "dataset": dataset,
                    "run_dir": str(run_dir),
                    "overrides": overrides,
                    "threads": args.threads,
                }
            )

    if args.deadline_min and jobs:
        left_s = args.deadline_min * 60 - (time.time() - started)
        waves = -(-len(jobs) // args.jobs)
        per_job = max(30, int(left_s / waves) - 20)
        for job in jobs:
            job["overrides"].append(f"+trainer.max_time={{seconds:{per_job}}}")
        print(
            f"train_zoo: {len(jobs)} jobs in {waves} waves, each capped at {per_job} s of training",
            flush=True,
        )

    # Non-daemonic workers (unlike multiprocessing.Pool), so a job may start DataLoader workers.
    results = []
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_train, job) for job in jobs]
        for future in as_completed(futures):
            res = future.result()
            results.append(res)
            ssim = res["metrics"].get("test/ssim_openfwi", res["metrics"].get("test/ssim"))
            print(
                f"  [{len(results)}/{len(jobs)}] {res['recipe']} {res['dataset']}: {res['status']} "
                f"epochs={res['epochs']} ssim={ssim} ({res['seconds']} s)"
                + (f" error={res['error']}" if res["error"] else ""),
                flush=True,
            )

    summary_path = Path(args.summary or Path(args.runs) / "summary.json")
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(summary_path.read_text()) if summary_path.is_file() else {"jobs": []}
    summary = {
        "command": " ".join(
            [Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])
        ),
        "profile": profile.as_dict(),
        "epochs": args.epochs,
        "trainer": args.trainer,
        "wall_time_s": round(time.time() - started, 1),
        "jobs": previous["jobs"] + results,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    failed = [r for r in results if r["status"] != "ok"]
    print(
        f"train_zoo: {len(results) - len(failed)} ok, {len(failed)} failed, {time.time() - started:.0f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
