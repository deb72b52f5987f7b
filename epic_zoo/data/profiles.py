"""Named data sizes: ``tiny`` (tests), ``lite`` (this CPU), ``full`` (OpenFWI sizes).

``lite10k`` is ``lite`` with ten times the training maps (10,000 per dataset)
and the same validation and test splits: sample ``i`` of a split depends only
on ``(dataset, seed, split, i)`` (:func:`epic_zoo.data.families.generate_velocity`),
never on the profile, so its 200 test maps are ``lite``'s and tables of both
stay comparable.

A profile fixes how many samples each split has, the time decimation of the
stored records and their storage precision: the CPU-budget levers (docs/data.md,
"Store"); every result records the profile it used. ``lite2k-wide`` is
``lite2k`` drawn with the wider laws (``generator="wide"``,
:func:`epic_zoo.data.families.widen`): other maps of the same families, in a
folder of their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """Sizes of one data profile.

    Attributes:
        name: profile name.
        train, val, test: samples per split (``None`` in ``full`` means the
            dataset's official count, see :mod:`epic_zoo.data.catalog`).
        time_stride: keep every ``time_stride``-th time sample (1000 -> 250 for 4).
        dtype: storage precision of the records, ``"float32"`` or ``"float16"``.
        shard_size: samples per HDF5 shard.
        generator: the laws of the velocity maps, ``"default"`` or ``"wide"``
            (:data:`epic_zoo.data.families.GENERATORS`).
    """

    name: str
    train: int | None
    val: int | None
    test: int | None
    time_stride: int = 1
    dtype: str = "float32"
    shard_size: int = 100
    generator: str = "default"

    def as_dict(self) -> dict:
        """The profile as a dict; ``generator`` only when not the default (older records match)."""
        out = asdict(self)
        if out["generator"] == "default":
            del out["generator"]
        return out

    def num(self, split: str) -> int | None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; use train, val or test")
        return getattr(self, split)


PROFILES: dict[str, Profile] = {
    "tiny": Profile("tiny", train=16, val=8, test=8, time_stride=4, dtype="float32", shard_size=8),
    "lite": Profile(
        "lite", train=1000, val=100, test=200, time_stride=4, dtype="float16", shard_size=100
    ),
    "lite2k": Profile(
        "lite2k", train=2000, val=200, test=200, time_stride=4, dtype="float16", shard_size=100
    ),
    "lite10k": Profile(
        "lite10k", train=10000, val=100, test=200, time_stride=4, dtype="float16", shard_size=100
    ),
    "lite2k-wide": Profile(
        "lite2k-wide",
        train=2000,
        val=200,
        test=200,
        time_stride=4,
        dtype="float16",
        shard_size=100,
        generator="wide",
    ),
    "full": Profile(
        "full", train=None, val=None, test=None, time_stride=1, dtype="float32", shard_size=500
    ),
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name; raises ``KeyError`` listing the valid ones."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise KeyError(f"unknown data profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return PROFILES[name]
