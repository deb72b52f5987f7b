"""The issue-24 plan as a resumable job queue: data, ten EPIC weights, WSD scaling runs, branches, union.

    python benchmarks/scale_queue.py --work ~/scale_work --lanes 14            # run it all
    python benchmarks/scale_queue.py --work ~/scale_work --dry-run             # plan, status, CPU estimate
    python benchmarks/scale_queue.py --work ~/scale_work --only 'wsd/*' --lanes 4

Every job is a separate process with one torch thread (``threads=1``,
``OMP_NUM_THREADS=1``); ``--lanes N`` run at a time. The queue is
resumable: a job whose run folder holds a finished ``results.json`` (or
whose data are complete) is skipped, a killed training run continues from
its ``last.ckpt`` (:mod:`epic_zoo.run`), a killed generation keeps its
finished shards (:mod:`epic_zoo.data.generate`). So stopping the queue and
starting it again (after a crash, a reboot, on another day) loses at most
the epoch each lane was in. A job that fails is logged and left for the next
start; the others go on.

The plan (``--profile lite10k``, budgets in samples seen; docs/scaling.md):

- ``data/D``: the ten datasets' train/val/test splits of the profile;
- ``zoo/epic/D``: EPIC under the fair protocol (``recipe=epic scale=lite10k``:
  cosine schedule, 10 epochs = 100,000 samples) on each dataset, with the
  recipe residuals on (:data:`ZOO_OVERRIDES`, as the 30,000-sample zoo): the
  scaling runs leave them off, and on Style-B such weights fail the
  recipe-port check (``benchmarks/results/recipe_port/README.md``);
- ``wsd/M/D``: one long warmup-stable-decay run per (model, dataset) of the
  scaling study (EPIC and InversionNet on flatvel-a and curvefault-b, EPIC on
  style-b) to the largest budget (warm-up 100 steps = 1,600 samples, the
  last 20 % decaying), saving stable-phase checkpoints at the branch points
  (``checkpoint.at_samples``);
- ``decay/M/D/B``: a decay of ``decay_fraction x B`` samples branched from the
  B-sample checkpoint (:mod:`epic_zoo.branch`), each in its own run folder;
  it starts as soon as its checkpoint exists;
- ``seed1/M/D``: the same long run with ``seed=1`` (seed spread at the largest budget);
  with ``--seed1-branch B`` it saves the B-sample checkpoint, stops there
  (its stable phase is the same as the full run's: the WSD learning rate
  does not depend on where the run ends before its decay), and
  ``seed1/decay/M/D/B`` branches the same decay from it: the seed spread at
  the branch budget, for a pair whose full long run is out of reach;
- ``union/epic/all``: one EPIC on the union of the ten datasets, to the same
  100,000 samples seen in the same 10 epochs of 10,000 samples, each epoch a
  fresh random draw from the 100,000 union maps (``trainer.limit_train_batches``;
  about 65,000 distinct maps seen), so its learning curve, checkpoints and
  resume points match the specialists'; with the zoo's recipe residuals (each
  sample gets its own dataset's; :mod:`epic_zoo.data.union`).

Each finished run's ``results.json``, learning curve and CSV logs are copied
to ``--records`` (default ``benchmarks/results/scaling``) under the job's
name, machine paths replaced by ``runs/`` (:func:`epic_zoo.evidence.copy_run_records`),
ready to commit; ``benchmarks/scaling.py`` reads them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from epic_zoo.branch import samples_checkpoint
from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.profiles import get_profile
from epic_zoo.evidence import copy_run_records
from epic_zoo.run_layout import RESULTS_FILE

REPO = Path(__file__).resolve().parents[1]
SCALING_RUNS: tuple[tuple[str, str], ...] = (
    ("epic", "flatvel-a"),
    ("inversionnet", "flatvel-a"),
    ("epic", "curvefault-b"),
    ("inversionnet", "curvefault-b"),
    ("epic", "style-b"),
)
"""(model recipe, dataset) of the scaling study."""
BUDGETS: tuple[int, ...] = (2_500, 5_000, 10_000, 20_000, 40_000, 80_000)
"""Branch points (samples seen); with decay_fraction 0.2 the branches end at 3,000 ... 96,000."""
SECONDS_PER_SAMPLE: dict[str, float] = {"epic": 0.048, "inversionnet": 0.144}
"""CPU cost of training, one core, validation included: EPIC 7-9 min per 10,000 samples
(measured on the committed runs), InversionNet about 3x (issue 24)."""


def _seconds_per_sample(recipe: str) -> float:
    """:data:`SECONDS_PER_SAMPLE` of ``recipe`` (EPIC's for a recipe not measured)."""
    return SECONDS_PER_SAMPLE.get(recipe, SECONDS_PER_SAMPLE["epic"])


SECONDS_PER_MAP = 1.0 / 6.0
"""Generation: about 6 maps per second per core (issue 24)."""


class Job(NamedTuple):
    """One unit of work.

    ``kind`` ``"data"`` or ``"train"``; ``args`` the command after the
    interpreter; ``run_dir`` its output folder; ``needs`` files that must
    exist before it starts (budget checkpoints) and ``after`` jobs that must
    be done; ``seconds`` its estimated CPU time; ``until`` (long runs only
    needed up to a branch point) the file whose appearance ends it.
    """

    name: str
    kind: str
    args: tuple[str, ...]
    run_dir: Path
    needs: tuple[Path, ...]
    after: tuple[str, ...]
    seconds: float
    until: Path | None = None
    """A long run needed only up to a branch point: the queue stops it once this file exists."""


class Settings(NamedTuple):
    """What the plan is built from (the defaults are the issue's plan)."""

    work: Path
    profile: str = "lite10k"
    datasets: tuple[str, ...] = DATASET_NAMES
    scaling: tuple[tuple[str, str], ...] = SCALING_RUNS
    budgets: tuple[int, ...] = BUDGETS
    epochs: int = 10
    decay_fraction: float = 0.2
    warmup_steps: int = 100
    second_seed: bool = True
    seed1_branch: int | None = None
    union: bool = True
    zoo: bool = True
    overrides: tuple[str, ...] = ()
    model_overrides: dict[str, tuple[str, ...]] = {}


UNION_BATCH = 16
"""The union model's batch size (the recipe's): it sizes the union's epochs in batches."""

ZOO_OVERRIDES: tuple[str, ...] = ("data.recipe_residuals.p=0.5",)
"""Overrides of the zoo's weights and the union model: published weights must hold on recipe-port records."""


def _data_done(settings: Settings, dataset: str) -> Path:
    return settings.work / "data-done" / f"{settings.profile}-{dataset}"


def _train_args(settings: Settings, recipe: str, run_dir: Path, *extra: str) -> tuple[str, ...]:
    return (
        "-m",
        "epic_zoo.run",
        f"recipe={recipe}",
        f"scale={settings.profile}" if settings.profile in ("lite", "lite10k") else "scale=lite",
        f"data.profile={settings.profile}",
        f"data.root={settings.work / 'data'}",
        "data.generate=false",
        f"run_dir={run_dir}",
        "threads=1",
        "trainer.enable_progress_bar=false",
        f"trainer.max_epochs={settings.epochs}",
        *settings.model_overrides.get(recipe, ()),
        *settings.overrides,
        *extra,
    )


def _wsd(settings: Settings) -> tuple[str, ...]:
    """The long runs' schedule: a fixed warm-up (shorter than the first budget), WSD decay."""
    return (
        "task.scheduler=wsd",
        "task.warmup_fraction=0",
        f"task.warmup_steps={settings.warmup_steps}",
        f"task.decay_fraction={settings.decay_fraction}",
    )


def _branch_job(
    settings: Settings,
    name: str,
    recipe: str,
    dataset: str,
    parent_run: Path,
    budget: int,
    *extra: str,
) -> Job:
    """``{name}/{budget}``: a decay of ``decay_fraction x budget`` samples branched from the
    ``budget``-sample checkpoint of ``parent_run``; it starts once that checkpoint exists."""
    parent = samples_checkpoint(parent_run, budget)
    branch_dir = settings.work / "runs" / name / str(budget)
    cost = _seconds_per_sample(recipe)
    return Job(
        f"{name}/{budget}",
        "train",
        _train_args(
            settings,
            recipe,
            branch_dir,
            f"data.dataset={dataset}",
            *extra,
            f"branch.parent={parent}",
            f"branch.decay_fraction={settings.decay_fraction}",
        ),
        branch_dir,
        (parent.with_suffix(".json"),),
        (f"data/{dataset}",),
        settings.decay_fraction * budget * cost,
    )


def build_plan(settings: Settings) -> list[Job]:
    """The jobs in priority order (a free lane takes the first one that is ready)."""
    profile = get_profile(settings.profile)
    train_maps = int(profile.train or 0)
    per_epoch = train_maps
    runs = settings.work / "runs"
    jobs: list[Job] = []
    needed = set(settings.datasets) | {d for _, d in settings.scaling}
    for dataset in sorted(needed):
        maps = train_maps + int(profile.val or 0) + int(profile.test or 0)
        code = (
            "import sys; from pathlib import Path; from epic_zoo.data.generate import ensure_data; "
            "ensure_data(sys.argv[1], sys.argv[2], sys.argv[3], progress=False); "
            "Path(sys.argv[4]).parent.mkdir(parents=True, exist_ok=True); Path(sys.argv[4]).touch()"
        )
        args = ("-c", code, dataset, settings.profile, str(settings.work / "data"))
        done = _data_done(settings, dataset)
        jobs.append(
            Job(
                f"data/{dataset}",
                "data",
                (*args, str(done)),
                done.parent,
                (),
                (),
                maps * SECONDS_PER_MAP,
            )
        )
    for recipe, dataset in settings.scaling:
        run_dir = runs / "wsd" / recipe / dataset
        wsd = (*_wsd(settings), f"data.dataset={dataset}")
        cost = _seconds_per_sample(recipe)
        budgets = "[" + ",".join(str(b) for b in sorted(settings.budgets)) + "]"
        jobs.append(
            Job(
                f"wsd/{recipe}/{dataset}",
                "train",
                _train_args(settings, recipe, run_dir, *wsd, f"checkpoint.at_samples={budgets}"),
                run_dir,
                (),
                (f"data/{dataset}",),
                settings.epochs * per_epoch * cost,
            )
        )
        for budget in sorted(settings.budgets):
            jobs.append(
                _branch_job(settings, f"decay/{recipe}/{dataset}", recipe, dataset, run_dir, budget)
            )
    if settings.zoo:
        for dataset in settings.datasets:
            run_dir = runs / "zoo" / "epic" / dataset
            jobs.append(
                Job(
                    f"zoo/epic/{dataset}",
                    "train",
                    _train_args(
                        settings, "epic", run_dir, f"data.dataset={dataset}", *ZOO_OVERRIDES
                    ),
                    run_dir,
                    (),
                    (f"data/{dataset}",),
                    settings.epochs * per_epoch * SECONDS_PER_SAMPLE["epic"],
                )
            )
    if settings.second_seed:
        for recipe, dataset in settings.scaling:
            run_dir = runs / "seed1" / recipe / dataset
            cost = _seconds_per_sample(recipe)
            budget = settings.seed1_branch
            parent = samples_checkpoint(run_dir, budget) if budget else None
            jobs.append(
                Job(
                    f"seed1/{recipe}/{dataset}",
                    "train",
                    _train_args(
                        settings,
                        recipe,
                        run_dir,
                        *_wsd(settings),
                        f"data.dataset={dataset}",
                        "seed=1",
                        *((f"checkpoint.at_samples=[{budget}]",) if budget else ()),
                    ),
                    run_dir,
                    (),
                    (f"data/{dataset}",),
                    (budget or settings.epochs * per_epoch) * cost,
                    parent.with_suffix(".json") if parent else None,
                )
            )
            if budget:
                name = f"seed1/decay/{recipe}/{dataset}"
                jobs.append(_branch_job(settings, name, recipe, dataset, run_dir, budget, "seed=1"))
    if settings.union:
        run_dir = runs / "union" / "epic" / "all"
        names = "[" + ",".join(settings.datasets) + "]"
        union_samples = settings.epochs * per_epoch  # the same samples seen as one specialist
        # epochs of a specialist's length (a fresh random draw of the union each): the same
        # learning curve, checkpoints and resume points as the specialists beside it
        batches = max(1, per_epoch // UNION_BATCH)
        jobs.append(
            Job(
                "union/epic/all",
                "train",
                _train_args(
                    settings,
                    "epic",
                    run_dir,
                    f"data.dataset={names}",
                    f"trainer.max_epochs={settings.epochs}",
                    f"data.batch_size={UNION_BATCH}",
                    f"trainer.limit_train_batches={batches}",
                    *ZOO_OVERRIDES,  # beside the zoo's specialists, on the same recipe-port check
                ),
                run_dir,
                (),
                tuple(f"data/{d}" for d in settings.datasets),
                union_samples * SECONDS_PER_SAMPLE["epic"],
            )
        )
    return jobs


# --------------------------------------------------------------------------- state
def is_done(job: Job) -> bool:
    """Data: the marker written after every split was made. Training: a finished, tested
    results.json, or, for a long run needed only up to a branch point, that point's checkpoint."""
    if job.kind == "data":
        return Path(job.args[-1]).is_file()
    if job.until is not None:
        return job.until.is_file()
    path = job.run_dir / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    return bool((record.get("schedule") or {}).get("complete")) and bool(record.get("metrics"))


def is_ready(job: Job, done: set[str]) -> bool:
    return all(a in done for a in job.after) and all(p.is_file() for p in job.needs)


def copy_records(job: Job, settings: Settings, records: Path) -> Path:
    """Copy a finished run's records to ``records/{job name}`` (machine paths -> ``runs/``)."""
    dest = records / job.name
    copy_run_records(job.run_dir, dest, [str(settings.work / "runs"), str(settings.work)])
    return dest


def estimate(jobs: Sequence[Job]) -> float:
    """Core-hours of ``jobs`` (one thread each)."""
    return sum(j.seconds for j in jobs) / 3600.0


def run_queue(
    jobs: Sequence[Job],
    settings: Settings,
    *,
    lanes: int,
    records: Path | None,
    poll_s: float = 2.0,
    log=None,
) -> dict[str, str]:
    """Run ``jobs`` on ``lanes`` parallel processes until none is left that can run.

    Returns each job's final state: ``done`` (finished now), ``skipped``
    (finished before), ``failed`` (non-zero exit; its log names why) or
    ``blocked`` (waited on a failed job or a checkpoint that never came).
    """
    log = log or sys.stderr
    logs = settings.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    state: dict[str, str] = {}
    for job in jobs:
        if is_done(job):
            state[job.name] = "skipped"
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    try:
        while True:
            for name, (proc, handle) in list(running.items()):
                job = next(j for j in jobs if j.name == name)
                if job.until is not None and job.until.is_file():
                    # stopped at its branch point: no record (it is not a finished run)
                    proc.terminate()
                    proc.wait()
                    handle.close()
                    del running[name]
                    state[name] = "done"
                    print(
                        f"scale_queue: done {name} (stopped at {job.until.name})",
                        file=log,
                        flush=True,
                    )
                    continue
                if proc.poll() is None:
                    continue
                handle.close()
                del running[name]
                if proc.returncode == 0 and is_done(job):
                    state[name] = "done"
                    if records is not None and job.kind == "train" and job.until is None:
                        copy_records(job, settings, records)
                    print(f"scale_queue: done {name}", file=log, flush=True)
                else:
                    state[name] = "failed"
                    print(
                        f"scale_queue: FAILED {name} (exit {proc.returncode}); see {logs / _log_name(name)}",
                        file=log,
                        flush=True,
                    )
            finished = {n for n, s in state.items() if s in ("done", "skipped")}
            waiting = [j for j in jobs if j.name not in state and j.name not in running]
            while len(running) < lanes:
                job = next((j for j in waiting if is_ready(j, finished)), None)
                if job is None:
                    break
                waiting.remove(job)
                handle = (logs / _log_name(job.name)).open("a")
                handle.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {_command(job)}\n")
                handle.flush()
                proc = subprocess.Popen(
                    [sys.executable, *job.args],
                    cwd=REPO,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
                running[job.name] = (proc, handle)
                print(f"scale_queue: started {job.name} (pid {proc.pid})", file=log, flush=True)
            if not running:
                for job in waiting:
                    state[job.name] = "blocked"
                return state
            time.sleep(poll_s)
    finally:
        for proc, handle in running.values():  # only our own children, by their process
            proc.terminate()
            proc.wait()
            handle.close()


def _log_name(name: str) -> str:
    return name.replace("/", "__") + ".log"


def _command(job: Job) -> str:
    return shlex.join(["python", *job.args])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", required=True, type=Path, help="folder for data, runs and logs")
    parser.add_argument(
        "--lanes", type=int, default=1, help="jobs at a time, one core each (default 1)"
    )
    parser.add_argument(
        "--records",
        type=Path,
        default=REPO / "benchmarks" / "results" / "scaling",
        help="where finished runs' records are copied (default benchmarks/results/scaling)",
    )
    parser.add_argument(
        "--only", action="append", help="run only jobs matching this pattern (e.g. 'wsd/*')"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan, its status and CPU estimate"
    )
    parser.add_argument("--profile", default="lite10k", help="data profile (default lite10k)")
    parser.add_argument(
        "--budgets",
        type=lambda t: tuple(int(v) for v in t.split(",")),
        default=BUDGETS,
        help="branch points in samples seen, comma-separated",
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="epochs of the long runs (default 10)"
    )
    parser.add_argument("--no-second-seed", action="store_true", help="leave out the seed-1 runs")
    parser.add_argument(
        "--seed1-branch",
        type=int,
        default=None,
        metavar="B",
        help="seed-1 long runs stop at their B-sample checkpoint and a decay is branched from it "
        "(the seed spread at that budget; default: seed-1 runs go to the full length)",
    )
    parser.add_argument("--no-union", action="store_true", help="leave out the union model")
    args = parser.parse_args(argv)
    if args.lanes < 1:
        print(f"error: --lanes {args.lanes}: use at least 1", file=sys.stderr)
        return 2
    if args.seed1_branch is not None and args.seed1_branch < 1:
        print(
            f"error: --seed1-branch {args.seed1_branch}: give a budget of at least 1 sample "
            "(e.g. 40000), or leave it out for full-length seed-1 runs",
            file=sys.stderr,
        )
        return 2
    try:
        get_profile(args.profile)
    except KeyError as err:
        print(f"error: --profile: {err.args[0]}", file=sys.stderr)
        return 2
    settings = Settings(
        work=args.work.resolve(),
        profile=args.profile,
        budgets=args.budgets,
        epochs=args.epochs,
        second_seed=not args.no_second_seed,
        seed1_branch=args.seed1_branch,
        union=not args.no_union,
    )
    jobs = build_plan(settings)
    if args.only:
        picked = [j for j in jobs if any(fnmatch.fnmatch(j.name, p) for p in args.only)]
        names = {j.name for j in picked}
        # what the picked jobs wait for comes along (its data)
        jobs = [j for j in jobs if j.name in names or any(j.name in p.after for p in picked)]
    if args.dry_run:
        for job in jobs:
            status = "done" if is_done(job) else "todo"
            print(f"{status:5} {job.seconds / 3600:6.2f} h  {job.name}")
        todo = [j for j in jobs if not is_done(j)]
        print(
            f"{len(jobs)} jobs, {len(todo)} to do: {estimate(todo):.1f} core-hours "
            f"(~{estimate(todo) / args.lanes:.1f} h on {args.lanes} lane(s), longest job "
            f"{max((j.seconds for j in todo), default=0) / 3600:.1f} h)"
        )
        return 0
    state = run_queue(jobs, settings, lanes=args.lanes, records=args.records)
    counts = {
        s: sum(v == s for v in state.values()) for s in ("done", "skipped", "failed", "blocked")
    }
    print("scale_queue: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["failed"] or counts["blocked"] else 0


if __name__ == "__main__":
    sys.exit(main())
