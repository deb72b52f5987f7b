"""Moved to :mod:`epic_zoo.plots`; kept until ``epic_zoo.evaluate`` is re-pointed."""

from epic_zoo.plots import *  # noqa: F403
