"""Moved to :mod:`epic_zoo.wave_physics`; kept until ``epic_zoo.evaluate`` is re-pointed."""

from epic_zoo.wave_physics import *  # noqa: F403
