"""Where weights come from: committed folder -> Hugging Face cache -> Hub download.

Weights-format layer (below the models): finds and verifies files, never builds a model.
:func:`resolve_pretrained` resolves a registered name in this order; every
copy's functional files (``config.json`` and ``model.safetensors``) are checked
against the registry's sha256 before use, and a download that fails the check
is deleted from the cache. :func:`download_repo` fetches any Hub-format repo
(``hf-hub:ORG/REPO`` specs) honouring ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

import epic_zoo
from epic_zoo.weights.errors import ChecksumError, PretrainedUnavailableError
from epic_zoo.weights.files import CONFIG_NAME, HUB_FILES, WEIGHTS_NAME
from epic_zoo.weights.registry import PretrainedInfo, default_registry_path, get_pretrained_info


def hf_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The ``huggingface_hub`` cache folder, read from the environment at call time."""
    if cache_dir is not None:
        return Path(cache_dir)
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(hf_constants.HF_HUB_CACHE)


def hf_endpoint(endpoint: str | None = None) -> str | None:
    """Hub endpoint: the argument, else ``HF_ENDPOINT`` as set now (mirrors), else the default."""
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (environment) or when huggingface_hub was imported."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return env in {"1", "ON", "YES", "TRUE"} or bool(hf_constants.HF_HUB_OFFLINE)


def remove_cached(path: Path) -> None:
    """Delete a file of the HF cache: the snapshot link and the blob it points to."""
    target = path.resolve()
    for p in {path, target}:
        if p.exists() or p.is_symlink():
            p.unlink()


def cached_folder(info: PretrainedInfo, cache_dir: Path) -> Path | None:
    """Snapshot folder of ``info`` in the HF cache if config and weights are there."""
    found = []
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        path = try_to_load_from_cache(
            info.repo_id, filename, cache_dir=str(cache_dir), revision=info.revision
        )
        if not isinstance(path, str):
            return None
        found.append(Path(path))
    return found[1].parent


def _verified(folder: Path, info: PretrainedInfo, source: str) -> bool:
    """True if ``folder``'s functional files have the registry's sha256; prints why not otherwise."""
    bad = info.mismatched_files(folder)
    if not bad:
        return True
    print(
        f"epic_zoo.hub: {info.name}: {source} copy in {folder}: {', '.join(bad)} missing or not "
        "matching the registry's sha256; not using it",
        file=sys.stderr,
    )
    return False


def _download(
    info: PretrainedInfo, cache_dir: Path, endpoint: str | None, token: str | bool | None
) -> Path:
    """Download the Hub-format files of ``info`` at its pinned revision into the HF cache."""
    if not info.revision:
        raise PretrainedUnavailableError(
            f"{info.name} is registered but not published yet (no pinned revision) and has no "
            "local copy; train it with its recipe or ask the maintainers"
        )
    paths = {}
    for filename in HUB_FILES:
        try:
            paths[filename] = hf_hub_download(
                info.repo_id,
                filename,
                revision=info.revision,
                cache_dir=str(cache_dir),
                endpoint=hf_endpoint(endpoint),
                token=token,
                library_name="epic_zoo",
                library_version=epic_zoo.__version__,
            )
        except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as err:
            raise PretrainedUnavailableError(
                f"{info.name}: {filename} not found at {info.repo_id}@{info.revision} on the Hub "
                f"({type(err).__name__}); the registry entry is stale, update epic_zoo"
            ) from err
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
            raise PretrainedUnavailableError(
                f"{info.name}: cannot download {filename} from {info.repo_id}@{info.revision} "
                f"({type(err).__name__}: {err}). Check the network, or on a machine with network "
                f"run `python -m epic_zoo.hub pull {info.name}` and copy the cache {cache_dir}"
            ) from err
    return Path(paths[WEIGHTS_NAME]).parent


