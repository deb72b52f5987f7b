"""Build networks from resolved weights files (the model factory's loading half).

Models layer, beside :mod:`epic_zoo.models.registry` (architectures by name)
and :mod:`epic_zoo.models.factory` (``create_model`` and the one loader). A
:class:`~epic_zoo.weights.spec.WeightsSource` (resolved by the weights-format
layer, :mod:`epic_zoo.weights`, which never builds a model) becomes a network
here. Before anything is allocated, the architecture named by ``config.json``
or the checkpoint's hyper-parameters is checked (registered, and equal to the
registry's or the caller's), and for a Hub-format folder the network is built
on the ``meta`` device and its tensor names, shapes and dtypes compared with
the ``model.safetensors`` header: a config edited to ask for another (or a
huge) network is refused in one line, and so are non-floating weights. Weights
then load strictly (safetensors, or a ``.ckpt`` read with ``weights_only=True``).
timm's ``_builder`` has the same place.
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

from epic_zoo.data.contract import InputContract, read_contract
from epic_zoo.models.registry import build_architecture, list_models
from epic_zoo.weights.errors import ArchitectureMismatchError, ChecksumError, HubFormatError
from epic_zoo.weights.files import (
    CONFIG_NAME,
    SAFETENSORS_DTYPES,
    WEIGHTS_NAME,
    check_safetensors,
    file_sha256,
    read_safetensors_header,
)
from epic_zoo.weights.folder import read_config
from epic_zoo.weights.runs import read_lightning_checkpoint
from epic_zoo.weights.spec import WeightsSource


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


_FLOATING: frozenset[str] = frozenset({"F64", "F32", "F16", "BF16"})

TensorSpec = tuple[str, tuple[int, ...]]
"""``(safetensors dtype string, shape)`` of one stored tensor."""


def _check_kwargs(stored: Mapping[str, Any], what: str, model_kwargs: Mapping) -> None:
    for key, value in model_kwargs.items():
        if key in stored and json.loads(json.dumps(value)) != stored[key]:
            raise ValueError(
                f"{what} was trained with {key}={stored[key]!r}, got {key}={value!r}; drop the "
                "argument or train new weights"
            )


def _build(
    config: Mapping[str, Any],
    what: str,
    expected_cls: type | None,
    model_kwargs: Mapping,
    stored_tensors: Mapping[str, TensorSpec],
) -> nn.Module:
    """Construct the (untrained) network of a checked config whose tensors fit ``stored_tensors``.

    The network is first built on the ``meta`` device (no memory) and its
    ``state_dict`` names, shapes and dtypes compared with the stored tensors;
    only a network that fits them is built for real.
    """
    stored = config["model_kwargs"]
    _check_kwargs(stored, what, model_kwargs)
    kwargs = {**stored, **model_kwargs}
    try:
        with torch.device("meta"):
            skeleton = build_architecture(config["architecture"], **kwargs)
    except (TypeError, ValueError) as err:
        raise HubFormatError(
            f"{what}: the model_kwargs in {CONFIG_NAME} do not build {config['architecture']!r} "
            f"({err}); the file was edited or written by another version: restore it"
        ) from err
    if expected_cls is not None and not isinstance(skeleton, expected_cls):
        raise ArchitectureMismatchError(
            f"{what} holds {config['architecture']!r} ({type(skeleton).__name__}), not a "
            f"{expected_cls.__name__}; load it with epic_zoo.models.load_model or "
            f"{type(skeleton).__name__}.from_pretrained"
        )
    _check_tensors(skeleton, stored_tensors, what, config)
    del skeleton
    return build_architecture(config["architecture"], **kwargs)


def _check_tensors(
    skeleton: nn.Module,
    stored: Mapping[str, TensorSpec],
    what: str,
    config: Mapping[str, Any],
) -> None:
    """Raise :class:`HubFormatError` unless ``stored`` holds exactly ``skeleton``'s tensors.

    Names and shapes must match; a floating tensor of the network must be
    stored floating (``int8`` weights, say, are refused, not cast), any other
    in its own dtype.
    """
    wanted = {k: (v.dtype, tuple(v.shape)) for k, v in skeleton.state_dict().items()}
    arch = f"{config['architecture']}({config['model_kwargs']})"
    missing, unexpected = sorted(set(wanted) - set(stored)), sorted(set(stored) - set(wanted))
    if missing or unexpected:
        raise HubFormatError(
            f"{what}: the weights do not fit {arch}: {len(missing)} tensors missing "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}; {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} belong to different models: restore or export them again"
        )
    for key, (dtype, shape) in wanted.items():
        stored_dtype, stored_shape = stored[key]
        if tuple(stored_shape) != shape:
            raise HubFormatError(
                f"{what}: {CONFIG_NAME} builds {key} with shape {list(shape)}, the weights hold "
                f"{list(stored_shape)}; {CONFIG_NAME} was edited or belongs to other weights: "
                "restore or export them again"
            )
        if dtype.is_floating_point and stored_dtype not in _FLOATING:
            raise HubFormatError(
                f"{what}: {key} is stored as {stored_dtype}, not a floating dtype; epic_zoo "
                "loads float weights only (quantised files are not cast silently): export "
                "the float32 weights"
            )
        if not dtype.is_floating_point and stored_dtype != SAFETENSORS_DTYPES.get(dtype):
            raise HubFormatError(
                f"{what}: {key} is stored as {stored_dtype}, the network keeps it as {dtype}; "
                "export the weights again"
            )


def _warn_superseded(config: Mapping[str, Any], what: str) -> str | None:
    note = (config.get("record") or {}).get("superseded")
    if note:
        warnings.warn(
            f"{what} is superseded (kept loadable, do not use for results): {note}",
            SupersededWeightsWarning,
            stacklevel=4,
        )
    return note


def check_hashes(folder: Path, sha256: str | Mapping[str, str], what: str) -> None:
    """Raise :class:`ChecksumError` unless the files of ``folder`` have these sha256."""
    hashes = {WEIGHTS_NAME: sha256} if isinstance(sha256, str) else dict(sha256)
    for name, digest in hashes.items():
        path = folder / name
        actual = file_sha256(path) if path.is_file() else "missing"
        if actual != digest:
            raise ChecksumError(
                f"{what}: sha256 of {path} is {actual}, the registry expects {digest}; "
                "the file is corrupt, edited or another version: restore or pull it again"
            )


def build_from_folder(
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
        The network in eval mode, with ``pretrained_cfg`` set to the config dict
        and ``contract`` to its :class:`~epic_zoo.data.contract.InputContract`.

    Raises:
        HubFormatError: missing/truncated files, bad config, weights that do not
            fit the architecture (checked against the header before building) or
            are not floating; ChecksumError: sha256 mismatch;
            ArchitectureMismatchError: another or an unknown architecture;
            ValueError: another acquisition geometry, a conflicting
            ``model_kwargs`` value or an unavailable device.
    """
    folder = Path(folder)
    what = what or str(folder)
    if sha256 is not None:
        check_hashes(folder, sha256, what)
    config = read_config(folder, what=what)
    check_architecture(config, what, expected if isinstance(expected, str) else None)
    weights = folder / WEIGHTS_NAME
    check_safetensors(weights, what)
    header = read_safetensors_header(weights, what)
    stored = {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items()}
    expected_cls = expected if isinstance(expected, type) else None
    model = _build(config, what, expected_cls, model_kwargs, stored)
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
    try:
        model.contract = read_contract(config, what=what)
    except ValueError as err:
        raise HubFormatError(str(err)) from err
    _warn_superseded(config, what)
    return model


