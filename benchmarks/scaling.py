"""Scaling of test MAE with samples seen, per (model, dataset), from run folders' results.json.

    python benchmarks/scaling.py benchmarks/results/scaling --out benchmarks/results/scaling/summary
    python benchmarks/scaling.py runs/scaling --floor --bootstrap 2000

Reads every ``results.json`` under the given folders (or the files
themselves): its model, dataset, seed, ``samples_seen`` (a decay branched
from a WSD run counts the parent's samples plus the decay's;
:mod:`epic_zoo.branch`) and test MAE in m/s, beside the mean-map baseline of
the same test maps. A union model's per-dataset results become rows of model
``NAME (union)`` at each dataset's share of its samples (samples seen / members:
what a specialist would need to have seen of that dataset); a run trained otherwise than the scaling protocol (another
schedule than WSD, recipe residuals on: the zoo's runs) becomes rows of
``NAME (cosine, recipe residuals p=0.5)`` and never joins the study's fits.
Runs whose learning-rate schedule did not finish are left out (and named on stderr).

Writes (``--out``): ``scaling.md`` (the tables below), ``scaling.json`` (the
same numbers) and ``scaling.png`` (log-log MAE vs samples seen, one panel
per dataset, each fit with its 95 % bootstrap band, the extrapolation to
OpenFWI's budget and OpenFWI's published InversionNet there):

1. MAE (m/s; mean and spread over seeds) and SSIM (OpenFWI's, ``test/ssim_openfwi``) against samples seen;
2. the power-law fit ``MAE = a S^-b`` (``--floor``: ``+ c``), fitted in
   log-log space, with the exponent's standard error (the fit's covariance)
   and 95 % interval (bootstrap over runs: seeds and budgets), and the
   extrapolation to OpenFWI's budget (its training maps x 120 epochs, e.g.
   FlatVel-A 24,000 x 120 = 2.88 M samples) beside OpenFWI's published
   InversionNet MAE (normalised MAE x 1500 m/s; their data, not ours: read the
   ratio as an order of magnitude);
3. the EPIC / InversionNet MAE ratio at every budget both have, and whether
   the gap opens, closes or stays level as budget grows: the slope of the
   log ratio against log budget (the difference of the two exponents) with its
   bootstrap interval; "level" when the interval holds 0.

Extrapolating a power law a factor of 30 beyond the data is a guess with a
stated error, not a prediction: the band says how wide the guess is.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.run_layout import RESULTS_FILE

OPENFWI_EPOCHS = 120
"""Epochs of OpenFWI's published InversionNet runs (Deng et al., NeurIPS 2022)."""
OPENFWI_INVERSIONNET_MAE: dict[str, float] = {
    "flatvel-a": 0.0131,
    "flatvel-b": 0.0351,
    "curvevel-a": 0.0685,
    "curvevel-b": 0.1497,
    "flatfault-a": 0.0172,
    "flatfault-b": 0.1055,
    "curvefault-a": 0.0260,
    "curvefault-b": 0.1646,
    "style-a": 0.0625,
    "style-b": 0.0689,
}
"""OpenFWI's published InversionNet test MAE on the normalised [-1, 1] scale (OpenFWI
benchmark table, https://openfwi-lanl.github.io; Deng et al., "OpenFWI", NeurIPS 2022
Datasets and Benchmarks). Times :data:`VELOCITY_SCALE_MS` (1500) gives m/s."""
REFERENCE_MODEL = "inversionnet"
GAP_MODEL = "epic"


def openfwi_budget(dataset: str) -> int:
    """Samples seen by OpenFWI's published runs: official training maps x 120 epochs."""
    return get_dataset(dataset).num_train * OPENFWI_EPOCHS


def openfwi_mae_ms(dataset: str) -> float | None:
    """OpenFWI's published InversionNet test MAE in m/s (``None`` if not a published dataset)."""
    value = OPENFWI_INVERSIONNET_MAE.get(dataset)
    return None if value is None else value * VELOCITY_SCALE_MS


