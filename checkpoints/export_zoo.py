"""Turn trained runs into the published zoo: Hub-format folders + registry entries.

Usage (from the repository root)::

    python checkpoints/export_zoo.py runs/epic_lite/* runs/inversionnet_lite/* \\
        --org ORG --staging ../zoo-staging [--tag TAG] [--push [--private]]

Each argument is a run folder written by ``python -m epic_zoo.run`` (with
``results.json`` and ``checkpoints/best-*.ckpt``), any folder holding one
checkpoint, or a ``.ckpt`` file. For each weight (named ``ARCH.DATASET`` from the
checkpoint, or ``ARCH.DATASET.TAG`` with ``--tag TAG``: a version of the weights
beside the default name, e.g. ``epic.flatvel-a.lite10k_100k_wsd``) the script

1. exports the Hub format (``model.safetensors``, ``config.json``, ``README.md``)
   into ``checkpoints/NAME/`` (``--out``) when the name matches ``--local`` (default
   ``epic*``: the small EPIC weights that work from a fresh clone), else into
   ``--staging/NAME/`` (not committed: the Hub is their only home);
2. records metrics on the first ``--check-num`` regenerated test samples
   (``check`` in the registry; the unit test re-measures them);
3. with ``--push``, uploads the folder to ``ORG/ARCH-DATASET`` and pins the
   returned commit as the entry's revision (needs ``HF_TOKEN`` or ``hf auth login``);
4. writes the entry to ``checkpoints/registry.json`` (``--out``).

Without ``--push`` the entries have no revision: committed weights load, the
others report "not published yet" until pushed.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
import tempfile
from pathlib import Path

import torch

from epic_zoo import hub
from epic_zoo.evaluation import METRIC_KEYS, regenerated_test_metrics
from epic_zoo.models import load_model

HERE = Path(__file__).resolve().parent
REPO_SIZE_BUDGET_MB = 150.0
"""Committed weights beyond this many MB get a warning (the repository aims at < 200 MB)."""


def weight_name(source: Path) -> str:
    """``ARCH.DATASET`` of a run folder or checkpoint (read from the checkpoint)."""
    checkpoint = source if source.suffix == ".ckpt" else hub.run_inputs(source)[0]
    info = load_model(checkpoint).source["info"]
    dataset = info["datamodule_hparams"].get("dataset")
    if dataset is None:
        raise hub.HubFormatError(
            f"{checkpoint}: no dataset recorded; export it with `hub push --dataset`"
        )
    return f"{info['hparams']['model_name']}.{dataset}"


def export_one(source: Path, args: argparse.Namespace, scratch: Path) -> hub.PretrainedInfo:
    """Export, check, optionally push and register one weight; returns its registry entry."""
    name = weight_name(source)
    if args.tag:
        name = hub.tagged_name(name, args.tag)
    local = any(fnmatch.fnmatch(name, pattern) for pattern in args.local)
    if not local and args.staging is None:
        raise SystemExit(
            f"{name} is not committed (--local {args.local}); pass --staging DIR for it"
        )
    folder = (args.out if local else Path(args.staging)) / name
    repo_id = f"{args.org}/{name.replace('.', '-')}"
    hub.export_any(source, folder, repo_id=repo_id, name=name)
    revision = None
    if args.push:
        result = hub.push(folder, repo_id, private=args.private, out=folder)
        revision = result.commit
        print(f"{name}: uploaded to {repo_id}@{revision}")
    entry = hub.register(
        folder, registry=args.registry, repo_id=repo_id, revision=revision, local=local
    )
    if entry.data.get("data_source", "synthetic") == "synthetic" and args.check_num > 0:
        model = load_model(folder)
        measured = regenerated_test_metrics(
            model, entry.dataset, entry.data, args.check_num, scratch
        )
        check = {
            "num": args.check_num,
            "seed": int(entry.data.get("seed", 0)),
            "metrics": {k: measured[k] for k in METRIC_KEYS},
        }
        entry = dataclasses.replace(entry, check=check)
        entries = hub.read_registry(args.registry)
        entries[name] = entry
        hub.write_registry(entries, args.registry)
    where = f"committed {folder}" if local else f"staged {folder}"
    print(f"{name}: {where}, {entry.size_bytes / 1e6:.1f} MB, metrics {entry.metrics}")
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="run folders or .ckpt files")
    parser.add_argument("--org", required=True, help="Hub organisation or user of the repos")
    parser.add_argument(
        "--local",
        action="append",
        default=None,
        help="glob of names committed under checkpoints/ (repeatable; default 'epic*')",
    )
    parser.add_argument("--staging", help="folder for the weights that are not committed")
    parser.add_argument(
        "--out", type=Path, default=HERE, help="folder of registry.json and the committed weights"
    )
    parser.add_argument(
        "--check-num", type=int, default=8, help="test samples of the quick check (8)"
    )
    parser.add_argument(
        "--tag",
        help="register the weights as ARCH.DATASET.TAG (a version beside the default name), "
        "e.g. lite10k_100k_wsd",
    )
    parser.add_argument("--push", action="store_true", help="upload and pin the Hub revision")
    parser.add_argument("--private", action="store_true", help="create private Hub repos")
    args = parser.parse_args(argv)
    args.local = args.local or ["epic*"]
    args.registry = args.out / hub.REGISTRY_NAME
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="epic_zoo_check_") as scratch:
        entries = [export_one(source, args, Path(scratch)) for source in args.sources]
    committed = sum(e.size_bytes or 0 for e in hub.read_registry(args.registry).values() if e.local)
    print(f"{len(entries)} weights exported; committed weights now {committed / 1e6:.1f} MB")
    if committed / 1e6 > REPO_SIZE_BUDGET_MB:
        print(f"warning: committed weights exceed {REPO_SIZE_BUDGET_MB:.0f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
