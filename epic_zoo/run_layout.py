"""Names of the files in a run folder: the one home for what the runner writes and readers find.

A run folder (``run_dir`` of :func:`epic_zoo.run.train`) holds::

    results.json                 test metrics, schedule, budget, best checkpoint (RESULTS_FILE)
    checkpoints/last.ckpt        resumable state (CHECKPOINT_DIR, LAST_CHECKPOINT)
    checkpoints/epoch=...ckpt    best checkpoint by validation MAE
    learning_curve.csv / .png    per-epoch curves (CURVE_FILE)
    wall_time.json               training wall time of every start of a resumed run (WALL_FILE)
    run_config.json              the configuration the run was started with (RUN_CONFIG_FILE)

Plain constants, no imports: the runner, ``compare``, the hub's run-folder
reader and the benchmark scripts all take them from here.
"""

from __future__ import annotations

RESULTS_FILE: str = "results.json"
"""Summary of a finished run (written by rank 0 at the end of :func:`epic_zoo.run.train`)."""
CHECKPOINT_DIR: str = "checkpoints"
"""Sub-folder holding the Lightning checkpoints."""
LAST_CHECKPOINT: str = "last.ckpt"
"""The latest checkpoint, from which a stopped run resumes."""
CURVE_FILE: str = "learning_curve"
"""Stem of the learning curve files in a run folder (``.csv`` and ``.png``)."""
WALL_FILE: str = "wall_time.json"
"""Wall time per start of the run, refreshed at every epoch end (a resumed run adds a start)."""
RUN_CONFIG_FILE: str = "run_config.json"
"""The configuration a run was started with and its identity hash (written before training)."""
