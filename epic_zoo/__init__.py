"""epic_zoo: distributed full-waveform inversion on the ten OpenFWI datasets.

One way through the code: ``epic_zoo.data`` (geometry, generators, forward
model, HDF5 store, DataModule) -> ``epic_zoo.models`` (plain ``nn.Module``
networks, registry) -> ``epic_zoo.tasks`` (LightningModules) ->
``epic_zoo.run`` (Hydra recipes).
"""

__version__ = "0.1.0"
