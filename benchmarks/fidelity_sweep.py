"""The fidelity sweep's tables: every model beside the mean map, wins counted against the seed spread.

Reads the runner's ``results.json`` of a sweep made by ``benchmarks/train_zoo.py``
(``{runs}/{recipe}/{dataset}/``), plus second-seed sweeps, and writes:

- ``{out}/summary.md``: per dataset, the mean-map MAE, each model's test MAE
  (m/s), its ratio to the mean map with the "learns" mark (ratio <= 0.6),
  SSIM (OpenFWI's), and EPIC vs InversionNet wins by MAE and by SSIM, a win
  counted only where the difference exceeds the seed spread; the budget and
  wall time of every run; the seed table;
- ``{out}/summary.json``: the same rows;
- ``{out}/runs/{seed}/{recipe}/{dataset}/``: each run's ``results.json``,
  ``learning_curve.csv`` and ``learning_curve.png`` (machine paths removed) and its
  per-epoch log ``csv/version_*/metrics.csv`` (training metrics too);
- with ``--pretrained ROOT [ROOT ...]`` (the pretrained zoo's runs, ``ROOT/epic_lite/{dataset}``,
  and the OpenFWI-recipe checks ``ROOT/backend/{dataset}.json`` written by
  ``benchmarks/openfwi_backend_check.py``; where several roots hold a dataset, the
  last one wins; a root may hold only ``backend/``, checks re-run on weights whose
  runs are carried): a table of the pretrained EPIC beside the mean map and the
  headline EPIC run, with its recipe-residual setting and each weight's check on
  fresh maps simulated by the recipe port; its records go to ``{out}/runs/pretrained/``
  (the checks to ``{out}/runs/pretrained/backend/``);
- with ``--carried FILE`` (a previous ``summary.json``): the runs it lists that no root
  holds are kept in the tables, marked where their per-run records were not kept.
  ``summary.json`` lists every run under ``runs``, so the committed folder can be
  read back: its ``runs/seed0``, ``runs/seed1`` and ``runs/pretrained`` are sweep roots too.

    python benchmarks/fidelity_sweep.py runs/zoo --seed-runs runs/zoo_seed1 \\
        --pretrained runs/pretrained --out benchmarks/results/fidelity \\
        --carried benchmarks/results/fidelity/summary.json

Seed spread: for a (model, dataset) trained more than once, ``max - min`` over its runs: other
seeds (``--seed-runs``) and repeats (``--repeat-runs``: the same seed trained again, e.g. on
another machine; CPU training is not bitwise reproducible across machines). The tables show
the first run; the others only widen the spread. A
difference between two models on a dataset counts as a win where it exceeds
the larger of their spreads there; on datasets without a second seed, the
spread used is the largest *relative* spread measured on any seeded pair,
times the value (stated in the table). A second table reads every run: the mean
over runs, and where every run of one model beats every run of the other.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.evidence import copy_run_records, read_learning_curve
from epic_zoo.models.baselines import LEARNS_RATIO
from epic_zoo.run_layout import RESULTS_FILE

HEADLINE = ("epic", "inversionnet")
ABLATIONS = ("epic_equal", "epic_isolated", "split", "federated")


def base_name(recipe: str) -> str:
    """``epic_lite`` -> ``epic``: the recipe without its scale suffix."""
    return recipe.removesuffix("_lite")


def read_sweep(root: Path) -> dict[tuple[str, str], dict]:
    """``{(recipe, dataset): results}`` of every finished run under ``root``."""
    runs = {}
    for path in sorted(root.glob(f"*/*/{RESULTS_FILE}")):
        result = json.loads(path.read_text())
        curve = read_learning_curve(path.parent, result.get("samples_per_epoch") or 0)
        curve = curve or result.get("learning_curve") or []  # a copied record has no CSV logs
        if curve:  # the logs hold the training MAE too (older results.json lack it)
            result["last_epoch"] = {
                k: curve[-1].get(k) for k in ("epoch", "train/mae_ms", "val/mae_ms")
            }
        starts = len(list((path.parent / "csv").glob("version_*")))
        if starts > 1 and "wall_time_starts" not in result:
            result["wall_time_last_start_only"] = True  # resumed before WallClock existed
        result["records_dir"] = f"{path.parent.parent.name}/{path.parent.name}"
        runs[(base_name(path.parent.parent.name), path.parent.name)] = result
    return runs


def row_of(result: dict) -> dict:
    """The numbers one table cell needs from a run's ``results.json`` (or a carried row)."""
    if "carried" in result:
        return result["carried"]
    metrics, baseline = result["metrics"], result.get("baseline") or {}
    residuals = (result.get("data") or {}).get("recipe_residuals") or {}
    return {
        "mae_ms": metrics["test/mae_ms"],
        "recipe_residuals_p": residuals.get("p", 0),
        "ssim_openfwi": metrics.get("test/ssim_openfwi"),
        "mean_map_mae_ms": baseline.get("mean_map_mae_ms"),
        "ratio": baseline.get("mae_ratio_to_mean_map"),
        "learns": baseline.get("learns"),
        "samples_seen": result.get("samples_seen"),
        "steps": (result.get("schedule") or {}).get("steps"),
        "complete": (result.get("schedule") or {}).get("complete"),
        "lr": (result.get("schedule") or {}).get("lr"),
        "wall_time_s": result.get("wall_time_s"),
        "seed": result.get("seed"),
        "wall_time_last_start_only": bool(result.get("wall_time_last_start_only")),
        "last_train_mae_ms": (result.get("last_epoch") or {}).get("train/mae_ms"),
        "last_val_mae_ms": (result.get("last_epoch") or {}).get("val/mae_ms"),
    }


