"""Command line: ``python -m epic_zoo.data generate|import-openfwi|info``.

Examples::

    python -m epic_zoo.data generate --dataset flatvel-a --split train --num 1000 --out data
    python -m epic_zoo.data generate --dataset flatvel-a --split train --profile lite --out data
    python -m epic_zoo.data import-openfwi ~/openfwi/FlatVel_A --out data
    python -m epic_zoo.data info data/flatvel-a

Errors in the input (unknown dataset, bad arguments, missing or corrupt
files, an output folder that cannot be written: checked before any
simulation) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from epic_zoo.data.catalog import DATASET_NAMES, get_dataset
from epic_zoo.data.families import GENERATORS
from epic_zoo.data.profiles import PROFILES, get_profile
from epic_zoo.data.store import DTYPES, SHARD_GLOB, SPLITS, DataError, H5Split, split_count

_DEFAULTS = {"time_stride": 1, "dtype": "float32", "shard_size": 100}


def _shard_range(text: str) -> tuple[int, int]:
    try:
        start, end = (int(t) for t in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--shards {text!r}: use START:END, e.g. 0:10 for shards 0..9"
        ) from None
    return start, end


def _dataset_name(text: str) -> str:
    try:
        return get_dataset(text).name
    except KeyError as err:
        raise argparse.ArgumentTypeError(str(err.args[0])) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m epic_zoo.data`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.data",
        description="Generate, import and inspect epic_zoo FWI data (HDF5 shards).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser(
        "generate",
        help="generate synthetic velocity maps + seismic records into HDF5 shards",
        description="Generate {OUT}/{dataset}/{split}/shard-*.h5. Resumable: rerun the same "
        "command to finish an interrupted run; finished shards are kept.",
    )
    gen.add_argument(
        "--dataset", required=True, type=_dataset_name, help=f"one of {', '.join(DATASET_NAMES)}"
    )
    gen.add_argument(
        "--split", default="train", choices=SPLITS, help="split to generate (default train)"
    )
    gen.add_argument(
        "--num", type=_positive, help="number of samples (default: the profile's count)"
    )
    gen.add_argument(
        "--out", required=True, type=Path, help="store root; data go to OUT/DATASET/SPLIT"
    )
    gen.add_argument(
        "--profile",
        choices=list(PROFILES),
        help="take --num, --time-stride, --dtype and --shard-size defaults from this profile",
    )
    gen.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    gen.add_argument(
        "--time-stride",
        type=_positive,
        help="keep every N-th ms of the records (default 1, or the profile's)",
    )
    gen.add_argument(
        "--dtype",
        choices=DTYPES,
        help="storage precision of the records (default float32, or the profile's)",
    )
    gen.add_argument(
        "--shard-size",
        type=_positive,
        help="samples per shard file (default 100, or the profile's)",
    )
    gen.add_argument("--workers", type=_positive, default=1, help="parallel processes (default 1)")
    gen.add_argument(
        "--shards",
        type=_shard_range,
        help="only make shards START..END-1 (split work over cluster jobs)",
    )
    gen.add_argument("--device", help="torch device of the forward model, e.g. cuda (default cpu)")
    gen.add_argument(
        "--backend",
        default="deepwave",
        choices=("deepwave", "openfwi"),
        help="forward model (default deepwave)",
    )
    gen.add_argument(
        "--generator",
        choices=GENERATORS,
        help="laws of the velocity maps (default 'default', or the profile's; 'wide': "
        "more layers, in-layer gradients, wider velocity ranges)",
    )
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")

    imp = sub.add_parser(
        "import-openfwi",
        help="convert a folder of OpenFWI .npy files into HDF5 shards",
        description="Convert data{i}.npy/model{i}.npy (or seis*/vel*) pairs into "
        "{OUT}/{dataset}/{split}/shard-*.h5, using the official train/test file lists.",
    )
    imp.add_argument("src", type=Path, help="folder holding the OpenFWI .npy files")
    imp.add_argument("--out", required=True, type=Path, help="store root")
    imp.add_argument(
        "--dataset",
        type=_dataset_name,
        help="dataset name (default: inferred from the folder name)",
    )
    imp.add_argument(
        "--split",
        choices=("train", "test"),
        help="only this official split (default: both, where present)",
    )
    imp.add_argument(
        "--time-stride", type=_positive, default=1, help="keep every N-th ms (default 1)"
    )
    imp.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="storage precision (default float32)"
    )
    imp.add_argument(
        "--shard-size", type=_positive, default=500, help="samples per shard (default 500)"
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")

    info = sub.add_parser(
        "info",
        help="describe a shard file, split folder, store root or OpenFWI folder",
        description="Print what PATH holds: dataset, split, samples, shards, time sampling, dtype, "
        "seed and generator version, and whether anything is missing or corrupt.",
    )
    info.add_argument("path", type=Path, help="a .h5 shard, a split folder or any folder above one")
    info.add_argument(
        "--dataset",
        type=_dataset_name,
        help="dataset of an OpenFWI .npy folder (default: inferred)",
    )
    return parser


def _cmd_generate(args: argparse.Namespace) -> None:
    from epic_zoo.data.generate import generate_split

    profile = get_profile(args.profile) if args.profile else None
    opts = {
        key: getattr(args, key)
        if getattr(args, key) is not None
        else (getattr(profile, key) if profile else default)
        for key, default in _DEFAULTS.items()
    }
    num = args.num
    if num is None:
        if profile is None:
            raise DataError("give --num N (number of samples) or --profile NAME")
        num = split_count(get_dataset(args.dataset), profile, args.split)
    path = generate_split(
        args.dataset,
        args.split,
        num,
        args.out,
        seed=args.seed,
        workers=args.workers,
        device=args.device,
        progress=not args.no_progress,
        shards=args.shards,
        backend=args.backend,
        generator=args.generator or (profile.generator if profile else "default"),
        **opts,
    )
    print(f"done: {path}")


def _cmd_import(args: argparse.Namespace) -> None:
    from epic_zoo.data.openfwi import import_openfwi, infer_dataset

    dataset = args.dataset or infer_dataset(args.src)
    if dataset is None:
        raise DataError(
            f"cannot tell the dataset from the folder name {args.src}; pass --dataset "
            f"(one of {', '.join(DATASET_NAMES)})"
        )
    path = import_openfwi(
        args.src,
        args.out,
        dataset,
        args.split,
        time_stride=args.time_stride,
        dtype=args.dtype,
        shard_size=args.shard_size,
        progress=not args.no_progress,
    )
    print(f"done: {path}")


def _describe_split(path: Path) -> str:
    split = H5Split(path)
    a, n = split.attrs, len(split)
    origin = (
        f"imported from {a.get('openfwi_source')}"
        if a.get("source") == "openfwi"
        else f"synthetic, seed {a['seed']}, generator {a['generator_version']}"
        f"{'' if a.get('generator', 'default') == 'default' else ' (' + str(a['generator']) + ' laws)'}"
        f", backend {a['backend']}"
    )
    return "\n".join(
        [
            f"{path}",
            f"  {a['dataset']} {a['split']}, {n} samples in {len(split.files)} shard(s)",
            f"  seismic [{n}, 5, {a['nt']}, 70] {a['dtype']} raw amplitude, "
            f"time_stride {a['time_stride']} (dt {a['dt'] * 1e3:g} ms)",
            f"  velocity [{n}, 1, 70, 70] float32 m/s",
            f"  {origin}",
            f"  normalisation data_min {a['data_min']}, data_max {a['data_max']} "
            f"(stored records span {a['seismic_min']:.2f}..{a['seismic_max']:.2f})",
        ]
    )


def _cmd_info(args: argparse.Namespace) -> None:
    from epic_zoo.data.openfwi import OpenFWIFolder, index_folder, infer_dataset

    path: Path = args.path
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_file() or any(path.glob(SHARD_GLOB)):
        print(_describe_split(path))
        return
    split_dirs = sorted({p.parent for p in path.rglob(SHARD_GLOB)})
    failures = 0
    for split_dir in split_dirs:
        try:
            print(_describe_split(split_dir))
        except DataError as err:
            failures += 1
            print(f"PROBLEM: {err}")
    if split_dirs:
        if failures:
            raise DataError(
                f"{failures} of {len(split_dirs)} split(s) under {path} need attention (see above)"
            )
        return
    if index_folder(path):
        dataset = args.dataset or infer_dataset(path)
        if dataset is None:
            raise DataError(
                f"{path} holds .npy files; pass --dataset to describe them as OpenFWI data"
            )
        folder = OpenFWIFolder(path, dataset, None)
        print(
            f"{path}: OpenFWI {folder.info.openfwi_name} folder, {len(folder)} samples in "
            f"{len(folder.files)} file pair(s) (seismic [N, 5, 1000, 70], velocity [N, 1, 70, 70])"
        )
        return
    raise DataError(f"{path} holds no epic_zoo shards (shard-*.h5) and no OpenFWI .npy files")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    handlers = {"generate": _cmd_generate, "import-openfwi": _cmd_import, "info": _cmd_info}
    try:
        handlers[args.command](args)
    except ValueError as err:  # DataError included: bad input, with its fix in the message
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file system refusal the checks above did not foresee
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot access{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