# --------------------------------------------------------------------------- records
class Point(NamedTuple):
    """One tested run: ``samples`` seen, test MAE (m/s), SSIM, its mean-map MAE and where it came from."""

    model: str
    dataset: str
    seed: int
    samples: int
    mae_ms: float
    ssim: float | None
    mean_map_ms: float | None
    kind: str
    source: str


def _result_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob(RESULTS_FILE)))
        else:
            raise FileNotFoundError(
                f"{path}: no such file or folder; pass run folders or results.json"
            )
    return files


SCALING_SCHEDULE = "wsd"
"""The scaling study's schedule: runs trained otherwise are another setting (their own rows)."""


def _setting(record: dict[str, Any]) -> str:
    """What a run changed against the scaling protocol (WSD, no recipe residuals), ``""`` for nothing.

    Such runs (the zoo's cosine runs with recipe residuals) get rows and fits of their own: a
    point of the curve changes one variable, samples seen.
    """
    changes = []
    scheduler = (record.get("schedule") or {}).get("scheduler")
    if scheduler and scheduler != SCALING_SCHEDULE:
        changes.append(str(scheduler))
    residuals = float(((record.get("data") or {}).get("recipe_residuals") or {}).get("p") or 0)
    if residuals:
        changes.append(f"recipe residuals p={residuals:g}")
    return ", ".join(changes)


def read_points(paths: Iterable[Path], log: Any = None) -> list[Point]:
    """Points of every finished, tested run in ``paths`` (skipped runs named on ``log``, default stderr)."""
    log = log or sys.stderr
    points = []
    for file in _result_files(paths):
        record = json.loads(file.read_text())
        metrics = record.get("metrics") or {}
        schedule = record.get("schedule") or {}
        if "test/mae_ms" not in metrics and not record.get("per_dataset"):
            print(f"skipped {file}: no test metrics", file=log)
            continue
        if schedule and not schedule.get("complete", True):
            print(f"skipped {file}: schedule cut short ({schedule.get('cut_short_by')})", file=log)
            continue
        kind = (
            "branch"
            if record.get("branch")
            else "wsd"
            if record.get("budget_checkpoints")
            else "run"
        )
        setting = _setting(record)
        common = {
            "seed": int(record.get("seed", 0)),
            "samples": int(record["samples_seen"]),
            "kind": kind,
            "source": str(file),
        }
        per = record.get("per_dataset") or {}
        if per:
            # a union's samples are shared by its members: each dataset saw about its share
            share = {**common, "samples": round(common["samples"] / len(per))}
            for dataset, entry in per.items():
                points.append(
                    Point(
                        model=f"{record['model']} (union{', ' + setting if setting else ''})",
                        dataset=dataset,
                        mae_ms=float(entry["metrics"]["test/mae_ms"]),
                        ssim=entry["metrics"].get("test/ssim_openfwi"),
                        mean_map_ms=(entry.get("baseline") or {}).get("mean_map_mae_ms"),
                        **share,
                    )
                )
            continue
        points.append(
            Point(
                model=str(record["model"]) + (f" ({setting})" if setting else ""),
                dataset=str(record["dataset"]),
                mae_ms=float(metrics["test/mae_ms"]),
                ssim=metrics.get("test/ssim_openfwi"),
                mean_map_ms=(record.get("baseline") or {}).get("mean_map_mae_ms"),
                **common,
            )
        )
    return points


