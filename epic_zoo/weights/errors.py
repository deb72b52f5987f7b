"""Errors of the pretrained-weights layer (one clear message each, with the fix)."""

from __future__ import annotations


class HubFormatError(ValueError):
    """A Hub-format folder or file is missing, truncated or inconsistent."""


class ChecksumError(HubFormatError):
    """``model.safetensors`` does not have the sha256 recorded in the registry."""


class UnknownPretrainedError(KeyError):
    """The name is not in the registry of pretrained weights."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PretrainedUnavailableError(RuntimeError):
    """The weights are registered but cannot be found locally nor downloaded."""


class ArchitectureMismatchError(HubFormatError):
    """``config.json`` names an architecture other than the one asked for (checked before building)."""
