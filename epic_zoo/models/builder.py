"""Build networks from resolved weights files (the model factory's loading half).

Models layer, beside :mod:`epic_zoo.models.registry` (architectures by name)
and :mod:`epic_zoo.models.factory` (``create_model`` and the one loader). A
:class:`~epic_zoo.hub.spec.WeightsSource` (resolved by the hub's lower layer,
which never builds a model) becomes a network here: the architecture named by
``config.json`` or the checkpoint's hyper-parameters is checked (registered,
and equal to the registry's or the caller's) before anything is built, and
weights load strictly (safetensors, or a ``.ckpt`` read with
``weights_only=True``). timm's ``_builder`` has the same place.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model as load_safetensors
from torch import nn

from epic_zoo.hub.errors import ArchitectureMismatchError, ChecksumError, HubFormatError
from epic_zoo.hub.files import CONFIG_NAME, WEIGHTS_NAME, check_safetensors, file_sha256
from epic_zoo.hub.folder import build_config, read_config
from epic_zoo.hub.runs import data_record, read_lightning_checkpoint
from epic_zoo.hub.spec import WeightsSource, pretrained_source
from epic_zoo.models.registry import build_architecture, list_models


class SupersededWeightsWarning(UserWarning):
    """Loaded weights are marked superseded (kept loadable; do not use them for results)."""


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)`` if it exists on this machine, else a ``ValueError`` with the fix."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"--device {device!r} is not a torch device ({err}); use cpu, cuda or cuda:N"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"--device {device}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available here; use --device cpu")
    return dev


def check_architecture(
    config: Mapping[str, Any], what: str, expected: str | type | None = None
) -> str:
    """The architecture of ``config`` if it is registered (and equals ``expected``).

    ``expected`` is a registered name (the registry's entry) or a model class
    (``EPIC.from_pretrained``; checked after building, see :func:`_build`).
    Raises :class:`ArchitectureMismatchError` before anything is built.
    """
    architecture = str(config["architecture"])
    if architecture not in list_models():
        raise ArchitectureMismatchError(
            f"{what}: {CONFIG_NAME} names architecture {architecture!r}, which this epic_zoo "
            f"does not register ({', '.join(list_models())}); the file was edited or written by "
            "another version: restore it, or upgrade epic_zoo"
        )
    if isinstance(expected, str) and expected != architecture:
        raise ArchitectureMismatchError(
            f"{what}: {CONFIG_NAME} says architecture {architecture!r}, the registry says "
            f"{expected!r}; the folder was edited or is another model: restore it "
            "(`git checkout -- checkpoints/`) or pull it again"
        )
    return architecture


def _build(
    config: Mapping[str, Any], what: str, expected_cls: type | None, model_kwargs: Mapping
) -> nn.Module:
    """Construct the (untrained) network of a checked config."""
    stored = config["model_kwargs"]
    for key, value in model_kwargs.items():
        if key in stored and json.loads(json.dumps(value)) != stored[key]:
            raise ValueError(
                f"{what} was trained with {key}={stored[key]!r}, got {key}={value!r}; drop the "
                "argument or train new weights"
            )
    try:
        model = build_architecture(config["architecture"], **{**stored, **model_kwargs})
    except (TypeError, ValueError) as err:
        raise HubFormatError(
            f"{what}: the model_kwargs in {CONFIG_NAME} do not build {config['architecture']!r} "
            f"({err}); the file was edited or written by another version: restore it"
        ) from err
    if expected_cls is not None and not isinstance(model, expected_cls):
        raise ArchitectureMismatchError(
            f"{what} holds {config['architecture']!r} ({type(model).__name__}), not a "
            f"{expected_cls.__name__}; load it with epic_zoo.models.create_model or "
            f"{type(model).__name__}.from_pretrained"
        )
    return model


def _warn_superseded(config: Mapping[str, Any], what: str) -> str | None:
    note = (config.get("record") or {}).get("superseded")
    if note:
        warnings.warn(
            f"{what} is superseded (kept loadable, do not use for results): {note}",
            SupersededWeightsWarning,
            stacklevel=3,
        )
    return note


def load_hub_folder(
    folder: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    sha256: str | Mapping[str, str] | None = None,
    what: str | None = None,
    expected: str | type | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build the network of a Hub-format folder and load its weights strictly.

    Args:
        folder: folder with ``config.json`` and ``model.safetensors``.
        map_location: device to put the weights on (loaded on the CPU first).
        sha256: expected sha256 of ``model.safetensors``, or ``{file name: sha256}``
            of the functional files (checked before anything is parsed further).
        what: how to name the weights in error messages (default: the folder).
        expected: architecture name or model class the folder must hold.
        **model_kwargs: constructor arguments; each must equal the stored one
            (pretrained weights fix the architecture).

    Returns:
        The network in eval mode, with ``pretrained_cfg`` set to the config dict.

    Raises:
        HubFormatError: missing/truncated files, bad config, weights that do not
            fit the architecture; ChecksumError: sha256 mismatch;
            ArchitectureMismatchError: another or an unknown architecture;
            ValueError: another acquisition geometry, a conflicting
            ``model_kwargs`` value or an unavailable device.
    """
    folder = Path(folder)
    what = what or str(folder)
    if sha256 is not None:
        hashes = {WEIGHTS_NAME: sha256} if isinstance(sha256, str) else dict(sha256)
        for name, digest in hashes.items():
            path = folder / name
            actual = file_sha256(path) if path.is_file() else "missing"
            if actual != digest:
                raise ChecksumError(
                    f"{what}: sha256 of {path} is {actual}, the registry expects {digest}; "
                    "the file is corrupt, edited or another version: restore or pull it again"
                )
    config = read_config(folder, what=what)
    check_architecture(config, what, expected if isinstance(expected, str) else None)
    weights = folder / WEIGHTS_NAME
    check_safetensors(weights, what)
    model = _build(config, what, expected if isinstance(expected, type) else None, model_kwargs)
    try:
        load_safetensors(model, str(weights), strict=True, device="cpu")
    except SafetensorError as err:
        raise HubFormatError(
            f"{what}: {weights} cannot be read ({err}); delete it and download or export it again"
        ) from err
    except RuntimeError as err:  # on the CPU: only missing, unexpected or mis-shaped tensors
        raise HubFormatError(
            f"{what}: {weights.name} does not fit {config['architecture']}"
            f"({config['model_kwargs']}): {err}"
        ) from err
    model.to(check_device(map_location)).eval()
    model.pretrained_cfg = config
    _warn_superseded(config, what)
    return model


def _strip_prefix(
    state: Mapping[str, torch.Tensor], model: nn.Module, path: Path
) -> dict[str, torch.Tensor]:
    """The task's state_dict restricted to ``model``'s keys (``model.`` prefix removed)."""
    wanted = set(model.state_dict())
    prefixes = sorted({k[: k.index(".") + 1] for k in state if "." in k})
    for prefix in ["model.", *prefixes]:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if set(sub) == wanted:
            return sub
    raise HubFormatError(
        f"{path}: no sub-module of the checkpoint's state_dict has exactly the keys of "
        f"{model.config['name']} (tried prefixes {['model.', *prefixes]})"
    )


def model_from_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Network and metadata from an ``InversionTask`` (or GAN task) Lightning checkpoint.

    The task must have saved ``model_name`` and ``model_kwargs`` as
    hyper-parameters. Returns ``(model in eval mode, info)`` where ``info`` has
    ``hparams``, ``datamodule_hparams``, ``epoch`` (epochs completed),
    ``global_step`` and ``lightning_version``.
    """
    path = Path(path)
    ckpt = read_lightning_checkpoint(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    if "model_name" not in hparams:
        raise HubFormatError(
            f"{path}: hyper_parameters lack 'model_name' (found {sorted(hparams)}); "
            "export a checkpoint written by epic_zoo.tasks"
        )
    config = {"architecture": hparams["model_name"], "model_kwargs": hparams.get("model_kwargs")}
    check_architecture(config, str(path))
    model = _build(
        {**config, "model_kwargs": dict(config["model_kwargs"] or {})}, str(path), None, {}
    )
    try:
        model.load_state_dict(_strip_prefix(ckpt["state_dict"], model, path), strict=True)
    except RuntimeError as err:
        raise HubFormatError(
            f"{path}: the weights do not fit {hparams['model_name']}: {err}"
        ) from err
    info = {
        "hparams": hparams,
        "datamodule_hparams": dict(ckpt.get("datamodule_hyper_parameters") or {}),
        "epoch": int(ckpt.get("epoch", -1)) + 1,
        "global_step": int(ckpt.get("global_step", 0)),
        "lightning_version": ckpt.get("pytorch-lightning_version"),
    }
    return model.to(check_device(map_location)).eval(), info


def load_pretrained(
    name: str,
    *,
    map_location: str | torch.device = "cpu",
    registry: str | Path | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Pretrained network by name, e.g. ``load_pretrained("epic.flatvel-a")``.

    Resolution as in :func:`epic_zoo.hub.resolve.resolve_pretrained` (every
    functional file verified against the registry); the registry's architecture
    is checked against ``config.json`` before anything is built; loading as in
    :func:`load_hub_folder` (strict, safetensors only). The returned model is in
    eval mode and carries ``pretrained_cfg`` (the config dict, plus
    ``"source"``: local/cache/hub). Superseded weights load with a
    :class:`SupersededWeightsWarning`.
    """
    source = pretrained_source(
        name,
        registry=registry,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    return build_from_source(source, map_location=map_location, **model_kwargs)[0]


def _meta(model: nn.Module, source: WeightsSource) -> dict[str, Any]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return {
        "spec": source.spec,
        "kind": source.kind,
        "path": str(source.path) if source.path is not None else None,
        "name": cfg.get("name"),
        "architecture": model.config.get("name"),
        "dataset": cfg.get("dataset"),
        "time_stride": cfg.get("time_stride"),
        "superseded": (cfg.get("record") or {}).get("superseded"),
        "config": cfg or None,
    }


def build_from_source(
    source: WeightsSource,
    *,
    map_location: str | torch.device = "cpu",
    expected: str | type | None = None,
    **model_kwargs: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a resolved spec, with its weights -> ``(model in eval mode, meta)``.

    ``meta`` as documented by :func:`epic_zoo.models.factory.load_model`.
    ``expected`` is an architecture name or model class the source must hold;
    ``model_kwargs`` must equal the stored constructor arguments.
    """
    if source.checkpoint is not None:
        return _from_checkpoint(source, map_location, expected)
    assert source.folder is not None, source
    if source.kind != "pretrained":
        model = load_hub_folder(
            source.folder,
            map_location=map_location,
            what=source.what,
            expected=expected,
            **model_kwargs,
        )
        return model, {**_meta(model, source), **source.extra}
    model = load_hub_folder(
        source.folder,
        map_location=map_location,
        sha256=source.sha256,
        what=source.what,
        expected=source.architecture,
        **model_kwargs,
    )
    model.pretrained_cfg = {**model.pretrained_cfg, "source": source.extra["source"]}
    text = source.spec
    if isinstance(expected, type) and not isinstance(model, expected):
        raise ArchitectureMismatchError(
            f"{text} is a {type(model).__name__}, not a {expected.__name__}"
        )
    if isinstance(expected, str) and model.config.get("name") != expected:
        raise ArchitectureMismatchError(f"{text} is {model.config.get('name')!r}, not {expected!r}")
    return model, {**_meta(model, source), **source.extra}


def _from_checkpoint(
    source: WeightsSource, map_location: str | torch.device, expected: str | type | None
) -> tuple[nn.Module, dict[str, Any]]:
    checkpoint = source.checkpoint
    assert checkpoint is not None
    model, info = model_from_checkpoint(checkpoint, map_location=map_location)
    if isinstance(expected, str) and model.config.get("name") != expected:
        raise ArchitectureMismatchError(
            f"{checkpoint} holds {model.config.get('name')!r}, not {expected!r}"
        )
    if isinstance(expected, type) and not isinstance(model, expected):
        raise ArchitectureMismatchError(
            f"{checkpoint} holds a {type(model).__name__}, not a {expected.__name__}"
        )
    dm = info["datamodule_hparams"]
    meta = _meta(model, source)
    meta.update(
        dataset=dm.get("dataset"),
        time_stride=dm.get("time_stride"),
        checkpoint=str(checkpoint),
        info=info,
        **source.extra,
    )
    if dm.get("dataset"):  # the run knows its data: save_pretrained and invert need no dataset=
        record = {**data_record(dm), **(source.extra.get("record") or {})}
        model.pretrained_cfg = build_config(
            model,
            dm["dataset"],
            time_stride=dm.get("time_stride"),
            record=record,
            metrics=source.extra.get("metrics"),
        )
    return model, meta