# --------------------------------------------------------------------------- fit
class PowerLawFit(NamedTuple):
    """``MAE = a * S^-b (+ floor)`` fitted in log-log space to ``n`` points.

    ``b_se`` comes from the fit's covariance; ``boot`` holds the bootstrap
    parameter draws ``[draws, 3]`` (a, b, floor) from which intervals are taken.
    """

    a: float
    b: float
    floor: float
    b_se: float
    n: int
    with_floor: bool
    boot: np.ndarray

    def predict(self, samples: Any) -> np.ndarray:
        """MAE (m/s) at ``samples`` seen."""
        s = np.asarray(samples, dtype=float)
        return self.a * s ** (-self.b) + self.floor

    def band(self, samples: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap interval of the prediction at ``samples``."""
        s = np.asarray(samples, dtype=float)[None, :]
        draws = self.boot[:, :1] * s ** (-self.boot[:, 1:2]) + self.boot[:, 2:3]
        tail = 100 * (1 - level) / 2
        return np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)

    def b_interval(self, level: float = 0.95) -> tuple[float, float]:
        tail = 100 * (1 - level) / 2
        lo, hi = np.percentile(self.boot[:, 1], [tail, 100 - tail])
        return float(lo), float(hi)


def _fit_once(samples: np.ndarray, mae: np.ndarray, floor: bool) -> tuple[np.ndarray, float]:
    """``(params [a, b, floor], standard error of b)`` of one least-squares fit in log space."""
    x, y = np.log(samples), np.log(mae)
    if not floor:
        design = np.stack([np.ones_like(x), x], axis=1)
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        dof = len(x) - 2
        resid = y - design @ beta
        s2 = float(resid @ resid) / dof if dof > 0 else float("nan")
        cov = s2 * np.linalg.inv(design.T @ design)
        return np.array([math.exp(beta[0]), -beta[1], 0.0]), float(math.sqrt(cov[1, 1]))
    from scipy.optimize import curve_fit

    def model(x_, log_a, b, c):
        return np.log(np.exp(log_a - b * x_) + c)

    slope, intercept = np.polyfit(x, y, 1)
    p0 = [intercept, max(1e-3, -slope), 0.1 * float(mae.min())]
    bounds = ([-np.inf, 0.0, 0.0], [np.inf, 5.0, float(mae.min())])
    params, cov = curve_fit(model, x, y, p0=p0, bounds=bounds, maxfev=20000)
    se = float(math.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else float("nan")
    return np.array([math.exp(params[0]), params[1], params[2]]), se


def fit_power_law(
    samples: Sequence[float],
    mae: Sequence[float],
    *,
    floor: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
) -> PowerLawFit:
    """Fit ``MAE = a * S^-b`` (``floor``: ``+ c``, ``0 <= c <= min MAE``) in log-log space.

    Args:
        samples: samples seen of each run (> 0).
        mae: its test MAE (m/s, > 0).
        floor: fit an irreducible floor ``c`` too (needs 4 distinct budgets).
        bootstrap: resamples of the runs (with replacement) for the intervals;
            resamples with too few distinct budgets are drawn again.
        seed: of the bootstrap.

    Raises ``ValueError`` with fewer than 3 (4 with ``floor``) distinct budgets.
    """
    s, m = np.asarray(samples, dtype=float), np.asarray(mae, dtype=float)
    if s.shape != m.shape or (s <= 0).any() or (m <= 0).any():
        raise ValueError("samples and MAE must be equally long and positive")
    need = 4 if floor else 3
    if len(np.unique(s)) < need:
        raise ValueError(
            f"a power-law fit{' with a floor' if floor else ''} needs at least {need} distinct "
            f"budgets; got {len(np.unique(s))}"
        )
    params, b_se = _fit_once(s, m, floor)
    rng = np.random.default_rng(seed)
    draws = []
    tries = 0
    while len(draws) < bootstrap and tries < 20 * bootstrap:
        tries += 1
        idx = rng.integers(0, len(s), len(s))
        if len(np.unique(s[idx])) < need:
            continue
        try:
            draws.append(_fit_once(s[idx], m[idx], floor)[0])
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            continue
    boot = np.array(draws) if draws else params[None, :]
    return PowerLawFit(
        a=float(params[0]),
        b=float(params[1]),
        floor=float(params[2]),
        b_se=b_se,
        n=len(s),
        with_floor=floor,
        boot=boot,
    )


# --------------------------------------------------------------------------- analysis
def group_points(points: Iterable[Point]) -> dict[tuple[str, str], list[Point]]:
    groups: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for p in points:
        groups[(p.model, p.dataset)].append(p)
    return {k: sorted(v, key=lambda p: (p.samples, p.seed)) for k, v in sorted(groups.items())}


def budget_rows(points: Sequence[Point]) -> list[dict[str, Any]]:
    """One row per budget: runs, mean and spread of MAE over seeds, SSIM, mean-map MAE."""
    by: dict[int, list[Point]] = defaultdict(list)
    for p in points:
        by[p.samples].append(p)
    rows = []
    for samples in sorted(by):
        ps = by[samples]
        maes = [p.mae_ms for p in ps]
        ssims = [p.ssim for p in ps if p.ssim is not None]
        base = [p.mean_map_ms for p in ps if p.mean_map_ms is not None]
        rows.append(
            {
                "samples": samples,
                "runs": len(ps),
                "seeds": sorted({p.seed for p in ps}),
                "mae_ms": float(np.mean(maes)),
                "mae_ms_min": float(min(maes)),
                "mae_ms_max": float(max(maes)),
                "ssim": float(np.mean(ssims)) if ssims else None,
                "mean_map_ms": float(np.mean(base)) if base else None,
                "kinds": sorted({p.kind for p in ps}),
            }
        )
    return rows


def gap(
    mine: Sequence[Point],
    reference: Sequence[Point],
    fits: tuple[PowerLawFit, PowerLawFit] | None,
) -> dict[str, Any]:
    """EPIC / InversionNet MAE ratio at each shared budget and whether the gap opens, closes or stays level.

    The trend is the slope of ``log(ratio)`` against ``log(samples)``:
    ``b_reference - b_mine`` from the two fits (made over the budgets both
    models have, so a budget only one model reached does not tilt it), with the interval of the
    difference of independent bootstrap draws. "Gap" is the distance of the
    ratio from 1: it opens when the slope moves the ratio away from 1.
    """
    a, b = budget_rows(mine), budget_rows(reference)
    ref = {r["samples"]: r["mae_ms"] for r in b}
    ratios = [
        {"samples": r["samples"], "ratio": r["mae_ms"] / ref[r["samples"]]}
        for r in a
        if r["samples"] in ref
    ]
    out: dict[str, Any] = {"ratios": ratios, "verdict": "unknown (no fits)"}
    if fits is None:
        return out
    f_mine, f_ref = fits
    k = min(len(f_mine.boot), len(f_ref.boot))
    diff = f_ref.boot[:k, 1] - f_mine.boot[:k, 1]
    slope = f_ref.b - f_mine.b
    lo, hi = (float(v) for v in np.percentile(diff, [2.5, 97.5]))
    log_ratio = (
        float(np.mean([math.log(r["ratio"]) for r in ratios]))
        if ratios
        else math.log(f_mine.predict(1e5)[()] / f_ref.predict(1e5)[()])
    )
    if lo <= 0.0 <= hi:
        verdict = "level (the slope's 95 % interval holds 0)"
    elif (slope > 0) == (log_ratio > 0):
        verdict = "opens"
    else:
        verdict = "closes"
    out.update(
        {"slope": slope, "slope_ci": [lo, hi], "mean_log_ratio": log_ratio, "verdict": verdict}
    )
    return out


def analyse(
    points: Sequence[Point], *, floor: bool, bootstrap: int, seed: int = 0
) -> dict[str, Any]:
    """Tables, fits, extrapolations and gaps of ``points`` as one JSON-able mapping."""
    groups = group_points(points)
    result: dict[str, Any] = {"groups": [], "gaps": []}
    fits: dict[tuple[str, str], PowerLawFit] = {}
    for (model, dataset), ps in groups.items():
        entry: dict[str, Any] = {"model": model, "dataset": dataset, "budgets": budget_rows(ps)}
        try:
            fit = fit_power_law(
                [p.samples for p in ps],
                [p.mae_ms for p in ps],
                floor=floor,
                bootstrap=bootstrap,
                seed=seed,
            )
        except ValueError as err:
            entry["fit"] = {"error": str(err)}
        else:
            fits[(model, dataset)] = fit
            target = openfwi_budget(dataset)
            lo, hi = fit.band([target])
            entry["fit"] = {
                "a": fit.a,
                "b": fit.b,
                "b_se": fit.b_se,
                "b_ci": list(fit.b_interval()),
                "floor": fit.floor,
                "points": fit.n,
                "bootstrap": len(fit.boot),
                "openfwi_budget": target,
                "mae_ms_at_openfwi_budget": float(fit.predict([target])[0]),
                "mae_ms_at_openfwi_budget_ci": [float(lo[0]), float(hi[0])],
                "openfwi_inversionnet_mae_ms": openfwi_mae_ms(dataset),
            }
        result["groups"].append(entry)
    for dataset in sorted({d for _, d in groups}):
        mine, ref = (GAP_MODEL, dataset), (REFERENCE_MODEL, dataset)
        if mine in groups and ref in groups:
            # the trend compares like with like: both fits over the budgets both models have
            shared = {p.samples for p in groups[mine]} & {p.samples for p in groups[ref]}
            both = [[p for p in groups[key] if p.samples in shared] for key in (mine, ref)]
            try:
                pair = tuple(
                    fit_power_law(
                        [p.samples for p in ps],
                        [p.mae_ms for p in ps],
                        floor=floor,
                        bootstrap=bootstrap,
                        seed=seed,
                    )
                    for ps in both
                )
            except ValueError:
                pair = None
            result["gaps"].append(
                {"dataset": dataset, "shared_budgets": sorted(shared), **gap(*both, pair)}
            )
    return result


# --------------------------------------------------------------------------- output
def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The tables of :func:`analyse`'s result, as Markdown."""
    lines = ["## Test MAE against samples seen", ""]
    lines += [
        "| model | dataset | samples seen | runs (seeds) | MAE m/s (min-max) | SSIM (OpenFWI) | mean map m/s | kind |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for g in result["groups"]:
        for r in g["budgets"]:
            lines.append(
                f"| {g['model']} | {g['dataset']} | {r['samples']:,} | {r['runs']} "
                f"({', '.join(map(str, r['seeds']))}) | {_f(r['mae_ms'])} "
                f"({_f(r['mae_ms_min'])}-{_f(r['mae_ms_max'])}) | {_f(r['ssim'], 3)} | "
                f"{_f(r['mean_map_ms'])} | {', '.join(r['kinds'])} |"
            )
    lines += ["", "## Power-law fits MAE = a S^-b (+ floor) and OpenFWI's budget", ""]
    lines += [
        "| model | dataset | points | b (se; 95 % CI) | floor m/s | OpenFWI budget | fit there m/s (95 % CI) | OpenFWI InversionNet m/s |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for g in result["groups"]:
        fit = g["fit"]
        if "error" in fit:
            lines.append(f"| {g['model']} | {g['dataset']} | - | no fit: {fit['error']} | | | | |")
            continue
        lo, hi = fit["b_ci"]
        mlo, mhi = fit["mae_ms_at_openfwi_budget_ci"]
        lines.append(
            f"| {g['model']} | {g['dataset']} | {fit['points']} | {fit['b']:.3f} ({fit['b_se']:.3f}; "
            f"{lo:.3f}-{hi:.3f}) | {_f(fit['floor'])} | {fit['openfwi_budget']:,} | "
            f"{_f(fit['mae_ms_at_openfwi_budget'])} ({_f(mlo)}-{_f(mhi)}) | "
            f"{_f(fit['openfwi_inversionnet_mae_ms'])} |"
        )
    if result["gaps"]:
        lines += ["", f"## Gap {GAP_MODEL} / {REFERENCE_MODEL} as budget grows", ""]
        lines += [
            "| dataset | ratio at each shared budget | slope of log ratio (95 % CI) | gap |",
            "|---|---|---|---|",
        ]
        for g in result["gaps"]:
            ratios = ", ".join(f"{r['samples']:,}: {r['ratio']:.2f}" for r in g["ratios"]) or "-"
            slope = (
                f"{g['slope']:+.3f} ({g['slope_ci'][0]:+.3f} to {g['slope_ci'][1]:+.3f})"
                if "slope" in g
                else "-"
            )
            lines.append(f"| {g['dataset']} | {ratios} | {slope} | {g['verdict']} |")
    return "\n".join(lines) + "\n"


def plot(
    points: Sequence[Point], result: dict[str, Any], path: Path, floor: bool, bootstrap: int
) -> Path:
    """Log-log MAE vs samples seen, one panel per dataset: runs, fits with 95 % bands, OpenFWI's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from epic_zoo.plots import save_figure

    groups = group_points(points)
    # one panel per dataset with a curve (three budgets or more); single-budget runs (the
    # zoo's, the union's) join those panels but do not get their own
    curves = {d for (_, d), ps in groups.items() if len({p.samples for p in ps}) >= 3}
    datasets = sorted(curves or {d for _, d in groups})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.2), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    models = sorted({m for m, _ in groups})
    for ax, dataset in zip(axes[0], datasets, strict=True):
        target = openfwi_budget(dataset)
        for k, model in enumerate(models):
            ps = groups.get((model, dataset))
            if not ps:
                continue
            colour = colours[k % len(colours)]
            ax.scatter(
                [p.samples for p in ps], [p.mae_ms for p in ps], color=colour, s=18, label=model
            )
            try:
                fit = fit_power_law(
                    [p.samples for p in ps],
                    [p.mae_ms for p in ps],
                    floor=floor,
                    bootstrap=bootstrap,
                )
            except ValueError:
                continue
            seen = np.geomspace(min(p.samples for p in ps), max(p.samples for p in ps), 50)
            ahead = np.geomspace(seen[-1], target, 50)
            ax.plot(seen, fit.predict(seen), color=colour, label=f"{model}: b={fit.b:.2f}")
            ax.plot(ahead, fit.predict(ahead), color=colour, linestyle="--")
            grid = np.concatenate([seen, ahead])
            lo, hi = fit.band(grid)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.15)
        base = [
            p.mean_map_ms
            for (m, d), ps in groups.items()
            if d == dataset
            for p in ps
            if p.mean_map_ms
        ]
        if base:
            ax.axhline(float(np.mean(base)), color="grey", linestyle=":", label="mean map")
        published = openfwi_mae_ms(dataset)
        if published is not None:
            ax.scatter(
                [target],
                [published],
                marker="*",
                s=120,
                color="black",
                label="OpenFWI InversionNet",
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="training samples seen",
            ylabel="test MAE (m/s)",
            title=dataset,
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, help="run folders, folders of them, or results.json files"
    )
    parser.add_argument(
        "--out", type=Path, help="write scaling.md, scaling.json and scaling.png here"
    )
    parser.add_argument(
        "--floor", action="store_true", help="fit MAE = a S^-b + c (needs 4 budgets)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        print(f"error: --bootstrap {args.bootstrap}: use at least 1 resample", file=sys.stderr)
        return 2
    try:
        points = read_points(args.paths)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not points:
        print(f"error: no tested runs under {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    result = analyse(points, floor=args.floor, bootstrap=args.bootstrap, seed=args.seed)
    text = markdown(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scaling.md").write_text(text)
        (args.out / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(points, result, args.out / "scaling.png", args.floor, args.bootstrap)
        print(f"wrote {args.out}/scaling.md, scaling.json, scaling.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
