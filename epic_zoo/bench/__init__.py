"""The benchmark harness: fidelity next to payload, latency and energy, for every zoo model.

Command line (``python -m epic_zoo.bench --help``)::

    python -m epic_zoo.bench --profile tiny                       # untrained models, hardware only
    python -m epic_zoo.bench --profile lite --checkpoints DIR     # trained weights from a folder
    python -m epic_zoo.bench --profile lite --fidelity pretrained # registry names MODEL.DATASET

It sweeps datasets x models x links and writes one row per (model, dataset,
link) to ``OUT/bench.csv`` (default ``OUT = benchmarks/results/bench``), a
Markdown table ``OUT/bench.md`` and plots under ``OUT/plots/``. Centralised
InversionNet contributes one row per raw format (float32, float16, and zlib of
each, at the model's own time sampling); every row holds its ratios to each of
them and, as the headline, to the strongest (columns:
:mod:`epic_zoo.bench.rows`). Finished rows are kept: rerunning the same
command continues the sweep (``--restart`` starts over).

Files, one job each:

- :mod:`~epic_zoo.bench.settings`: :class:`Settings` / :class:`RunOptions`, checks;
- :mod:`~epic_zoo.bench.cli`: the command line, generated from those dataclasses;
- :mod:`~epic_zoo.bench.cell`: test data, model loading, fidelity, payload facts;
- :mod:`~epic_zoo.bench.costs`: interleaved timings of every architecture, cached;
- :mod:`~epic_zoo.bench.rows`: simulated latency / energy per link and the ratios;
- :mod:`~epic_zoo.bench.report`: conditions, CSV and Markdown;
- :mod:`~epic_zoo.bench.plots`: PNG plots;
- :mod:`~epic_zoo.bench.sweep`: the resumable sweep and W&B logging;
- :mod:`~epic_zoo.bench.ondemand`: refine-on-demand rows (a distributed model's
  latents plus the records the centre asks for, per upload setting;
  ``benchmarks/refine_upload_bench.py``).
"""

from epic_zoo.bench.cli import build_parser, main
from epic_zoo.bench.report import CSV_NAME, MD_NAME, cpu_name, git_commit, read_csv
from epic_zoo.bench.settings import (
    BASELINE,
    DEFAULT_LINKS,
    DEFAULT_MODELS,
    BenchError,
    RunOptions,
    Settings,
    check_settings,
    resolve_hardware,
)
from epic_zoo.bench.sweep import run_bench

__all__ = [
    "BASELINE",
    "CSV_NAME",
    "DEFAULT_LINKS",
    "DEFAULT_MODELS",
    "MD_NAME",
    "BenchError",
    "RunOptions",
    "Settings",
    "build_parser",
    "check_settings",
    "cpu_name",
    "git_commit",
    "main",
    "read_csv",
    "resolve_hardware",
    "run_bench",
]
