"""The ten OpenFWI datasets: names, normalisation stats and official splits.

One table (:data:`DATASETS`) that every other module reads. Numbers from
OpenFWI's public dataset configuration (Deng et al., NeurIPS 2022, and the
lanl/OpenFWI repository; see docs/data.md, "Datasets").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """One OpenFWI dataset.

    Attributes:
        name: epic_zoo name, e.g. ``"flatvel-a"``.
        openfwi_name: the OpenFWI spelling, e.g. ``"FlatVel-A"``.
        family: ``"vel"``, ``"fault"`` or ``"style"`` (decides the file layout).
        data_min, data_max: raw seismic min/max used for normalisation.
        train_files, test_files: official file indices (``data{i}.npy`` for the
            Vel/Style families, the ``Y`` of ``seis{X}_1_{Y}.npy`` for Fault).
        fault_prefixes: the ``X`` values of the Fault families' file names.
        samples_per_file: 500 in every released file.
    """

    name: str
    openfwi_name: str
    family: str
    data_min: float
    data_max: float
    train_files: tuple[int, ...]
    test_files: tuple[int, ...]
    fault_prefixes: tuple[int, ...] = ()
    samples_per_file: int = 500

    @property
    def num_train(self) -> int:
        return len(self.train_files) * max(1, len(self.fault_prefixes)) * self.samples_per_file

    @property
    def num_test(self) -> int:
        return len(self.test_files) * max(1, len(self.fault_prefixes)) * self.samples_per_file


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("flatvel-a", "FlatVel-A", "vel", -26.95, 52.77, _r(1, 48), _r(49, 60)),
        DatasetInfo("flatvel-b", "FlatVel-B", "vel", -27.17, 56.05, _r(1, 48), _r(49, 60)),
        DatasetInfo("curvevel-a", "CurveVel-A", "vel", -27.11, 55.10, _r(1, 48), _r(49, 60)),
        DatasetInfo("curvevel-b", "CurveVel-B", "vel", -29.04, 57.03, _r(1, 48), _r(49, 60)),
        DatasetInfo(
            "flatfault-a", "FlatFault-A", "fault", -26.10, 50.86, _r(0, 31), _r(32, 35), (2, 3, 4)
        ),
        DatasetInfo(
            "flatfault-b", "FlatFault-B", "fault", -24.86, 50.28, _r(0, 31), _r(32, 35), (6, 7, 8)
        ),
        DatasetInfo(
            "curvefault-a", "CurveFault-A", "fault", -26.48, 52.32, _r(0, 31), _r(32, 35), (2, 3, 4)
        ),
        DatasetInfo(
            "curvefault-b", "CurveFault-B", "fault", -24.93, 50.98, _r(0, 31), _r(32, 35), (6, 7, 8)
        ),
        DatasetInfo("style-a", "Style-A", "style", -24.96, 48.93, _r(1, 120), _r(121, 134)),
        DatasetInfo("style-b", "Style-B", "style", -23.76, 46.01, _r(1, 120), _r(121, 134)),
    )
}

DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def get_dataset(name: str) -> DatasetInfo:
    """Look up a dataset by epic_zoo or OpenFWI name (case-insensitive).

    Raises ``KeyError`` listing the valid names.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key in DATASETS:
        return DATASETS[key]
    raise KeyError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
