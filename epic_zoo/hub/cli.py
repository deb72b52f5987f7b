"""Command line: ``python -m epic_zoo.hub {list,pull,export,register,push}``.

::

    python -m epic_zoo.hub list
    python -m epic_zoo.hub pull epic.flatvel-a
    python -m epic_zoo.hub export RUN_DIR --out checkpoints/epic.flatvel-a \
        --register --repo-id ORG/epic-flatvel-a
    python -m epic_zoo.hub push RUN.ckpt --repo-id ORG/NAME --dataset flatvel-a [--dry-run --out DIR]

Expected failures print one line (``error: ...`` with the fix) and exit 2.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError

from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.hub.export import export_any
from epic_zoo.hub.publish import push, register, retag
from epic_zoo.weights.card import card_text
from epic_zoo.weights.errors import (
    HubFormatError,
    PretrainedUnavailableError,
    UnknownPretrainedError,
)
from epic_zoo.weights.files import CARD_NAME, WEIGHTS_NAME, atomic_write_text, read_json
from epic_zoo.weights.folder import read_config
from epic_zoo.weights.registry import (
    REGISTRY_NAME,
    PretrainedInfo,
    default_registry_path,
    empty_registry_hint,
    list_pretrained,
    omitted_from_install,
    read_registry,
)
from epic_zoo.weights.resolve import cached_folder, hf_cache_dir, resolve_pretrained


def _where(info: PretrainedInfo, registry_path: Path) -> str:
    if info.local and (registry_path.parent / info.local / WEIGHTS_NAME).is_file():
        return "local"
    if cached_folder(info, hf_cache_dir()) is not None:
        return "cached"
    return "hub" if info.revision else "unpublished"


def _cmd_list(args: argparse.Namespace) -> int:
    registry_path = Path(args.registry) if args.registry else default_registry_path()
    entries = read_registry(registry_path)
    names = [n for n in sorted(entries) if fnmatch.fnmatch(n, args.filter)]
    if not entries:
        print(empty_registry_hint(registry_path))
        return 0
    if not names:
        print(f"no pretrained weights match {args.filter!r} in {registry_path}")
        return 0
    width = max(22, *(len(n) for n in names))
    header = (
        f"{'name':{width}s} {'dataset':13s} {'MAE m/s':>8s} {'mean map':>9s} {'x mean':>7s} "
        f"{'learns':>6s} {'SSIM':>6s} {'samples':>8s} {'payload B':>9s} {'MB':>5s}  where"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        try:
            print(_list_row(name, entries[name], registry_path, width))
        except (TypeError, ValueError, AttributeError) as err:  # a hand-edited entry: one line
            print(f"skipped: {name} in {registry_path}: unreadable values ({err})", file=sys.stderr)
    print(
        "MAE: recorded test MAE; mean map: the input-free baseline on the same test maps; "
        "learns: MAE <= 0.6 x mean map; SSIM: OpenFWI's; samples: training samples seen"
    )
    if any(entries[n].superseded for n in names):
        print(
            "SUPERSEDED weights stay loadable but must not be used for results "
            "(see `superseded` in the registry and each model card)"
        )
    omitted = [
        n for n in sorted(omitted_from_install(registry_path)) if fnmatch.fnmatch(n, args.filter)
    ]
    if omitted:
        print(
            f"not in this install ({len(omitted)}; tagged versions kept in the epic_zoo "
            f"repository, loadable from a clone): {', '.join(omitted)}"
        )
    return 0


def _list_row(name: str, info: PretrainedInfo, registry_path: Path, width: int = 22) -> str:
    """One line of ``list``: recorded metrics beside the mean-map baseline, size, where."""
    ssim = info.metrics.get("ssim_openfwi", info.metrics.get("ssim", float("nan")))
    mae_ms = info.metrics.get("mae_ms", info.metrics.get("mae", float("nan")) * VELOCITY_SCALE_MS)
    base = info.baseline or {}
    mean_map = base.get("mean_map_mae_ms")
    ratio = base.get("mae_ratio_to_mean_map")
    learns = {True: "yes", False: "no"}.get(base.get("learns"), "-")
    seen = info.training.get("samples_seen")
    payload = str(info.payload_bytes) if info.payload_bytes is not None else "-"
    size = f"{info.size_bytes / 1e6:.1f}" if info.size_bytes else "-"
    return (
        f"{name:{width}s} {info.dataset:13s} {mae_ms:8.1f} "
        f"{f'{mean_map:.1f}' if mean_map else '-':>9s} {f'{ratio:.2f}' if ratio else '-':>7s} "
        f"{learns:>6s} {ssim:6.3f} {str(seen) if seen else '-':>8s} {payload:>9s} {size:>5s}  "
        f"{_where(info, registry_path)}" + ("  SUPERSEDED" if info.superseded else "")
    )


def _cmd_pull(args: argparse.Namespace) -> int:
    names = list_pretrained(registry=args.registry) if args.all else args.names
    if not names:
        raise SystemExit(
            "name the weights to pull (see `python -m epic_zoo.hub list`) or pass --all"
        )
    for name in names:
        folder, source = resolve_pretrained(name, registry=args.registry, skip_local=args.from_hub)
        verb = {"local": "committed copy", "cache": "already cached", "hub": "downloaded"}[source]
        print(f"{name}: {verb}, sha256 verified: {folder}")
    return 0


def _refuse_existing(path: Path | None, flag: str, force: bool) -> None:
    """``ValueError`` if ``path`` holds anything and ``--force`` was not given (nothing is overwritten)."""
    if path is None or force or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    raise ValueError(
        f"{flag} {path} already exists; pass --force to overwrite it, or choose another {flag}"
    )


def _cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _refuse_existing(out, "--out", args.force)
    registry = Path(args.registry) if args.registry else default_registry_path()
    if args.register and not args.repo_id:
        raise ValueError("--register needs --repo-id ORG/NAME (the Hub repo of the weights)")
    folder = export_any(
        args.source,
        out,
        dataset=args.dataset,
        name=args.name,
        record=read_json(args.record) if args.record else None,
        metrics=read_json(args.metrics) if args.metrics else None,
        repo_id=args.repo_id,
    )
    print(f"exported {args.source} -> {folder}")
    if args.register:
        local = _inside(folder, registry.parent)
        entry = register(
            folder, registry=registry, repo_id=args.repo_id, revision=args.revision, local=local
        )
        print(
            f"registered {entry.name} in {registry} ({'committed copy' if local else 'Hub only'}; "
            f"metrics {', '.join(f'{k}={v:.4f}' for k, v in sorted(entry.metrics.items()))})"
        )
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    registry = Path(args.registry) if args.registry else default_registry_path()
    folder = Path(args.folder)
    local = _inside(folder, registry.parent) and not args.hub_only
    entry = register(
        folder, registry=registry, repo_id=args.repo_id, revision=args.revision, local=local
    )
    print(f"registered {entry.name} in {registry} (local: {entry.local})")
    return 0


def _cmd_retag(args: argparse.Namespace) -> int:
    registry = Path(args.registry) if args.registry else default_registry_path()
    entry = retag(args.name, args.tag, registry=registry)
    where = f"folder {entry.local}" if entry.local else "Hub only"
    print(
        f"{args.name} is now {entry.name} in {registry} ({where}; weights sha256 "
        f"{entry.sha256[:12]}... unchanged); register the newer weights as {args.name}"
    )
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    for folder in map(Path, args.folders):
        config = read_config(folder)
        repo_id = args.repo_id
        if repo_id is None:
            entry = read_registry(args.registry).get(config["name"])
            repo_id = entry.repo_id if entry is not None else None
        atomic_write_text(folder / CARD_NAME, card_text(config, repo_id))
        print(f"wrote {folder / CARD_NAME}")
    return 0


def _inside(folder: Path, parent: Path) -> bool:
    try:
        folder.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def _cmd_push(args: argparse.Namespace) -> int:
    _refuse_existing(Path(args.out) if args.out else None, "--out", args.force)
    if args.out and not args.dry_run:
        print(
            "note: --out only sets where the folder is written; uploading as well", file=sys.stderr
        )
    result = push(
        args.checkpoint,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        out=args.out,
        dataset=args.dataset,
        name=args.name,
        record=read_json(args.record) if args.record else None,
        metrics=read_json(args.metrics) if args.metrics else None,
    )
    action = "would upload" if args.dry_run else "uploaded"
    target = f"{result.repo_id}@{result.revision or 'main'}" + (
        " (private)" if args.private else ""
    )
    print(f"{action} {result.folder} -> {target}:")
    for filename, size in result.files.items():
        print(f"  {filename:20s} {size:>12,d} bytes")
    print(f"  sha256({WEIGHTS_NAME}) = {result.sha256}")
    if result.commit:
        print(
            f"commit {result.commit} ({result.url}); pin it as the revision in checkpoints/registry.json"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m epic_zoo.hub",
        description="List, download and publish epic_zoo pretrained weights (Hugging Face Hub).",
    )
    parser.add_argument(
        "--registry", help="registry.json to use (default: the repository's checkpoints/)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "list", help="registered weights: dataset, SSIM, MAE, payload, where they are"
    )
    p.add_argument("filter", nargs="?", default="*", help="glob on names, e.g. 'epic.*'")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "pull", help="make weights available offline (verified against the registry)"
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="pretrained names, e.g. epic.flatvel-a")
    p.add_argument("--all", action="store_true", help="every registered weight")
    p.add_argument(
        "--from-hub", action="store_true", help="ignore committed copies; fetch into the HF cache"
    )
    p.set_defaults(func=_cmd_pull)

    p = sub.add_parser(
        "export",
        help="write a run folder / .ckpt as a Hub-format folder (optionally register it)",
    )
    p.add_argument("source", help="run folder (results.json + checkpoints), .ckpt or Hub folder")
    p.add_argument("--out", required=True, help="Hub-format folder to write")
    p.add_argument(
        "--register",
        action="store_true",
        help=f"add/replace its entry in {REGISTRY_NAME} (--registry; committed if --out is inside)",
    )
    p.add_argument("--repo-id", help="Hub repo of the weights, ORG/NAME (needed with --register)")
    p.add_argument("--revision", help="pinned Hub revision (after uploading)")
    p.add_argument("--dataset", help="dataset (default: from the checkpoint)")
    p.add_argument("--name", help="pretrained name (default ARCH.DATASET)")
    p.add_argument("--metrics", help="JSON file of test metrics (default: results.json)")
    p.add_argument("--record", help="JSON file of extra record entries")
    p.add_argument("--force", action="store_true", help="overwrite --out if it holds files")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("register", help=f"add/replace a Hub-format folder in {REGISTRY_NAME}")
    p.add_argument("folder", help="Hub-format folder")
    p.add_argument("--repo-id", required=True, help="Hub repo of the weights, ORG/NAME")
    p.add_argument("--revision", help="pinned Hub revision (after uploading)")
    p.add_argument(
        "--hub-only", action="store_true", help="do not record the folder as a committed copy"
    )
    p.set_defaults(func=_cmd_register)

    p = sub.add_parser(
        "retag", help="keep registered weights under NAME.TAG (frees NAME for newer weights)"
    )
    p.add_argument("name", help="registered name, e.g. epic.flatvel-a")
    p.add_argument("tag", help="tag of the kept version, e.g. lite2k_30k")
    p.set_defaults(func=_cmd_retag)

    p = sub.add_parser(
        "card", help="rewrite README.md (model card) of Hub folders from config.json"
    )
    p.add_argument("folders", nargs="+", help="Hub-format folders")
    p.add_argument("--repo-id", help="Hub repo named in the card (default: the registry's)")
    p.set_defaults(func=_cmd_card)

    p = sub.add_parser(
        "push", help="export a checkpoint/run folder to the Hub format and upload it"
    )
    p.add_argument("checkpoint", help="Lightning .ckpt, run folder or Hub-format folder")
    p.add_argument("--repo-id", required=True, help="Hub repo, ORG/NAME")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to upload to (default main)")
    p.add_argument(
        "--dry-run", action="store_true", help="write the folder and show what would be uploaded"
    )
    p.add_argument(
        "--out", help="folder to write the Hub format into (default: a temporary folder)"
    )
    p.add_argument(
        "--dataset", help="dataset the weights were trained on (default: from the checkpoint)"
    )
    p.add_argument("--name", help="pretrained name (default ARCH.DATASET)")
    p.add_argument("--metrics", help="JSON file of test metrics to record")
    p.add_argument("--record", help="JSON file of the training record (recipe, profile, seed, ...)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it holds files")
    p.set_defaults(func=_cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m epic_zoo.hub``; expected failures are one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `list` marks superseded weights itself
            return args.func(args)
    except (
        HubFormatError,
        UnknownPretrainedError,
        PretrainedUnavailableError,
        ValueError,
        FileNotFoundError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except HfHubHTTPError as err:  # create_repo / upload_folder
        print(
            f"error: the Hub refused the request ({err}); log in with `hf auth login` or set "
            "HF_TOKEN to a token with write access to the repo",
            file=sys.stderr,
        )
        return 2
    except OSError as err:
        print(f"error: {err}; check the path and its permissions", file=sys.stderr)
        return 2
