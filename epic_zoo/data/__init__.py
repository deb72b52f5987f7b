"""Data: OpenFWI geometry, velocity generators, forward model, HDF5 store, DataModule.

Import what you need from its module (``from epic_zoo.data.datamodule import
FWIDataModule``); the package itself imports nothing, so the light modules
(catalog, geometry, time axis, transforms, the input contract) load without
Lightning or deepwave.

- :mod:`~epic_zoo.data.catalog`: the ten datasets and their normalisation stats;
- :mod:`~epic_zoo.data.geometry`, :mod:`~epic_zoo.data.timeaxis`: acquisition and time axis;
- :mod:`~epic_zoo.data.contract`: :class:`~epic_zoo.data.contract.InputContract`;
- :mod:`~epic_zoo.data.transforms`: normalisation;
- :mod:`~epic_zoo.data.families`, :mod:`~epic_zoo.data.forward`,
  :mod:`~epic_zoo.data.generate`: synthetic maps and records;
- :mod:`~epic_zoo.data.store`, :mod:`~epic_zoo.data.openfwi`: readers;
- :mod:`~epic_zoo.data.datamodule`: ``FWIDataset`` and the Lightning ``FWIDataModule``.
"""
