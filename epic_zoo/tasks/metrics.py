"""Moved to :mod:`epic_zoo.metrics`; kept until ``epic_zoo.evaluate``, ``epic_zoo.bench.cell``, ``epic_zoo.deploy.testbed`` and ``tests/deploy/test_export.py`` are re-pointed."""

from epic_zoo.metrics import *  # noqa: F403