def copy_records(root: Path, out: Path, label: str) -> None:
    """Copy each run's records to ``out/runs/{label}/``, machine paths replaced by ``runs/``."""
    for path in sorted(root.glob(f"*/*/{RESULTS_FILE}")):
        run = path.parent
        dest = out / "runs" / label / run.parent.name / run.name
        if dest.resolve() == run.resolve():  # reading the committed records back
            continue
        recorded = json.loads(path.read_text()).get("run_dir")
        prefixes = {
            str(Path(recorded).parents[2]) if recorded else None,
            str(root.resolve().parent),
            str(root.parent),
        } - {None, "."}
        copy_run_records(run, dest, prefixes)


def read_backend_checks(root: Path) -> dict[str, dict]:
    """``{dataset: row}`` of the OpenFWI-recipe checks under ``root/backend/``."""
    rows = {}
    for path in sorted((root / "backend").glob("*.json")):
        for row in json.loads(path.read_text()):
            row["model"] = Path(row["model"]).name  # no machine path in the copied rows
            rows[row["dataset"]] = row
    return rows


def write_backend_checks(checks: dict[str, dict], out: Path) -> None:
    """The checks in use, one ``{dataset}.json`` each, beside the pretrained records."""
    folder = out / "runs" / "pretrained" / "backend"
    folder.mkdir(parents=True, exist_ok=True)
    for dataset, row in checks.items():
        (folder / f"{dataset}.json").write_text(json.dumps([row], indent=2) + "\n")


def read_carried(path: Path) -> tuple[str, dict[str, dict[tuple[str, str], dict]], dict]:
    """``(source, {sweep label: {(model, dataset): {"carried": row}}}, {dataset: check})``.

    ``path`` is a previous ``summary.json`` (its ``runs`` list); ``source`` says where its
    numbers come from.
    """
    data = json.loads(path.read_text())
    if "runs" not in data:
        raise SystemExit(
            f"fidelity_sweep: {path} has no 'runs' list; pass a summary.json that does"
        )
    sweeps: dict[str, dict[tuple[str, str], dict]] = {}
    checks = {}
    for run in data["runs"]:
        skip = ("sweep", "model", "dataset", "openfwi_check", "openfwi_check_records")
        row = {k: v for k, v in run.items() if k not in skip}  # the check is kept apart
        sweeps.setdefault(run["sweep"], {})[(run["model"], run["dataset"])] = {"carried": row}
        if run.get("openfwi_check"):
            checks[run["dataset"]] = run["openfwi_check"]
    return data.get("source") or str(path), sweeps, checks


def merge_carried(sweep: dict, carried: dict) -> dict:
    """``sweep`` plus the carried runs it does not hold (records read today win)."""
    return {**carried, **sweep}


