"""Split a model's weights by where they run, and load each part alone.

``python -m epic_zoo.deploy export MODEL --out DIR`` writes a *deployment
bundle*::

    DIR/manifest.json                       what every part agrees on (below)
    DIR/central/manifest.json               copy, for the central node
    DIR/central/decoder.safetensors         everything but the device encoders
                                            (model.safetensors: the whole network,
                                            for a centralised model)
    DIR/devices/device-k/manifest.json      copy, for device k
    DIR/devices/device-k/encoder.safetensors  device k's encoder only
                                            (absent for a centralised model:
                                            its devices send raw records)

Copy ``devices/device-k/`` to device ``k`` and ``central/`` to the central node.

The manifest names the architecture and its constructor arguments, the
``model_version`` written into every payload header (crc32 of the config and
of the sha256 of all weights, so devices and central that hold different
weights of the same architecture are told apart), the dataset whose
normalisation the devices apply, the time decimation, the receivers of each
device, the codec bit width and clip range, each file's sha256, and whether
the weights are trained.

:class:`EdgeEncoder` takes device ``k``'s encoder out of a freshly built
architecture and loads only the encoder file into it (the rest is dropped).
:class:`CentralDecoder` loads the decoder file and moves the encoders to the
``meta`` device (freed; the centre never runs them). Together they reproduce
``model(seismic)`` exactly (``decode(unpack(pack(encode(x)))) == forward(x)``,
see :mod:`epic_zoo.models.codec`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import epic_zoo
from epic_zoo.data.contract import InputContract
from epic_zoo.data.geometry import NT, NUM_RECEIVERS, NUM_SOURCES, receiver_split
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic
from epic_zoo.deploy.records import pack_records
from epic_zoo.models import create_model
from epic_zoo.models.codec import pack_payload, quantize
from epic_zoo.models.distributed import DistributedModel
from epic_zoo.provenance import utc_now
from epic_zoo.weights.errors import HubFormatError
from epic_zoo.weights.files import SAFETENSORS_DTYPES, file_sha256, read_safetensors_header
from epic_zoo.wire import is_distributed

FORMAT: str = "epic_zoo.deploy"
FORMAT_VERSION: int = 1
MANIFEST: str = "manifest.json"
MAX_MANIFEST_BYTES: int = 1 << 20
"""Largest manifest read (a real one is a few kB); checked before parsing."""
ENCODER_FILE: str = "encoder.safetensors"
DECODER_FILE: str = "decoder.safetensors"
FULL_MODEL_FILE: str = "model.safetensors"
UNTRAINED_STRIDE_MS: int = 4
"""Time stride of the records an untrained architecture takes unless told (250 samples)."""


def untrained_contract(dataset: str = "flatvel-a", num_devices: int = 5) -> InputContract:
    """The input contract an untrained architecture is built for: ``dataset`` at 4 ms over ``num_devices``."""
    return InputContract.make(dataset, UNTRAINED_STRIDE_MS, num_devices)


class BundleError(ValueError):
    """A deployment bundle that is missing, of another format, or whose files do not match it."""


def weights_digest(model: nn.Module) -> str:
    """sha256 over every state-dict entry (name and float32/int bytes, sorted by name)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def deployment_version(config: dict, digest: str) -> int:
    """32-bit version of a deployment: crc32 of the architecture config and the weights' digest."""
    return zlib.crc32((json.dumps(config, sort_keys=True) + digest).encode())


