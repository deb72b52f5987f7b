"""Check that every registered pretrained weight reproduces its recorded test metrics.

Usage (from the repository root)::

    python benchmarks/check_pretrained.py                 # all weights, full recorded test split
    python benchmarks/check_pretrained.py --quick         # the registry's 8-sample checks (seconds each)
    python benchmarks/check_pretrained.py 'epic.*' --local-only --json out.json

Each weight is loaded the way users load it (``create_model(name,
pretrained=True)``: committed folder, else Hugging Face cache, else the pinned
Hub revision), its test data are regenerated from the recorded data profile
(dataset, seed, time stride, storage dtype, generator version), and the
metrics are compared with the record within
:data:`epic_zoo.evaluation.REPRODUCE_TOLERANCE` (SSIM within 0.005; MAE and RMSE
within 2 % or 0.002 on the normalised scale). Regenerated data are cached
under ``--root`` (default ``$EPIC_ZOO_DATA/check`` or
``~/.cache/epic_zoo/data/check``), so a second run only evaluates.

Exit status 1 if any weight misses its record or cannot be loaded.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

import torch

from epic_zoo import hub
from epic_zoo.data.store import resolve_root
from epic_zoo.evaluation import reproduce_pretrained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="globs on names (default all)")
    parser.add_argument("--quick", action="store_true", help="only the registry's small checks")
    parser.add_argument(
        "--local-only", action="store_true", help="only committed weights (no network)"
    )
    parser.add_argument("--root", type=Path, help="cache folder of the regenerated test data")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--json", type=Path, help="write the measured and recorded metrics here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = args.root or resolve_root(None) / "check"

    entries = hub.read_registry()
    names = [n for n in sorted(entries) if any(fnmatch.fnmatch(n, p) for p in args.patterns)]
    if args.local_only:
        names = [n for n in names if entries[n].local]
    if not names:
        print(f"no registered weights match {args.patterns} in {hub.default_registry_path()}")
        return 1
    rows, failed = [], 0
    print(
        f"{'name':22s} {'n':>5s} {'MAE m/s rec':>11s} {'now':>7s} {'mean map':>8s} "
        f"{'SSIM rec':>8s} {'now':>6s}  status"
    )
    for name in names:
        try:
            result = reproduce_pretrained(name, root, full=not args.quick, device=args.device)
        except (hub.HubFormatError, hub.PretrainedUnavailableError, ValueError) as err:
            failed += 1
            print(f"{name:28s} error: {err}")
            rows.append({"name": name, "error": str(err)})
            continue
        rec, now = result["recorded"], result["measured"]
        status = "ok" if not result["failures"] else "FAIL " + "; ".join(result["failures"])
        failed += bool(result["failures"])
        mean_map = entries[name].baseline.get("mean_map_mae_ms")
        print(
            f"{name:22s} {result['num']:5d} {rec.get('mae_ms', float('nan')):11.1f} "
            f"{now.get('mae_ms', float('nan')):7.1f} "
            f"{f'{mean_map:.1f}' if mean_map and not args.quick else '-':>8s} "
            f"{rec.get('ssim_openfwi', rec.get('ssim', float('nan'))):8.3f} "
            f"{now.get('ssim_openfwi', now.get('ssim', float('nan'))):6.3f}  {status}"
        )
        rows.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"{len(names) - failed} of {len(names)} weights reproduce their records")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
