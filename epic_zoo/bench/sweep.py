"""The sweep: datasets x models x links, resumable, hardware costs timed once per run."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from epic_zoo.bench import cell as cl
from epic_zoo.bench.costs import ToMeasure, cost_key, ensure_costs, with_payloads
from epic_zoo.bench.report import (
    CSV_NAME,
    MD_NAME,
    RUN_NAME,
    _cell,
    conditions,
    markdown_table,
    read_csv,
    write_csv,
)
from epic_zoo.bench.rows import link_rows
from epic_zoo.bench.settings import BASELINE, BenchError, Settings, check_settings
from epic_zoo.data.catalog import get_dataset
from epic_zoo.hardware import payload as pl
from epic_zoo.hardware.simulator import cost_name
from epic_zoo.hardware.timing import default_cpu
from epic_zoo.models import create_model


def row_names(name: str) -> list[str]:
    """Rows a model contributes: the baseline one per raw format, the others one."""
    if name != BASELINE:
        return [name]
    return [cost_name(BASELINE, pl.raw_format_name(p, z)) for p, z in pl.RAW_FORMATS]


@dataclasses.dataclass
class _Cell:
    dataset: str
    name: str
    key: str
    ref_key: str
    facts: dict[str, Any]
    zlib: dict[str, tuple[int, ...]]


def _check_identity(out: Path, settings: Settings, restart: bool) -> None:
    run_file = out / RUN_NAME
    if restart:
        for stale in (run_file, out / CSV_NAME, out / "costs.json"):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out / "panels", ignore_errors=True)
    identity = settings.identity()
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != identity:
            changed = sorted(
                k for k in {*previous, *identity} if previous.get(k) != identity.get(k)
            )
            raise BenchError(
                f"{out} holds a sweep made with other settings ({', '.join(changed)}); "
                "use another --out or --restart"
            )
    run_file.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def run_bench(
    settings: Settings, out: str | Path, *, restart: bool = False, progress: bool = True
) -> list[dict[str, Any]]:
    """Run (or continue) the sweep; returns every row of ``out/bench.csv``.

    Phase 1 visits every unfinished (dataset, model) cell: loads the model,
    scores it, counts real payload bytes. Phase 2 times every architecture
    configuration not yet costed, together and interleaved. Phase 3 simulates
    every link. Raises :class:`BenchError` for bad input or when ``out`` holds
    a sweep made with other settings (pass ``restart=True``).
    """
    hardware = check_settings(settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_identity(out, settings, restart)
    rows = read_csv(out / CSV_NAME)
    done = {(r["model"], r["dataset"], r["link"]) for r in rows}
    cells: list[_Cell] = []
    todo: dict[str, ToMeasure] = {}
    pairs = [(get_dataset(d).name, m) for d in settings.datasets for m in settings.models]
    pairs = [
        (d, m)
        for d, m in pairs
        if not all((n, d, link) in done for n in row_names(m) for link in settings.links)
    ]
    sources: dict[str, Any] = {}
    bar = tqdm(pairs, desc="bench", unit="cell", disable=not progress)
    for dataset, name in bar:
        bar.set_postfix_str(f"{name} on {dataset}")
        if dataset not in sources:
            sources[dataset] = cl.test_source(settings, dataset)
        cells.append(_visit(settings, dataset, name, sources[dataset], out, todo))
    bar.close()
    if cells:
        cpu = settings.pin_cpu if settings.pin_cpu is not None else default_cpu()
        costs = ensure_costs(out, todo, warmup=settings.warmup, repeats=settings.repeats, cpu=cpu)
        common = conditions(settings, hardware)
        for c in cells:
            refs = with_payloads(costs[c.ref_key], c.zlib)
            mine = refs if c.name == BASELINE else costs[c.key]
            for cost in mine:
                todo_links = [k for k in settings.links if (cost.name, c.dataset, k) not in done]
                facts = {**c.facts, **_cost_facts(cost, c.facts)}
                rows.extend(
                    row | common
                    for row in link_rows(
                        cost.name, c.dataset, facts, cost, refs, hardware, todo_links
                    )
                )
        write_csv(rows, out / CSV_NAME)
    (out / MD_NAME).write_text(markdown_table(rows), encoding="utf-8")
    return rows


def _visit(
    settings: Settings,
    dataset: str,
    name: str,
    source: Any,
    out: Path,
    todo: dict[str, ToMeasure],
) -> _Cell:
    """Phase 1 of one cell: model, fidelity, payload facts, panels; registers costs to time."""
    stored_stride = int(source.attrs["time_stride"])
    model, meta = cl.load_bench_model(
        settings, name, dataset, int(source.attrs["nt"]), stored_stride
    )
    step = cl.time_step(model, meta, source, meta["checkpoint"])
    time_samples = int(model.config["time_samples"])
    facts: dict[str, Any] = dict.fromkeys((*cl.METRICS, "test_samples"))
    if settings.fidelity != "none":
        facts.update(cl.fidelity_facts(model, source, dataset, step, settings))
    if settings.misfit:
        facts.update(cl.misfit_facts(model, source, dataset, step, settings))
    count = min(len(source), settings.limit or len(source))
    seismic, raw, velocity = cl.normalised_batch(
        source, dataset, step, range(min(count, max(cl.ROUNDTRIP_SAMPLES, cl.ZLIB_SAMPLES)))
    )
    facts.update(
        cl.payload_facts(
            model, seismic[: cl.ROUNDTRIP_SAMPLES], raw[: cl.ROUNDTRIP_SAMPLES], dataset
        )
    )
    if settings.fidelity != "none":
        panels = min(count, cl.PANEL_SAMPLES)
        cl.save_panels(model, name, seismic[:panels], velocity[:panels], out / "panels" / dataset)
    baseline = create_model(BASELINE, time_samples=time_samples).eval()
    ref_key = cost_key(baseline)
    todo.setdefault(ref_key, ToMeasure(baseline, seismic[:1], raw[:1]))
    key = cost_key(model)
    todo.setdefault(key, ToMeasure(model, seismic[:1], raw[:1]))
    facts.update(
        checkpoint=meta["checkpoint"],
        trained_on=meta.get("dataset"),
        train_epochs=meta.get("epochs"),
        train_profile=meta.get("profile"),
        time_stride=step * stored_stride,
        time_samples=time_samples,
        codec_bits=int(getattr(model, "codec_bits", 32)),
        test_data=str(getattr(source, "path", None) or getattr(source, "root", "")),
    )
    zlib = cl.zlib_sizes(raw[:count], pl.model_receivers(baseline))
    return _Cell(dataset, name, key, ref_key, facts, zlib)


def _cost_facts(cost: Any, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "architecture": cost.name.split("+")[0],
        "raw_format": cost.raw_format or None,
        "distributed": cost.distributed,
        "params": cost.params,
        "encoder_params": cost.encoder_params,
        "encoder_flops": cost.device_flops[0],
        "central_flops": cost.central_flops,
        "num_devices": cost.num_devices,
        "payload_bytes_per_device": max(cost.payload_bytes),
        "payload_bytes_per_sample": sum(cost.payload_bytes),
        "payload_fraction_of_raw": sum(cost.payload_bytes) / facts["raw_bytes_per_sample"],
    }


def log_wandb(
    rows: Sequence[dict[str, Any]],
    plots: Iterable[Path],
    settings: Settings,
    out: Path,
    project: str,
) -> None:
    """Log the sweep as one W&B run: config, a ``wandb.Table`` of the rows, the plots; finished in ``finally``.

    Mode from ``$WANDB_MODE`` (default ``offline``).
    """
    import wandb

    run = wandb.init(
        project=project,
        job_type="bench",
        config=dataclasses.asdict(settings),
        dir=str(out),
        mode=os.environ.get("WANDB_MODE", "offline"),
    )
    exit_code = 1
    try:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        table = wandb.Table(
            columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in rows]
        )
        run.log({"bench/table": table, **{f"bench/{p.stem}": wandb.Image(str(p)) for p in plots}})
        exit_code = 0
    finally:
        run.finish(exit_code=exit_code)