def load_source_model(
    spec: str,
    *,
    untrained: InputContract | None = None,
    seed: int = 0,
) -> tuple[nn.Module, dict[str, Any]]:
    """Resolve ``spec`` to a network in eval mode and a description of where it came from.

    ``spec`` is anything :func:`epic_zoo.models.load_model` loads (a Hub-format
    folder, a pretrained name such as ``epic.flatvel-a``, ``hf-hub:ORG/REPO``, a
    ``.ckpt`` or a run folder) or an architecture (``epic``,
    ``inversionnet``): the latter builds *untrained* weights from ``seed`` for
    the records of the input contract ``untrained`` (default
    :func:`untrained_contract`; for plumbing and timing, not for maps).
    ``untrained`` is ignored for trained weights, whose config fixes the contract.

    Returns:
        ``(model, info)``; ``info`` holds ``source``, ``trained``, ``name``,
        ``contract`` (the :class:`InputContract` the bundle is made for) and,
        from it, ``dataset`` and ``time_stride``.
    """
    from epic_zoo.models import list_models, load_model
    from epic_zoo.weights.errors import HubFormatError, UnknownPretrainedError

    if spec in list_models() and not Path(spec).exists():
        torch.manual_seed(seed)
        contract = untrained or untrained_contract()
        model = create_model(
            spec, time_samples=contract.time_samples, num_devices=contract.num_devices
        )
        name = spec
        info = {"source": f"untrained {spec} (seed {seed})", "trained": False}
    else:
        try:
            model = load_model(spec)
        except (UnknownPretrainedError, FileNotFoundError) as err:
            raise BundleError(
                f"{spec!r} is neither a model spec the hub loads ({err}) nor an architecture "
                f"({', '.join(list_models())})"
            ) from err
        except (HubFormatError, ValueError) as err:
            raise BundleError(f"{spec}: {err}") from err
        meta, contract = model.source, model.contract
        if contract is None:
            raise BundleError(f"{spec}: the dataset or time stride of these weights is unknown")
        name = meta["name"] or meta["architecture"]
        info = {"source": f"{meta['kind']} {spec}", "trained": True}
    info.update(
        name=name,
        contract=contract,
        dataset=contract.dataset,
        time_stride=int(contract.time_stride),
    )
    return model.eval(), info


