"""Fine-tuning: start a run from pretrained weights on any data (``init_from=SPEC``).

::

    python -m epic_zoo.run recipe=finetune init_from=epic.flatvel-a data=openfwi data.openfwi_root=DIR

``init_from`` is any model spec the loader takes (a pretrained name, a
Hub-format folder, ``hf-hub:ORG/REPO``, a Lightning ``.ckpt`` or a run
folder). The weights fix the run's input contract, read from their
``config.json`` (or the checkpoint's hyper-parameters) without building a
network:

- the network (``model.name``, ``model.kwargs``);
- the dataset whose normalisation the records get (``data.dataset``: the
  seismic range of that dataset, whatever folder the records come from);
- the time stride (``data.time_stride``).

``recipes/recipe/finetune.yaml`` takes all four from the weights through the
OmegaConf resolver ``epic_zoo_init`` (:func:`weights_input`); a value set
against them on the command line is refused with one line
(:func:`pretrained_init`). The runner then copies the weights into the new
network before the first step (:meth:`PretrainedInit.load_into`); optimiser,
schedule and data are the recipe's, so a fine-tuning run is an ordinary run
(resumable, compared, exported like any other).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from epic_zoo.config_schema import model_defaults
from epic_zoo.data.contract import read_contract
from epic_zoo.models.factory import load_model
from epic_zoo.weights.folder import read_config
from epic_zoo.weights.runs import read_lightning_checkpoint
from epic_zoo.weights.spec import resolve_spec

logger = logging.getLogger(__name__)

INIT_RESOLVER = "epic_zoo_init"
"""OmegaConf resolver: ``${epic_zoo_init:${init_from},KEY}`` -> the weights' ``KEY``."""
CONTRACT_KEYS: tuple[str, ...] = ("architecture", "model_kwargs", "dataset", "time_stride")


@functools.lru_cache(maxsize=16)
def _contract(spec: str) -> dict[str, Any]:
    source = resolve_spec(spec)
    if source.folder is not None:
        config = read_config(source.folder, what=spec)
        architecture, kwargs = config.get("architecture"), config.get("model_kwargs")
        stored: Mapping[str, Any] = config
    else:
        assert source.checkpoint is not None, source
        ckpt = read_lightning_checkpoint(source.checkpoint)
        hparams = dict(ckpt.get("hyper_parameters") or {})
        architecture = hparams.get("model_name")
        kwargs = dict(hparams.get("model_kwargs") or {})
        stored = dict(ckpt.get("datamodule_hyper_parameters") or {})
    if architecture is not None:  # every constructor argument (runs record only non-defaults)
        kwargs = {**model_defaults(str(architecture)), **dict(kwargs or {})}
    data = read_contract(stored, what=f"init_from={spec}") if stored.get("dataset") else None
    contract = {
        "architecture": architecture,
        "model_kwargs": kwargs,
        "dataset": data.dataset if data else None,
        "time_stride": data.time_stride if data else None,
    }
    missing = [key for key, value in contract.items() if value is None]
    if missing:
        raise ValueError(
            f"init_from={spec}: the weights do not record {', '.join(missing)}; start from a "
            "Hub-format folder, a pretrained name or a run of `python -m epic_zoo.run`"
        )
    return contract


def weights_contract(spec: str) -> dict[str, Any]:
    """``{architecture, model_kwargs, dataset, time_stride}`` of the weights of ``spec``.

    Read from ``config.json`` or the checkpoint (nothing is built); pretrained
    names and ``hf-hub:`` repos are resolved (and verified) as by the loader.
    Raises ``ValueError`` when the weights do not record one of them.
    """
    return copy.deepcopy(_contract(str(spec)))


def weights_input(spec: str, key: str) -> Any:
    """One entry of :func:`weights_contract` (the ``epic_zoo_init`` resolver)."""
    if key not in CONTRACT_KEYS:
        raise ValueError(f"${{{INIT_RESOLVER}:SPEC,KEY}}: KEY must be one of {CONTRACT_KEYS}")
    return weights_contract(spec)[key]


OmegaConf.register_new_resolver(INIT_RESOLVER, weights_input, replace=True)


def _plain(value: Any) -> Any:
    return json.loads(
        json.dumps(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
    )


@dataclass
class PretrainedInit:
    """Weights to start a run from (see :func:`pretrained_init`)."""

    spec: str
    model: nn.Module
    """The loaded network (eval mode) whose weights the run starts from."""
    contract: dict[str, Any]

    def load_into(self, network: nn.Module) -> None:
        """Copy the weights into the run's freshly built ``network`` (same architecture, strict).

        Raises ``ValueError`` if ``network`` is not the weights' architecture.
        """
        mine = {k: v for k, v in getattr(network, "config", {}).items() if k != "name"}
        theirs = {k: v for k, v in self.model.config.items() if k != "name"}
        if network.config.get("name") != self.model.config.get("name") or _plain(mine) != _plain(
            theirs
        ):
            raise ValueError(
                f"init_from={self.spec} holds {self.model.config.get('name')!r} {theirs}, the run "
                f"built {network.config.get('name')!r} {mine}; drop the model.* overrides (the "
                "weights fix the network)"
            )
        network.load_state_dict(self.model.state_dict(), strict=True)
        logger.info("starting from the weights of %s", self.spec)


def pretrained_init(
    spec: str | None, model_cfg: Mapping[str, Any], datamodule: Any
) -> PretrainedInit | None:
    """Load ``init_from`` after checking that the run's data and model follow its contract.

    Args:
        spec: the ``init_from`` setting (``None``: a run from scratch, returns ``None``).
        model_cfg: the ``model`` config group (``name``, ``kwargs``).
        datamodule: the run's :class:`~epic_zoo.data.datamodule.FWIDataModule`.

    Raises:
        ValueError: one line naming the setting that contradicts the weights
            (dataset normalisation, time stride, network) and the fix.
    """
    if not spec:
        return None
    spec = str(spec)
    contract = weights_contract(spec)
    dataset, stride = contract["dataset"], int(contract["time_stride"])
    if datamodule.dataset_name != dataset:
        raise ValueError(
            f"init_from={spec} expects records normalised with {dataset}'s seismic range, but "
            f"data.dataset={datamodule.dataset_name} normalises with its own: drop data.dataset "
            "(recipe=finetune takes the weights'), or start from weights trained on "
            f"{datamodule.dataset_name}"
        )
    if int(datamodule.time_stride) != stride:
        raise ValueError(
            f"init_from={spec} takes one sample every {stride} ms, but data.time_stride="
            f"{datamodule.time_stride}: drop data.time_stride (recipe=finetune takes the "
            f"weights') or set it to {stride}"
        )
    if model_cfg.get("name") != contract["architecture"]:
        raise ValueError(
            f"init_from={spec} holds a {contract['architecture']!r} network, but model.name="
            f"{model_cfg.get('name')}: drop model= / model.name (recipe=finetune takes the weights')"
        )
    given = _plain(model_cfg.get("kwargs") or {})
    clash = {k: v for k, v in given.items() if k in contract["model_kwargs"]}
    clash = {k: v for k, v in clash.items() if v != _plain(contract["model_kwargs"][k])}
    if clash:
        key, value = next(iter(clash.items()))
        raise ValueError(
            f"init_from={spec} was trained with {key}={contract['model_kwargs'][key]!r}, but "
            f"model.kwargs.{key}={value!r}: drop the model.kwargs overrides (the weights fix the "
            "network)"
        )
    model = load_model(spec)
    return PretrainedInit(spec=spec, model=model, contract=contract)
