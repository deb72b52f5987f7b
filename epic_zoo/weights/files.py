"""The files of a Hub-format folder: names, hashes, atomic writes, integrity checks.

Weights-format layer: reads and writes files, never builds a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants as hf_constants
from safetensors import SafetensorError, safe_open

from epic_zoo.weights.errors import HubFormatError

HUB_FORMAT = "epic_zoo.hub"
"""Value of ``config.json["format"]``."""
HUB_FORMAT_VERSION = 1
"""Bumped whenever the folder layout or ``config.json`` keys change."""
WEIGHTS_NAME = hf_constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
CONFIG_NAME = hf_constants.CONFIG_NAME  # "config.json"
CARD_NAME = hf_constants.REPOCARD_NAME  # "README.md"
HUB_FILES: tuple[str, ...] = (CONFIG_NAME, CARD_NAME, WEIGHTS_NAME)
"""Files of one Hub-format folder, in download order (weights last)."""
FUNCTIONAL_FILES: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)
"""Files that change what a model computes; the registry records a sha256 of each."""
DEFAULT_LICENSE = "mit"

_GIT_LFS_POINTER = b"version https://git-lfs"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_hashes(folder: str | Path, names: Iterable[str] = FUNCTIONAL_FILES) -> dict[str, str]:
    """``{file name: sha256}`` of the functional files of a Hub-format folder."""
    folder = Path(folder)
    return {name: file_sha256(folder / name) for name in names}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | Path | None, *, fix: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path`` (``{}`` for ``None``), with a clear error.

    Raises :class:`HubFormatError` for a file that cannot be read or is not a
    JSON object; ``fix`` (e.g. ``"download it again"``) ends the message.
    """
    if path is None:
        return {}
    hint = f"; {fix}" if fix else ""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HubFormatError(f"cannot read JSON object from {path}: {err}{hint}") from err
    if not isinstance(value, dict):
        raise HubFormatError(f"{path} must hold a JSON object{hint}")
    return value


MAX_HEADER_BYTES = 100 << 20
"""Largest safetensors header read (the library's own limit); a larger one is refused."""


SAFETENSORS_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
"""torch dtype -> the dtype string of a safetensors header."""


def read_safetensors_header(path: Path, what: str) -> dict[str, dict[str, Any]]:
    """``{tensor name: {"dtype", "shape", "data_offsets"}}`` from a safetensors file's header.

    The header length is bounded by the file size and :data:`MAX_HEADER_BYTES`
    before it is read; ``__metadata__`` is dropped. Raises :class:`HubFormatError`.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if not 0 < header_len <= min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {header_len} does not fit a {size}-byte file")
            header = json.loads(fh.read(header_len))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        for key, value in tensors.items():
            if not (
                isinstance(value, dict)
                and isinstance(value.get("dtype"), str)
                and isinstance(value.get("shape"), list)
                and isinstance(value.get("data_offsets"), list)
            ):
                raise ValueError(f"tensor {key!r} has no dtype, shape and data_offsets")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise HubFormatError(
            f"{what}: {path} is not a complete safetensors file ({err}); delete it and "
            "download or export it again"
        ) from err
    return tensors


def check_safetensors(path: Path, what: str) -> None:
    """Raise :class:`HubFormatError` if ``path`` is not a complete safetensors file."""
    if not path.is_file():
        raise HubFormatError(f"{what}: {path} is missing")
    with open(path, "rb") as fh:
        head = fh.read(len(_GIT_LFS_POINTER))
    if head == _GIT_LFS_POINTER:
        raise HubFormatError(
            f"{what}: {path} is a git-lfs pointer, not the weights; run `git lfs pull` "
            "or delete it to download from the Hub"
        )
    header = read_safetensors_header(path, what)
    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
        end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
        with open(path, "rb") as fh:  # the header's offsets must cover the file exactly
            header_len = int.from_bytes(fh.read(8), "little")
        if 8 + header_len + end != path.stat().st_size:
            raise SafetensorError(
                f"{path.stat().st_size} bytes where the header describes {8 + header_len + end}"
            )
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise HubFormatError(
            f"{what}: {path} is not a complete safetensors file ({err}); delete it and "
            "download or export it again"
        ) from err