def _stored_tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` from a safetensors header (bounded), without reading any tensor."""
    try:
        header = read_safetensors_header(path, "the bundle")
    except HubFormatError as err:
        raise BundleError(str(err)) from None
    return {name: (t["dtype"], tuple(t["shape"])) for name, t in header.items()}


def _checked_build(manifest: dict, path: Path, part: str, select) -> nn.Module:
    """Build the manifest's model only after its ``part`` fits the weights file's header.

    The model is first built on the meta device (no memory), ``select(model)``
    gives the ``{name: tensor}`` the file must hold; names, shapes and dtypes
    are compared with the file's header. A manifest that asks for a
    huge model, or weights of another shape or dtype (int8 would be cast
    silently), is refused before anything is allocated.
    """
    try:
        with torch.device("meta"):
            meta = create_model(manifest["architecture"], **manifest["model_kwargs"])
    except (TypeError, ValueError, KeyError) as err:
        raise BundleError(f"manifest model {manifest.get('architecture')!r}: {err}") from None
    expected = {
        name: (SAFETENSORS_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
        for name, t in select(meta).items()
    }
    stored = _stored_tensors(path)
    if stored != expected:
        bad = sorted(n for n in set(stored) | set(expected) if stored.get(n) != expected.get(n))
        raise BundleError(
            f"{path.name} does not fit the manifest's {manifest['architecture']} ({part}): "
            f"{len(bad)} tensor(s) differ in name, shape or dtype, e.g. "
            + ", ".join(f"{n}: file {stored.get(n)} vs model {expected.get(n)}" for n in bad[:2])
            + "; re-export the bundle"
        )
    return create_model(manifest["architecture"], **manifest["model_kwargs"])


def _encoder_tensor_ids(model: DistributedModel) -> set[int]:
    return {
        id(t)
        for k in range(model.num_devices)
        for t in (*model.encoder_module(k).parameters(), *model.encoder_module(k).buffers())
    }


def _check_edge_loadable(model: DistributedModel) -> None:
    if type(model).encoder_input is not DistributedModel.encoder_input:
        raise BundleError(
            f"{model.config['name']}: its devices transform their records with state outside the "
            "encoder (encoder_input), which the edge runtime does not rebuild; deploy epic*, split "
            "or a centralised model"
        )
    for k in range(model.num_devices):
        enc = model.encoder_module(k)
        persistent = set(enc.state_dict())
        missing = [n for n, _ in enc.named_buffers() if n not in persistent]
        if missing:
            raise BundleError(
                f"{model.config['name']}: device {k}'s encoder has non-persistent buffers {missing} "
                "that its weights file cannot carry"
            )


def export_bundle(
    model: nn.Module,
    out_dir: str | Path,
    *,
    name: str,
    contract: InputContract,
    trained: bool,
    source: str,
) -> Path:
    """Write ``model`` as a deployment bundle (module docstring); returns ``out_dir``.

    ``contract`` names the dataset and time stride of the records the model
    takes (``info["contract"]`` of :func:`load_source_model`); its device
    count is the model's.
    """
    out = Path(out_dir)
    model = model.eval()
    config = dict(model.config)
    digest = weights_digest(model)
    distributed = is_distributed(model)
    num_devices = model.num_devices if distributed else int(config.get("num_devices", 5))
    receivers = model.receiver_split if distributed else receiver_split(num_devices)
    dataset, time_stride = contract.dataset, int(contract.time_stride)
    stored: InputContract | None = InputContract.make(dataset, time_stride, num_devices)
    if int(config.get("time_samples", NT)) != stored.time_samples:
        stored = None  # a test-size model whose record length no stride gives
    files: dict[str, Any] = {"devices": []}
    (out / "central").mkdir(parents=True, exist_ok=True)
    if distributed:
        _check_edge_loadable(model)
        encoder_ids = _encoder_tensor_ids(model)
        decoder = {
            key: t.detach().contiguous()
            for key, t in model.state_dict(keep_vars=True).items()
            if id(t) not in encoder_ids
        }
        files["central"] = f"central/{DECODER_FILE}"
        save_file(decoder, str(out / files["central"]))
        for k in range(num_devices):
            rel = f"devices/device-{k}/{ENCODER_FILE}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            state = {key: t.contiguous() for key, t in model.encoder_module(k).state_dict().items()}
            save_file(state, str(out / rel))
            files["devices"].append(rel)
    else:
        files["central"] = f"central/{FULL_MODEL_FILE}"
        save_file(
            {key: t.contiguous() for key, t in model.state_dict().items()},
            str(out / files["central"]),
        )
        for k in range(num_devices):
            (out / f"devices/device-{k}").mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": config["name"],
        "model_kwargs": {k: v for k, v in config.items() if k != "name"},
        "mode": "latent" if distributed else "raw",
        "model_version": deployment_version(config, digest),
        "weights_sha256": digest,
        "trained": bool(trained),
        "source": source,
        "dataset": dataset,
        "contract": stored.as_dict() if stored is not None else None,
        "time_stride": int(time_stride),  # the contract's, kept for bundles of older epic_zoo
        "time_samples": int(config.get("time_samples", NT)),
        "num_devices": num_devices,
        "receivers": [np.asarray(r).tolist() for r in receivers],
        "codec": (
            {"bits": model.codec_bits, "scale": float(model.codec_scale)} if distributed else None
        ),
        "latent_shapes": (
            [list(model.latent_shape(k)) for k in range(num_devices)] if distributed else None
        ),
        "payload_bytes": (
            [model.payload_bytes(k) for k in range(num_devices)] if distributed else None
        ),
        "files": files,
        "sha256": {rel: file_sha256(out / rel) for rel in [files["central"], *files["devices"]]},
        "epic_zoo_version": epic_zoo.__version__,
        "torch_version": torch.__version__,
        "created": utc_now(),
    }
    text = json.dumps(manifest, indent=2) + "\n"
    for folder in [
        out,
        out / "central",
        *(out / f"devices/device-{k}" for k in range(num_devices)),
    ]:
        (folder / MANIFEST).write_text(text, encoding="utf-8")
    return out


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """The manifest of a bundle root, its ``central/`` or a ``devices/device-k/`` folder."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"no {MANIFEST} in {bundle}; make a bundle with "
            "`python -m epic_zoo.deploy export MODEL --out DIR`"
        )
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise BundleError(
            f"{path} is not a bundle manifest ({err}); re-export the bundle"
        ) from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path} is not a {FORMAT} v{FORMAT_VERSION} manifest; re-export with this epic_zoo"
        )
    return manifest


def _bundle_file(bundle: Path, manifest: dict, rel: str) -> Path:
    """Find ``rel`` under the bundle root or, in a part folder, by its base name; check its sha256."""
    for path in (bundle / rel, bundle / Path(rel).name):
        if path.is_file():
            if file_sha256(path) != manifest["sha256"][rel]:
                raise BundleError(
                    f"{path} does not match the manifest's sha256: re-copy the bundle"
                )
            return path
    raise BundleError(f"{rel} is missing from the bundle at {bundle}")


def prepare_records(records: np.ndarray, manifest: dict, receivers: int) -> np.ndarray:
    """Raw records ``[5, T, n]`` -> what the network expects: decimated to ``time_samples``.

    ``T`` may be the stored length (``time_samples``) or the full length
    (``time_samples * time_stride``, decimated here by keeping every
    ``time_stride``-th sample).
    """
    records = np.asarray(records, dtype=np.float32)
    time_samples, stride = int(manifest["time_samples"]), int(manifest["time_stride"])
    if records.ndim != 3 or records.shape[2] != receivers:
        raise ValueError(
            f"records must be [sources, time, {receivers} receivers]; got shape {list(records.shape)}"
        )
    if records.shape[1] == time_samples * stride and stride > 1:
        records = records[:, ::stride]
    if records.shape[1] != time_samples:
        raise ValueError(
            f"records have {records.shape[1]} time samples; the model needs {time_samples} "
            f"(or {time_samples * stride} before decimation by {stride})"
        )
    return np.ascontiguousarray(records)


class EdgeEncoder:
    """What device ``k`` runs: its encoder and the codec, nothing else.

    Args:
        bundle: bundle root or ``devices/device-k`` folder.
        device: ``k``.
    """

    def __init__(self, bundle: str | Path, device: int) -> None:
        bundle = Path(bundle)
        self.manifest = manifest = read_manifest(bundle)
        self.device = int(device)
        if not 0 <= self.device < manifest["num_devices"]:
            raise BundleError(
                f"device {device} is not in this bundle (devices 0..{manifest['num_devices'] - 1})"
            )
        self.receivers = np.asarray(manifest["receivers"][self.device])
        self.model_version = int(manifest["model_version"])
        self.encoder: nn.Module | None = None
        if manifest["mode"] == "latent":
            # The architecture is built to take its encoder out (random init, dropped at once):
            # only the encoder's weights are read. A meta-device build would avoid the
            # transient memory but costs seconds of torch imports on every start.
            path = _bundle_file(bundle, manifest, manifest["files"]["devices"][self.device])
            k = self.device
            encoder = _checked_build(
                manifest,
                path,
                f"device {k}'s encoder",
                lambda m: m.encoder_module(k).state_dict(keep_vars=True),
            ).encoder_module(self.device)
            weights = load_file(str(path))
            encoder.load_state_dict(weights, strict=True)
            self.encoder = encoder.eval()
            self.bits = int(manifest["codec"]["bits"])
            self.scale = float(manifest["codec"]["scale"])

    @property
    def mode(self) -> str:
        """``"latent"`` (encoder + codec) or ``"raw"`` (records are sent as they are)."""
        return self.manifest["mode"]

    def warmup(self) -> None:
        """Run once on zeros so the first real record does not pay torch's first-call costs."""
        shape = (NUM_SOURCES, self.manifest["time_samples"], len(self.receivers))
        self.payload(np.zeros(shape, dtype=np.float32), 0)

    @torch.inference_mode()
    def encode(self, records: np.ndarray) -> torch.Tensor:
        """Raw records ``[5, T, n_k]`` -> quantised latent ``[1, *latent_shape]`` (the model's ``encode``)."""
        if self.encoder is None:
            raise BundleError("this bundle's devices send raw records; they have no encoder")
        x = prepare_records(records, self.manifest, len(self.receivers))
        seismic = normalize_seismic(torch.from_numpy(x), self.manifest["dataset"])[None]
        return quantize(self.encoder(seismic), self.bits, self.scale)

    def payload(self, records: np.ndarray, sample_id: int) -> bytes:
        """The bytes device ``k`` sends for one sample (before the HMAC tag)."""
        if self.encoder is None:
            x = prepare_records(records, self.manifest, len(self.receivers))
            return pack_records(
                x, device_id=self.device, sample_id=sample_id, model_version=self.model_version
            )
        return pack_payload(
            self.encode(records)[0],
            device_id=self.device,
            sample_id=sample_id,
            bits=self.bits,
            model_version=self.model_version,
            scale=self.scale,
        )


class CentralDecoder:
    """What the central node runs: the decoder (or, centralised, the whole network).

    Args:
        bundle: bundle root or its ``central`` folder.
    """

    def __init__(self, bundle: str | Path) -> None:
        bundle = Path(bundle)
        self.manifest = manifest = read_manifest(bundle)
        self.num_devices = int(manifest["num_devices"])
        self.receivers = [np.asarray(r) for r in manifest["receivers"]]
        self.model_version = int(manifest["model_version"])
        path = _bundle_file(bundle, manifest, manifest["files"]["central"])

        def central_part(m: nn.Module) -> dict[str, torch.Tensor]:
            state = m.state_dict(keep_vars=True)
            if manifest["mode"] != "latent":
                return state
            encoder_ids = _encoder_tensor_ids(m)
            return {n: t for n, t in state.items() if id(t) not in encoder_ids}

        model = _checked_build(manifest, path, "the central part", central_part)
        weights = load_file(str(path))
        if manifest["mode"] == "latent":
            encoder_ids = _encoder_tensor_ids(model)
            expected = {
                name
                for name, t in model.state_dict(keep_vars=True).items()
                if id(t) not in encoder_ids
            }
            if set(weights) != expected:
                raise BundleError(
                    f"{manifest['files']['central']} does not fit {manifest['architecture']}: "
                    f"unexpected {sorted(set(weights) - expected)}, missing {sorted(expected - set(weights))}"
                )
            model.load_state_dict(weights, strict=False)
            for k in range(self.num_devices):
                model.encoder_module(k).to("meta")  # the centre never runs them: free the memory
            self.latent_shapes = [tuple(s) for s in manifest["latent_shapes"]]
            self.bits = int(manifest["codec"]["bits"])
            self.scale = float(manifest["codec"]["scale"])
        else:
            model.load_state_dict(weights, strict=True)
        self.model = model.eval()

    @property
    def mode(self) -> str:
        return self.manifest["mode"]

    def warmup(self) -> None:
        """Decode one all-zero sample so the first real one does not pay torch's first-call costs."""
        if self.mode == "latent":
            parts = [torch.zeros(s) for s in self.latent_shapes]
        else:
            t = self.manifest["time_samples"]
            parts = [np.zeros((NUM_SOURCES, t, len(r)), dtype=np.float32) for r in self.receivers]
        self.decode(parts)

    @torch.inference_mode()
    def decode(self, parts: Sequence[torch.Tensor | np.ndarray | None]) -> np.ndarray:
        """One sample's per-device parts (``None`` = absent) -> velocity ``[70, 70]`` in m/s.

        ``latent`` mode: each part is device ``k``'s latent ``latent_shape(k)``;
        absent devices are masked out by ``decode``'s presence mask. ``raw``
        mode: each part is ``[5, T, n_k]`` raw records; an absent device's
        receivers are zero (no signal) before normalisation.
        """
        if len(parts) != self.num_devices:
            raise ValueError(f"need {self.num_devices} parts (None for absent); got {len(parts)}")
        if self.mode == "latent":
            latents = [None if p is None else torch.as_tensor(p)[None] for p in parts]
            present = torch.tensor([[p is not None for p in parts]])
            velocity = self.model.decode(latents, present)
        else:
            given = next(p for p in parts if p is not None)
            seismic = np.zeros((given.shape[0], given.shape[1], NUM_RECEIVERS), dtype=np.float32)
            for k, p in enumerate(parts):
                if p is not None:
                    seismic[..., self.receivers[k]] = p
            x = normalize_seismic(torch.from_numpy(seismic), self.manifest["dataset"])[None]
            velocity = self.model(x)
        return denormalize_velocity(velocity[0, 0]).numpy().astype(np.float32)
