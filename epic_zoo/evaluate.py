"""Evaluate a model on any FWI test data: MAE, RMSE, two SSIMs, payload bytes.

Command line (``python -m epic_zoo.evaluate --help``)::

    python -m epic_zoo.evaluate --model epic.flatvel-a --data DATA [--dataset flatvel-a] \\
        [--json OUT.json] [--figure OUT.png] [--batch-size 16] \\
        [--misfit] [--refine [N]] [--physics-limit 8]

``--model`` is a pretrained name (``epic.flatvel-a``), a Hub-format folder, a
Lightning ``.ckpt`` or a run folder holding one. ``--data`` is an epic_zoo
HDF5 shard, split folder (``.../flatvel-a/test``) or dataset folder (its
``test/`` split is used), or a folder of OpenFWI ``.npy`` pairs (every pair
present, unless ``--split``). Metrics and the wave-equation checks are
described in :mod:`epic_zoo.evaluation`, the library this CLI calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

import epic_zoo
from epic_zoo.data.datamodule import FWIDataset
from epic_zoo.evaluation import (
    METRIC_KEYS,
    PHYSICS_LIMIT,
    REFINE_METRIC_KEYS,
    evaluate_model,
    model_contract,
    open_data,
    save_panels,
)


def load_model(name_or_path: str, *, map_location: str = "cpu") -> nn.Module:
    """Deprecated: use :func:`epic_zoo.models.load_model` (same specs, same return)."""
    from epic_zoo.models.factory import load_model as load

    warnings.warn(
        "epic_zoo.evaluate.load_model is deprecated and will be removed in the next release; "
        "use epic_zoo.models.load_model",
        DeprecationWarning,
        stacklevel=2,
    )
    return load(name_or_path, map_location=map_location)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.evaluate",
        description="Evaluate a model (pretrained name, Hub folder, .ckpt or run folder) on FWI data.",
    )
    parser.add_argument(
        "--model", required=True, help="pretrained name, Hub-format folder, .ckpt or run folder"
    )
    parser.add_argument(
        "--data", required=True, help="epic_zoo HDF5 file/folder or OpenFWI .npy folder"
    )
    parser.add_argument("--dataset", help="dataset name for .npy folders (e.g. flatvel-a)")
    parser.add_argument(
        "--split", choices=("train", "test"), help="official files (.npy) / split folder to use"
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--figure", help="write a velocity-map panel PNG of the first samples")
    parser.add_argument(
        "--force", action="store_true", help="overwrite --json / --figure files that exist"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="samples per forward pass (16)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument(
        "--misfit",
        action="store_true",
        help="also report the data misfit of the predicted maps (wave-equation simulation)",
    )
    parser.add_argument(
        "--refine",
        type=_refine_setting,
        nargs="?",
        const="default",
        default=0,
        metavar="N",
        help="refine the predictions by full-waveform inversion (default schedule; N: about N "
        "L-BFGS iterations), report before/after",
    )
    parser.add_argument(
        "--physics-limit",
        type=int,
        default=PHYSICS_LIMIT,
        metavar="K",
        help=f"--misfit / --refine cover only the first K samples ({PHYSICS_LIMIT}; slow on a CPU)",
    )
    return parser


def _refine_setting(text: str) -> int | str:
    """``--refine N``: a whole number of iterations >= 1 (``default`` when given alone)."""
    if text == "default":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--refine {text}: give a whole number of iterations >= 1, or --refine alone "
            "for the default schedule"
        )
    return value


def _check_writable(path: str | Path, flag: str) -> None:
    """Raise ``ValueError`` if ``path`` cannot be written (checked before any work)."""
    path = Path(path)
    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as err:
        raise ValueError(
            f"{flag} {path}: cannot write there ({err.strerror or err}); pick a writable file path"
        ) from err
    if not existed:
        path.unlink()


def _check_arguments(args: argparse.Namespace) -> None:
    """Bad names, counts and output paths as one-line errors, before loading or computing."""
    from epic_zoo.data.catalog import DATASETS, get_dataset

    if args.dataset is not None:
        try:
            args.dataset = get_dataset(args.dataset).name
        except KeyError:
            raise ValueError(
                f"--dataset {args.dataset!r} is not a dataset; use one of {', '.join(DATASETS)}"
            ) from None
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: evaluate at least 1 sample (or omit --limit)")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size} must be >= 1")
    for flag, path in (("--json", args.json), ("--figure", args.figure)):
        if path and Path(path).exists() and not Path(path).is_dir():
            if not Path(path).is_file():  # a pipe or device: opening it could block
                raise ValueError(f"{flag} {path} is not a regular file; choose another file")
            if not args.force:
                raise ValueError(
                    f"{flag} {path} already exists; pass --force to overwrite it, "
                    "or choose another file"
                )
        if path:
            _check_writable(path, flag)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m epic_zoo.evaluate``; expected failures are one line, exit 2."""
    args = build_parser().parse_args(argv)
    from safetensors import SafetensorError

    from epic_zoo.models.builder import check_device
    from epic_zoo.models.factory import load_model as load
    from epic_zoo.weights.errors import (
        HubFormatError,
        PretrainedUnavailableError,
        UnknownPretrainedError,
    )

    try:
        _check_arguments(args)
        check_device(args.device)
        model = load(args.model, map_location=args.device)
        stored = model_contract(model)
        trained_on = stored.dataset if stored is not None else None
        source = open_data(args.data, args.dataset or trained_on, args.split)
        contract = stored or model_contract(model, str(source.attrs["dataset"]))
        dataset = FWIDataset.for_contract(source, contract)
        results = evaluate_model(
            model,
            dataset,
            batch_size=args.batch_size,
            device=args.device,
            limit=args.limit,
            progress=True,
            misfit=args.misfit,
            refine_iterations=args.refine,
            physics_limit=args.physics_limit,
        )
    except (
        UnknownPretrainedError,
        HubFormatError,
        PretrainedUnavailableError,
        ValueError,
        FileNotFoundError,
        SafetensorError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data_name = dataset.dataset_name
    if trained_on and trained_on != data_name:
        print(
            f"note: {args.model} was trained on {trained_on}, the data are {data_name}",
            file=sys.stderr,
        )
    record = {
        "model": args.model,
        "architecture": model.config.get("name"),
        "data": str(args.data),
        **dataset.record(),  # which records: dataset and stride
        **results,
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
        "device": str(args.device),
    }
    print(f"{args.model} on {data_name} ({results['num_samples']} samples, {args.data}):")
    for key in METRIC_KEYS:
        print(f"  {key:13s} {results[key]:10.4f}")
    ratio = results["raw_bytes_per_device"] / results["payload_bytes_per_device"]
    print(
        f"  payload       {results['payload_bytes_per_device']:10d} bytes/device/sample "
        f"({results['payload_kind']}; raw {results['raw_bytes_per_device']}, {ratio:.0f}x smaller)"
    )
    if "misfit" in results:
        devices = " ".join(f"{v:.4f}" for v in results["misfit_per_device"])
        print(
            f"  misfit        {results['misfit']:10.4f} (data misfit, first "
            f"{results['misfit_samples']} samples; per device {devices})"
        )
    if "refine" in results:
        ref = results["refine"]
        print(
            f"refinement: {ref['iterations']} FWI iterations on the first {ref['samples']} "
            f"samples, {ref['seconds']:.1f} s ({ref['cpu_seconds']:.1f} CPU-s, "
            f"{ref['threads']} threads)"
        )
        print(f"  {'':13s} {'before':>10s} {'after':>10s}")
        for key in REFINE_METRIC_KEYS:
            print(f"  {key:13s} {ref['before'][key]:10.4f} {ref['after'][key]:10.4f}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    if args.figure:
        print(f"wrote {save_panels(model, dataset, args.figure, device=args.device)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
