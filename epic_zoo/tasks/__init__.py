"""LightningModules that train the zoo's models: supervised inversion and VelocityGAN.

- :class:`InversionTask`: L1 (+ L2) regression of normalised velocity, AdamW,
  optional warm-up / cosine / step schedule, FedAvg rounds for ``federated``.
- :class:`GANTask`: WGAN-GP for ``velocitygan`` (manual optimisation).
- :class:`PhysicsInversionTask`: the supervised loss plus (or, for unlabelled
  samples, instead of) the wave-equation data misfit (:mod:`epic_zoo.wave_physics`).
- :func:`inversion_metrics`: MAE / RMSE (normalised and m/s), SSIM
  (torchmetrics) and OpenFWI-style SSIM.

The runner picks one with Hydra (``recipes/task/*.yaml``, ``_target_``).
"""

from epic_zoo.metrics import inversion_metrics, openfwi_ssim
from epic_zoo.tasks.gan import GANTask
from epic_zoo.tasks.inversion import InversionTask, VelocityTask
from epic_zoo.tasks.physics_inversion import PhysicsInversionTask

__all__ = [
    "GANTask",
    "InversionTask",
    "PhysicsInversionTask",
    "VelocityTask",
    "inversion_metrics",
    "openfwi_ssim",
]