def unkept(result: dict | None) -> str:
    """``" †"`` for a carried run whose per-run records were not kept, else ``""``."""
    return " †" if result and "carried" in result and not result["carried"].get("records") else ""


def pretrained_section(
    pretrained: dict[tuple[str, str], dict], headline: dict[tuple[str, str], dict], checks: dict
) -> tuple[list[str], list[dict]]:
    """Markdown lines and rows: the pretrained EPIC beside the mean map and the headline run."""
    lines = [
        "## Pretrained EPIC (the zoo's weights)",
        "",
        "Same test maps as the headline sweep; budget and wall time per run below. "
        "Cells: test MAE in m/s (ratio to the mean map, learns). The OpenFWI-recipe check "
        "simulates fresh maps of the dataset's family with the exact recipe port; it passes "
        "where the MAE there is within 25 % of the test-split MAE. Backend effect: port vs "
        "deepwave records of the same fresh maps; map draw: deepwave on the fresh maps vs the "
        "test split.",
        "",
        "| dataset | mean map (m/s) | headline EPIC | pretrained EPIC | SSIM | samples seen | "
        "recipe residuals p | recipe-port MAE (maps) | change | backend effect | map draw | "
        "within 25 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for dataset in DATASET_NAMES:
        if ("epic", dataset) not in pretrained:
            continue
        p = row_of(pretrained[("epic", dataset)])
        h = headline.get(("epic", dataset))
        check = checks.get(dataset)
        cells = [
            dataset,
            f"{p['mean_map_mae_ms']:.1f}",
            f"{row_of(h)['mae_ms']:.1f} ({row_of(h)['ratio']:.2f}x){unkept(h)}" if h else "not run",
            *fmt_model(p, unkept(pretrained[("epic", dataset)])),
            str(p["samples_seen"]),
            f"{p['recipe_residuals_p']:g}",
        ]
        if check:
            cells += [
                f"{check['mae_ms']:.1f} ({check['maps']})",
                f"{check['relative_change'] * 100:+.0f} %",
                f"{check['backend_effect'] * 100:+.0f} %",
                f"{check['map_draw_effect'] * 100:+.0f} %",
                "yes" if check["within_tolerance"] else "**no**",
            ]
        else:
            cells += ["not run", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
        rows.append({"dataset": dataset, "model": "epic (pretrained)", **p, "openfwi_check": check})
    learned = [r for r in rows if r["learns"]]
    a_sets = [r for r in learned if r["dataset"].endswith("-a")]
    lines += [
        "",
        f"Pretrained EPIC learns on {len(learned)} of {len(rows)} datasets "
        f"({len(a_sets)} A, {len(learned) - len(a_sets)} B).",
    ]
    checked = [r["openfwi_check"] for r in rows if r["openfwi_check"]]
    passed = [c for c in checked if c["within_tolerance"]]
    lines += [
        f"Recipe-port check: {len(passed)} of {len(checked)} checked weights within 25 % "
        f"({len(rows) - len(checked)} not checked).",
        "",
    ]
    return lines, rows


def spreads(
    seed0: dict[tuple[str, str], dict], others: list[dict[tuple[str, str], dict]]
) -> dict[tuple[str, str], dict[str, float]]:
    """``{(model, dataset): {"mae_ms": |a-b|, "ssim_openfwi": |a-b|}}`` over the seeds present."""
    out = {}
    for key, result in seed0.items():
        values = [row_of(result)] + [row_of(o[key]) for o in others if key in o]
        if len(values) < 2:
            continue
        out[key] = {}
        for metric in ("mae_ms", "ssim_openfwi"):
            got = [v[metric] for v in values if v.get(metric) is not None]
            recorded = [
                v["spread_recorded"][metric]
                for v in values
                if (v.get("spread_recorded") or {}).get(metric) is not None
            ]
            if len(got) == len(values):
                out[key][metric] = max(got) - min(got)
            elif recorded:  # a carried run whose value was not kept, only the spread it made
                out[key][metric] = max(recorded + ([max(got) - min(got)] if got else []))
    return out


def max_relative_spread(
    seed0: dict[tuple[str, str], dict], spread: dict[tuple[str, str], dict[str, float]]
) -> dict[str, float]:
    """The largest ``spread / value`` over the seeded pairs, per metric (0 if none)."""
    rel = {"mae_ms": 0.0, "ssim_openfwi": 0.0}
    for key, s in spread.items():
        row = row_of(seed0[key])
        for metric in rel:
            if s.get(metric) is not None and row.get(metric):
                rel[metric] = max(rel[metric], s[metric] / abs(row[metric]))
    return rel


def verdict(
    a: dict, b: dict, metric: str, tolerance: float, names: tuple[str, str], higher_better: bool
) -> str:
    """``"EPIC"``/``"InversionNet"`` where the gap exceeds ``tolerance``, else ``"tie"``."""
    gap = a[metric] - b[metric]
    if abs(gap) <= tolerance:
        return "tie"
    a_better = gap > 0 if higher_better else gap < 0
    return names[0] if a_better else names[1]


def run_values(
    seed0: dict[tuple[str, str], dict],
    others: list[tuple[str, dict]],
    key: tuple[str, str],
    metric: str,
) -> list[float]:
    """``metric`` of every run of ``key`` that recorded it: the first run, other seeds, repeats."""
    results = [seed0.get(key)] + [sweep.get(key) for _, sweep in others]
    return [row_of(r)[metric] for r in results if r and row_of(r).get(metric) is not None]


def separation(a: list[float], b: list[float], names: tuple[str, str], higher_better: bool) -> str:
    """The model whose every run beats every run of the other (``"overlap"`` otherwise)."""
    if len(a) < 2 or len(b) < 2:
        return "too few runs"
    a_better = min(a) > max(b) if higher_better else max(a) < min(b)
    b_better = min(b) > max(a) if higher_better else max(b) < min(a)
    return names[0] if a_better else names[1] if b_better else "overlap"


def other_runs(others: list[tuple[str, dict]], key: tuple[str, str]) -> str:
    """``"106.7 (seed 1), 108.5 (seed 0, repeat)"``: the MAE of every run after the first."""
    cells = []
    for label, sweep in others:
        if key in sweep:
            r = row_of(sweep[key])
            which = f"seed {r['seed']}, repeat" if label.startswith("repeat") else f"seed {label}"
            cells.append(f"{r['mae_ms']:.1f}{unkept(sweep[key])} ({which})")
    return ", ".join(cells)


def every_run_section(
    seed0: dict[tuple[str, str], dict], others: list[tuple[str, dict]], rows: list[dict]
) -> list[str]:
    """EPIC against InversionNet over every run: the means, and where every run of one model is better.

    A second reading of the same runs beside the first-run rule: with two or three runs per
    model the spread is a rough measure of noise, and a verdict that changes between the
    two readings is not one to lean on. Adds ``every_run`` to each headline row.
    """
    lines = [
        "## EPIC against InversionNet over every run",
        "",
        "Mean over every run of the model on the dataset (first run, other seeds, repeats; "
        "n runs), and the model whose every run is better than every run of the other "
        '("overlap" where the ranges meet). Carried seed-1 runs have no SSIM.',
        "",
        "| dataset | EPIC MAE, mean (n) | InversionNet MAE, mean (n) | every run better by MAE | "
        "EPIC SSIM, mean (n) | InversionNet SSIM, mean (n) | every run better by SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    counts = {"mae_ms": [], "ssim_openfwi": []}
    lower = {"EPIC": 0, "InversionNet": 0}
    higher = {"EPIC": 0, "InversionNet": 0}
    for row in rows:
        dataset = row["dataset"]
        if not (row.get("epic") and row.get("inversionnet")):
            continue
        cells, every = [dataset], {}
        for metric, higher_better, fmt in (("mae_ms", False, ".1f"), ("ssim_openfwi", True, ".3f")):
            e, i = (run_values(seed0, others, (m, dataset), metric) for m in HEADLINE)
            means = [sum(v) / len(v) if v else None for v in (e, i)]
            sep = separation(e, i, ("EPIC", "InversionNet"), higher_better)
            counts[metric].append(sep)
            if None not in means and means[0] != means[1]:
                better = (means[0] > means[1]) == higher_better
                (higher if higher_better else lower)["EPIC" if better else "InversionNet"] += 1
            every[metric] = {
                "epic_mean": means[0],
                "inversionnet_mean": means[1],
                "epic_runs": len(e),
                "inversionnet_runs": len(i),
                "separated": sep,
            }
            for mean, values in zip(means, (e, i), strict=True):
                cells.append("-" if mean is None else f"{mean:{fmt}} ({len(values)})")
            cells.append(sep)
        row["every_run"] = every
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for metric, label, better in (("mae_ms", "MAE", lower), ("ssim_openfwi", "SSIM", higher)):
        got = counts[metric]
        lines.append(
            f"By {label} over {len(got)} datasets: every run of EPIC better on {got.count('EPIC')}, "
            f"every run of InversionNet better on {got.count('InversionNet')}, overlap on "
            f"{got.count('overlap')}; the better mean: EPIC on {better['EPIC']}, "
            f"InversionNet on {better['InversionNet']}."
        )
    lines.append("")
    return lines


def fmt_model(row: dict | None, note: str = "") -> tuple[str, str]:
    """``("MAE (ratio, learns)", "SSIM")`` cells; ``note`` follows the MAE (e.g. " †")."""
    if row is None:
        return "not run", ""
    mark = "yes" if row["learns"] else "**no**"
    ssim = "-" if row["ssim_openfwi"] is None else f"{row['ssim_openfwi']:.3f}"
    return f"{row['mae_ms']:.1f} ({row['ratio']:.2f}x, {mark}){note}", ssim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("runs", type=Path, help="the seed-0 sweep: {runs}/{recipe}/{dataset}")
    parser.add_argument("--seed-runs", type=Path, nargs="*", default=[], help="other seeds' sweeps")
    parser.add_argument(
        "--repeat-runs",
        type=Path,
        nargs="*",
        default=[],
        help="sweeps repeating runs with their seed (they count in the spread only)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the tables and records")
    parser.add_argument(
        "--pretrained",
        type=Path,
        nargs="+",
        default=[],
        help="the pretrained zoo's runs: ROOT/epic_lite/{dataset}; the last root holding a dataset wins",
    )
    parser.add_argument(
        "--carried",
        type=Path,
        default=None,
        help="a previous summary.json: its runs that no root holds stay in the tables",
    )
    args = parser.parse_args(argv)

    source, carried, carried_checks = read_carried(args.carried) if args.carried else ("", {}, {})
    seed0 = merge_carried(read_sweep(args.runs), carried.get("0", {}))
    labelled = []  # (sweep label, records folder, roots) of every run after the first
    for kind, paths in (("", args.seed_runs), ("repeat", args.repeat_runs)):
        numbers = [int(k.removeprefix(kind)) for k in carried if k.removeprefix(kind).isdigit()]
        for k in range(1, max([len(paths)] + [n for n in numbers if kind or n > 0]) + 1):
            root = paths[k - 1] if k <= len(paths) else None
            labelled.append((f"{kind}{k}", f"{kind or 'seed'}{k}", root))
    others = [
        (label, merge_carried(read_sweep(root) if root else {}, carried.get(label, {})))
        for label, _, root in labelled
    ]
    spread = spreads(seed0, [sweep for _, sweep in others])
    rel = max_relative_spread(seed0, spread)
    args.out.mkdir(parents=True, exist_ok=True)
    copy_records(args.runs, args.out, "seed0")
    for _, folder, root in labelled:
        if root:
            copy_records(root, args.out, folder)
    pretrained, checks = {}, {}
    kept = args.out.resolve() / "runs" / "pretrained"
    if args.pretrained and not any(
        kept in [r.resolve(), *r.resolve().parents] for r in args.pretrained
    ):
        shutil.rmtree(kept, ignore_errors=True)  # the copies are re-made from the roots
    for root in args.pretrained:  # later roots win per dataset
        pretrained.update(read_sweep(root))
        checks.update(read_backend_checks(root))
        copy_records(root, args.out, "pretrained")
    if checks:
        write_backend_checks(checks, args.out)
    fresh_checks = set(checks)  # read from a root today, not carried
    checks = {  # a carried check stands only beside its carried weight
        **{d: c for d, c in carried_checks.items() if ("epic", d) not in pretrained},
        **checks,
    }
    pretrained = merge_carried(pretrained, carried.get("pretrained", {}))

    rows, lines = [], []
    lines += [
        "# Fidelity sweep: test MAE beside the mean map",
        "",
        f"Test split of every dataset (synthetic, profile and sizes in each run's `results.json`). "
        f"Cells: test MAE in m/s (ratio to the mean-map MAE on the same test maps, "
        f"learns = ratio <= {LEARNS_RATIO}); SSIM is OpenFWI's. Checkpoints selected by validation MAE.",
        "",
        "| dataset | mean map (m/s) | EPIC | SSIM | InversionNet | SSIM | win by MAE | win by SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    wins = {"mae_ms": {}, "ssim_openfwi": {}}
    for dataset in DATASET_NAMES:
        epic = seed0.get(("epic", dataset))
        inv = seed0.get(("inversionnet", dataset))
        if ("mean_map", dataset) in seed0:  # the fitted mean map's own test MAE
            mm = row_of(seed0[("mean_map", dataset)])["mae_ms"]
        elif epic or inv:  # the runner's baseline, on the same test maps
            mm = row_of(epic or inv)["mean_map_mae_ms"]
        else:
            continue
        e, i = (row_of(r) if r else None for r in (epic, inv))
        row = {"dataset": dataset, "mean_map_mae_ms": mm, "epic": e, "inversionnet": i}
        cells = [dataset, f"{mm:.1f}", *fmt_model(e, unkept(epic)), *fmt_model(i, unkept(inv))]
        for metric, higher in (("mae_ms", False), ("ssim_openfwi", True)):
            if e and i and not spread:  # no second seed anywhere: nothing to count against
                row[f"win_{metric}"] = None
                cells.append("undecided (no second seed yet)")
            elif e and i:
                measured = [
                    spread[(m, dataset)][metric]
                    for m in HEADLINE
                    if spread.get((m, dataset), {}).get(metric) is not None
                ]
                if len(measured) == 2:
                    tol, how = max(measured), "measured"
                else:  # a model trained once here: the largest relative spread stands in for its own
                    relative = rel[metric] * max(abs(e[metric]), abs(i[metric]))
                    tol, how = max([relative, *measured]), "largest relative"
                v = verdict(e, i, metric, tol, ("EPIC", "InversionNet"), higher)
                wins[metric][dataset] = v
                row[f"win_{metric}"] = {"winner": v, "tolerance": tol, "spread": how}
                cells.append(f"{v} (+-{tol:.3g})" if metric == "mae_ms" else f"{v} (+-{tol:.3f})")
            else:
                cells.append("")
        rows.append(row)
        lines.append("| " + " | ".join(cells) + " |")

    lines += [""]
    for metric, label in (("mae_ms", "MAE"), ("ssim_openfwi", "SSIM")):
        got = list(wins[metric].values())
        if got:
            lines.append(
                f"Wins by {label} over {len(got)} datasets: EPIC {got.count('EPIC')}, "
                f"InversionNet {got.count('InversionNet')}, ties {got.count('tie')}."
            )
    lines.append("")
    if spread:
        stand_in = any(
            (row.get(f"win_{m}") or {}).get("spread") == "largest relative"
            for row in rows
            for m in ("mae_ms", "ssim_openfwi")
        )
        largest = (
            f"{rel['mae_ms'] * 100:.1f} % of the MAE and {rel['ssim_openfwi'] * 100:.1f} % of the "
            f"SSIM (the largest relative spread measured over seeds and repeats)"
        )
        lines.append(
            f"Spread for datasets trained once: {largest}."
            if stand_in
            else f"Every compared model has at least two runs on every dataset: its measured spread "
            f"decides. Largest relative spread: {largest}."
        )
    else:
        lines.append("No second seed yet: no win is counted.")
    lines.append("")
    if spread:
        lines += every_run_section(seed0, others, rows)

    ablation = [(m, d) for m in ABLATIONS for d in DATASET_NAMES if (m, d) in seed0]
    if ablation:
        lines += [
            "## Ablations and other distributed baselines",
            "",
            "| model | dataset | MAE (ratio, learns) | SSIM | other runs' MAE | EPIC MAE |",
            "|---|---|---|---|---|---|",
        ]
        for model, dataset in ablation:
            r = row_of(seed0[(model, dataset)])
            e = seed0.get(("epic", dataset))
            epic_mae = f"{row_of(e)['mae_ms']:.1f}" if e else "not run"
            cells = fmt_model(r, unkept(seed0[(model, dataset)]))
            epic_mae += unkept(e)
            more = other_runs(others, (model, dataset)) or "-"
            lines.append(f"| {model} | {dataset} | {cells[0]} | {cells[1]} | {more} | {epic_mae} |")
            rows.append({"dataset": dataset, "model": model, **r})
        lines.append("")

    if spread:
        lines += [
            "## Seeds and repeats",
            "",
            "| model | dataset | seed 0 MAE | other runs' MAE | spread MAE | spread SSIM |",
            "|---|---|---|---|---|---|",
        ]
        for (model, dataset), s in sorted(spread.items()):
            other = other_runs(others, (model, dataset))
            first = seed0[(model, dataset)]
            ssim = s.get("ssim_openfwi")
            lines.append(
                f"| {model} | {dataset} | {row_of(first)['mae_ms']:.1f}{unkept(first)} | {other} | "
                f"{s['mae_ms']:.1f} | {'-' if ssim is None else f'{ssim:.3f}'} |"
            )
        lines.append("")

    if pretrained:
        section, pretrained_rows = pretrained_section(pretrained, seed0, checks)
        lines += section
        rows += pretrained_rows

    lines += [
        "## Budget and wall time per run",
        "",
        "Last epoch: the training MAE (epoch mean, train mode: dropout, batch statistics) beside "
        "the validation MAE (eval mode); train close to val means the model under-fits (more "
        "budget or capacity would help), train far below val means it over-fits its maps.",
        "",
        "| seed | model | dataset | samples seen | steps | complete | lr | wall time (min) | "
        "last epoch: train / val MAE (m/s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    sweeps = [("0", seed0), *others]
    for label, sweep in sweeps + ([("0 (pretrained)", pretrained)] if pretrained else []):
        for (model, dataset), result in sorted(sweep.items()):
            r = row_of(result)
            if model == "mean_map":
                continue
            if label.startswith("repeat"):
                label = f"{r['seed']} (repeat)"
            fit = (
                f"{r['last_train_mae_ms']:.1f} / {r['last_val_mae_ms']:.1f}"
                if r["last_train_mae_ms"] and r["last_val_mae_ms"]
                else "-"
            )
            lines.append(
                f"| {label}{unkept(result)} | {model} | {dataset} | {r['samples_seen']} | {r['steps']} | "
                f"{r['complete']} | {r['lr']} | {r['wall_time_s'] / 60:.1f}"
                f"{' *' if r['wall_time_last_start_only'] else ''} | {fit} |"
            )
    if any(row_of(r)["wall_time_last_start_only"] for _, sw in sweeps for r in sw.values()):
        lines += [
            "",
            "\\* resumed after a stop, recorded before runs summed the wall time of every start: "
            "the time shown is the last start's only.",
        ]
    every = sweeps + ([("pretrained", pretrained)] if pretrained else [])
    if any(unkept(r) for _, sweep in every for r in sweep.values()):
        lines += [
            "",
            f"† per-run records (`results.json`, learning curve) not kept for this run: its "
            f"numbers are carried from {source}.",
        ]
    runs = []
    for label, sweep in every:
        folder = label if not label.isdigit() else f"seed{label}"
        for (model, dataset), result in sorted(sweep.items()):
            run = {"sweep": label, "model": model, "dataset": dataset, **row_of(result)}
            if "carried" not in result:
                run["records"] = f"runs/{folder}/{result['records_dir']}"
            if label == "pretrained" and model == "epic":  # the check in use, carried or re-run
                run["openfwi_check"] = checks.get(dataset)
                if dataset in fresh_checks:
                    run["openfwi_check_records"] = f"runs/pretrained/backend/{dataset}.json"
            runs.append(run)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(
        json.dumps(
            {"source": source or None, "rows": rows, "relative_spread": rel, "runs": runs},
            indent=2,
        )
        + "\n"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
