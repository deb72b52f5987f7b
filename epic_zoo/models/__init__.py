"""Model zoo: plain ``nn.Module`` networks registered by name (no Lightning here).

>>> from epic_zoo.models import create_model, load_model
>>> model = create_model("epic", time_samples=250)        # doctest: +SKIP
>>> velocity = model(seismic)  # [B, 5, 250, 70] -> [B, 1, 70, 70] in [-1, 1]  # doctest: +SKIP
>>> model = create_model("epic.flatvel-a", pretrained=True)  # doctest: +SKIP
>>> model = load_model("path/to/run-or-folder")  # or a .ckpt, hf-hub:ORG/REPO  # doctest: +SKIP

Two routes: :func:`create_model` (an architecture, or a pretrained name with
``pretrained=True``) and :func:`load_model` (any spec that holds weights).

Registered: ``inversionnet``, ``velocitygan`` (centralised baselines), ``epic``
and its variants ``epic-8bit``, ``epic-4bit``, ``epic-small``, ``epic-equal``,
``epic-isolated``, the distributed baselines ``split`` and ``federated``, and
the input-free baselines ``mean-map`` and ``constant`` (:mod:`epic_zoo.models.baselines`).
"""

from epic_zoo.models import baselines, epic, inversionnet, velocitygan  # noqa: F401  (registers the builders)
from epic_zoo.models.baselines import ConstantVelocity, InputFreeBaseline, MeanMap, learns
from epic_zoo.models.codec import PayloadError, pack_payload, unpack_payload
from epic_zoo.models.distributed import DistributedModel, FederatedInversionNet, SplitInversionNet
from epic_zoo.models.epic import EPIC
from epic_zoo.models.factory import create_model, load_model
from epic_zoo.models.flops import count_flops, count_parameters, model_summary
from epic_zoo.models.inversionnet import InversionNet
from epic_zoo.models.registry import list_models, list_pretrained, register_model
from epic_zoo.models.velocitygan import VelocityGAN

__all__ = [
    "EPIC",
    "ConstantVelocity",
    "InputFreeBaseline",
    "MeanMap",
    "learns",
    "DistributedModel",
    "FederatedInversionNet",
    "InversionNet",
    "PayloadError",
    "SplitInversionNet",
    "VelocityGAN",
    "count_flops",
    "count_parameters",
    "create_model",
    "list_models",
    "list_pretrained",
    "load_model",
    "model_summary",
    "pack_payload",
    "register_model",
    "unpack_payload",
]