def resolve_pretrained(
    name: str,
    *,
    registry: str | Path | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    skip_local: bool = False,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> tuple[Path, str]:
    """Find (or download) the verified Hub-format folder of a pretrained name.

    Order: the committed folder named by the registry -> the Hugging Face cache
    -> a download of the pinned revision. Each candidate's
    ``model.safetensors`` must have the registry's sha256; a cached or
    downloaded file that does not is deleted from the cache.

    Args:
        name: pretrained name, e.g. ``"epic.flatvel-a"``.
        registry: path of ``registry.json`` (default :func:`default_registry_path`).
        cache_dir: HF cache folder (default from ``HF_HUB_CACHE`` / ``HF_HOME``).
        local_files_only: never use the network (default: ``HF_HUB_OFFLINE``).
        skip_local: ignore the committed folder (to check the published copy).
        endpoint, token: passed to ``huggingface_hub``.

    Returns:
        ``(folder, source)`` with source one of ``"local"``, ``"cache"``, ``"hub"``.

    Raises:
        UnknownPretrainedError, PretrainedUnavailableError, ChecksumError.
    """
    registry_path = Path(registry) if registry is not None else default_registry_path()
    info = get_pretrained_info(name, registry_path)
    if local_files_only is None:
        local_files_only = hf_offline()
    cache = hf_cache_dir(cache_dir)

    if info.local and not skip_local:
        folder = registry_path.parent / info.local
        if (folder / WEIGHTS_NAME).is_file() and _verified(folder, info, "committed"):
            return folder, "local"

    folder = cached_folder(info, cache)
    if folder is not None:
        if _verified(folder, info, "cached"):
            return folder, "cache"
        remove_cached(folder / WEIGHTS_NAME)

    if local_files_only:
        committed = registry_path.parent / info.local if info.local else None
        if skip_local and committed is not None and _verified(committed, info, "committed"):
            raise PretrainedUnavailableError(
                f"{info.name}: cannot fetch from the Hub ({info.repo_id}@{info.revision}) while "
                f"HF_HUB_OFFLINE is set, and it is not in the Hugging Face cache {cache}. The "
                f"committed copy {committed} is verified and usable: drop --from-hub (or "
                "unset HF_HUB_OFFLINE to download)"
            )
        where = f" at {committed}" if committed is not None else ""
        raise PretrainedUnavailableError(
            f"{info.name} is not available offline: no verified committed copy{where} and not in "
            f"the Hugging Face cache {cache} (repo {info.repo_id}@{info.revision}); HF_HUB_OFFLINE "
            f"is set. Run `python -m epic_zoo.hub pull {info.name}` with network (or unset "
            "HF_HUB_OFFLINE), or point HF_HOME at a populated cache"
        )

    folder = _download(info, cache, endpoint, token)
    if not _verified(folder, info, "downloaded"):
        remove_cached(folder / WEIGHTS_NAME)
        raise ChecksumError(
            f"{info.name}: the download of {info.repo_id}@{info.revision} does not have the "
            "sha256 recorded in the registry; it was removed from the cache. Try again; "
            "if it persists, the Hub copy and the registry disagree (report it)"
        )
    return folder, "hub"


def download_repo(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    force_download: bool = False,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Snapshot folder of a Hub-format repo (``config.json``, ``model.safetensors``, card).

    Uses the Hugging Face cache; with ``local_files_only`` (default:
    ``HF_HUB_OFFLINE``) only the cache. No registry hash exists for an arbitrary
    repo: the caller validates the folder (format, architecture) before loading.

    Raises:
        PretrainedUnavailableError: not cached while offline, or not on the Hub.
    """
    if local_files_only is None:
        local_files_only = hf_offline()
    paths: dict[str, str] = {}
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            paths[filename] = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=str(hf_cache_dir(cache_dir)),
                force_download=force_download,
                local_files_only=local_files_only,
                endpoint=hf_endpoint(endpoint),
                token=token,
                library_name="epic_zoo",
                library_version=epic_zoo.__version__,
            )
        except LocalEntryNotFoundError as err:
            raise PretrainedUnavailableError(
                f"hf-hub:{repo_id}: {filename} is not in the Hugging Face cache "
                f"{hf_cache_dir(cache_dir)} and the network is off (HF_HUB_OFFLINE) or "
                "unreachable; download it once with network, or pass a local folder"
            ) from err
        except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as err:
            raise PretrainedUnavailableError(
                f"hf-hub:{repo_id}: {filename} not found on the Hub ({type(err).__name__}); "
                "check the repo id (ORG/NAME) and revision"
            ) from err
        except (HfHubHTTPError, OSError) as err:
            raise PretrainedUnavailableError(
                f"hf-hub:{repo_id}: cannot download {filename} ({type(err).__name__}: {err}); "
                "check the network or pass a local folder"
            ) from err
    return Path(paths[WEIGHTS_NAME]).parent