def _strip_prefix(
    state: Mapping[str, torch.Tensor], wanted: set[str], path: Path, arch: str
) -> dict[str, torch.Tensor]:
    """The task's state_dict restricted to the network's keys (``model.`` prefix removed)."""
    prefixes = sorted({k[: k.index(".") + 1] for k in state if "." in k})
    for prefix in ["model.", *prefixes]:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if set(sub) == wanted:
            return sub
    raise HubFormatError(
        f"{path}: no sub-module of the checkpoint's state_dict has exactly the keys of "
        f"{arch} (tried prefixes {['model.', *prefixes]})"
    )


def build_from_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Network and metadata from an ``InversionTask`` (or GAN task) Lightning checkpoint.

    The task must have saved ``model_name`` and ``model_kwargs`` as
    hyper-parameters. Returns ``(model in eval mode, info)`` where ``info`` has
    ``hparams``, ``datamodule_hparams``, ``epoch`` (epochs completed),
    ``global_step`` and ``lightning_version``. The network is checked against
    the stored tensors on the ``meta`` device before it is built.
    """
    path = Path(path)
    ckpt = read_lightning_checkpoint(path)
    hparams = dict(ckpt.get("hyper_parameters") or {})
    if "model_name" not in hparams:
        raise HubFormatError(
            f"{path}: hyper_parameters lack 'model_name' (found {sorted(hparams)}); "
            "export a checkpoint written by epic_zoo.tasks"
        )
    config = {
        "architecture": hparams["model_name"],
        "model_kwargs": dict(hparams.get("model_kwargs") or {}),
    }
    check_architecture(config, str(path))
    with torch.device("meta"):
        try:
            wanted = set(
                build_architecture(config["architecture"], **config["model_kwargs"]).state_dict()
            )
        except (TypeError, ValueError) as err:
            raise HubFormatError(
                f"{path}: model_kwargs do not build {config['architecture']!r} ({err})"
            ) from err
    state = _strip_prefix(ckpt["state_dict"], wanted, path, config["architecture"])
    stored = {
        k: (SAFETENSORS_DTYPES.get(v.dtype, str(v.dtype)), tuple(v.shape)) for k, v in state.items()
    }
    model = _build(config, str(path), None, {}, stored)
    model.load_state_dict(state, strict=True)
    info = {
        "hparams": hparams,
        "datamodule_hparams": dict(ckpt.get("datamodule_hyper_parameters") or {}),
        "epoch": int(ckpt.get("epoch", -1)) + 1,
        "global_step": int(ckpt.get("global_step", 0)),
        "lightning_version": ckpt.get("pytorch-lightning_version"),
    }
    dm = info["datamodule_hparams"]
    dataset = dm.get("dataset")
    if isinstance(dataset, (list, tuple)):
        # a union of datasets (epic_zoo.data.union): each normalised with its own range,
        # so no one contract; the data's own dataset names it (evaluation, invert(dataset=...))
        model.contract = None
    else:
        model.contract = read_contract(dm, what=str(path)) if dataset else None
    return model.to(check_device(map_location)).eval(), info


def _provenance(model: nn.Module, source: WeightsSource) -> dict[str, Any]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    contract: InputContract | None = getattr(model, "contract", None)
    return {
        "spec": source.spec,
        "kind": source.kind,
        "path": str(source.path) if source.path is not None else None,
        "name": cfg.get("name"),
        "architecture": model.config.get("name"),
        "dataset": contract.dataset if contract is not None else cfg.get("dataset"),
        "contract": contract,
        "superseded": (cfg.get("record") or {}).get("superseded"),
        "config": cfg or None,
    }


def _check_expected(model: nn.Module, expected: str | type | None, text: str) -> None:
    if isinstance(expected, type) and not isinstance(model, expected):
        raise ArchitectureMismatchError(
            f"{text} holds a {type(model).__name__}, not a {expected.__name__}"
        )
    if isinstance(expected, str) and model.config.get("name") != expected:
        raise ArchitectureMismatchError(
            f"{text} holds {model.config.get('name')!r}, not {expected!r}"
        )


def build_from_source(
    source: WeightsSource,
    *,
    map_location: str | torch.device = "cpu",
    expected: str | type | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """The network of a resolved spec, with its weights, in eval mode.

    Sets ``model.source`` (provenance, see :func:`epic_zoo.models.factory.load_model`)
    and ``model.contract``. ``expected`` is an architecture name or model class
    the source must hold; ``model_kwargs`` must equal the stored constructor
    arguments.
    """
    if source.checkpoint is not None:
        model, info = build_from_checkpoint(source.checkpoint, map_location=map_location)
        _check_expected(model, expected, str(source.checkpoint))
        _check_kwargs(model.config, str(source.checkpoint), model_kwargs)
        model.source = {
            **_provenance(model, source),
            "checkpoint": str(source.checkpoint),
            "info": info,
            **source.extra,
        }
        return model
    assert source.folder is not None, source
    pretrained = source.kind == "pretrained"
    model = build_from_folder(
        source.folder,
        map_location=map_location,
        sha256=source.sha256 if pretrained else None,
        what=source.what,
        expected=source.architecture if pretrained else expected,
        **model_kwargs,
    )
    if pretrained:
        model.pretrained_cfg = {**model.pretrained_cfg, "source": source.extra["source"]}
        _check_expected(model, expected, source.spec)
    model.source = {**_provenance(model, source), **source.extra}
    return model
