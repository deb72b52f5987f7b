"""Hub-native models: ``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` on every class.

:class:`HubMixin` is ``huggingface_hub``'s ``PyTorchModelHubMixin`` speaking
epic_zoo's Hub format (``config.json`` with ``architecture`` and
``model_kwargs``, ``model.safetensors``, a model card with ``model-index``):

>>> model = EPIC.from_pretrained("epic.flatvel-a")          # doctest: +SKIP
>>> model = EPIC.from_pretrained("ORG/epic-flatvel-a")      # doctest: +SKIP
>>> model.save_pretrained("out/epic.flatvel-a")             # doctest: +SKIP
>>> model.push_to_hub("ORG/epic-flatvel-a")                 # doctest: +SKIP

``from_pretrained`` accepts a local folder, a Hub repo id (``ORG/REPO`` or
``hf-hub:ORG/REPO``) or a registered pretrained name and checks that the
folder holds this class. ``save_pretrained`` of a loaded model rewrites its
folder byte for byte (weights and ``config.json``); a model loaded from a run
folder or ``.ckpt`` knows its dataset from the run; a freshly built one needs
``dataset=`` (it fixes the normalisation the weights expect). ``push_to_hub``
writes the card for the repo it uploads to.

Only the weights-format layer (:mod:`epic_zoo.weights`: folder format,
registry, spec resolution) is used; the loading itself is
:func:`epic_zoo.models.factory.load_model`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, PyTorchModelHubMixin

from epic_zoo.data.contract import InputContract
from epic_zoo.models.factory import from_pretrained
from epic_zoo.models.inference import invert
from epic_zoo.weights.folder import save_hub_folder, write_hub_folder
from epic_zoo.weights.registry import read_registry


class HubMixin(
    PyTorchModelHubMixin,
    library_name="epic_zoo",
    license="mit",
    pipeline_tag="image-to-image",
    tags=["epic_zoo", "full-waveform-inversion", "seismic"],
):
    """Adds the Hugging Face Hub methods to an epic_zoo network (an ``nn.Module`` with ``config``)."""

    pretrained_cfg: dict[str, Any] | None = None
    """``config.json`` of the folder the weights came from (``None`` for a fresh model)."""
    contract: InputContract | None = None
    """The records the weights expect (``None`` for a fresh model or unknown)."""
    source: dict[str, Any] | None = None
    """Where the weights came from (:func:`epic_zoo.models.load_model`; ``None`` for a fresh model)."""

    def invert(self, records: Any, **kwargs: Any) -> Any:
        """Velocity in m/s ``[B, 70, 70]`` from raw records ``[B, 5, 1000, 70]`` (physical units).

        The weights' own normalisation, time stride and geometry are applied
        (:func:`epic_zoo.models.inference.invert`, which documents ``kwargs``).
        """
        return invert(self, records, **kwargs)

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ):
        """Load weights of this class from a folder, Hub repo id or pretrained name.

        Keyword arguments (``revision``, ``cache_dir``, ``local_files_only``,
        ``force_download``, ``token``, ``map_location``, constructor arguments)
        as :func:`epic_zoo.models.factory.from_pretrained`. Raises
        ``ArchitectureMismatchError`` when the source holds another class.
        """
        return from_pretrained(pretrained_model_name_or_path, expected=cls, **kwargs)

    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: Mapping[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: Mapping[str, Any] | None = None,
        dataset: str | None = None,
        record: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write the Hub-format folder (``model.safetensors``, ``config.json``, ``README.md``).

        Args:
            save_directory: folder to write.
            config: extra training-record entries (``huggingface_hub`` passes its
                own config here; it is merged into ``record``).
            repo_id: Hub repo named in the card (and pushed to with ``push_to_hub``).
            push_to_hub: also upload the folder (``push_to_hub_kwargs`` passed on).
            model_card_kwargs: unused (the card is epic_zoo's, with ``model-index``).
            dataset: dataset the weights were trained on; default: the loaded one.
            record, metrics: training record and test metrics of a fresh model.
        """
        loaded = {k: v for k, v in (self.pretrained_cfg or {}).items() if k != "source"}
        if repo_id is None and loaded.get("name") in (registered := read_registry()):
            repo_id = registered[loaded["name"]].repo_id  # the card names the published repo
        if loaded and not (config or record or metrics) and dataset in (None, loaded["dataset"]):
            write_hub_folder(self, save_directory, loaded, repo_id=repo_id)
        else:
            run = self.source or {}  # a run folder or .ckpt: its record and metrics
            dataset = dataset or loaded.get("dataset") or (self.contract and self.contract.dataset)
            record = {**(run.get("record") or {}), **dict(record or {})}
            if metrics is None and not loaded:
                metrics = run.get("metrics")
            if dataset is None:
                raise ValueError(
                    f"{type(self).__name__}.save_pretrained needs dataset=NAME (e.g. "
                    "'flatvel-a'): it fixes the normalisation these weights expect"
                )
            save_hub_folder(
                self,
                save_directory,
                dataset=dataset,
                contract=self.contract
                if self.contract is not None and dataset == self.contract.dataset
                else None,
                record={**(loaded.get("record") or {}), **dict(config or {}), **dict(record or {})},
                metrics=metrics if metrics is not None else loaded.get("metrics"),
                repo_id=repo_id,
            )
        if push_to_hub:
            return self.push_to_hub(
                repo_id=repo_id or Path(save_directory).name, **push_to_hub_kwargs
            )
        return None

    def push_to_hub(  # type: ignore[override]
        self,
        repo_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        commit_message: str = "Push model using huggingface_hub.",
        private: bool | None = None,
        token: str | None = None,
        branch: str | None = None,
        create_pr: bool | None = None,
        allow_patterns: list[str] | str | None = None,
        ignore_patterns: list[str] | str | None = None,
        delete_patterns: list[str] | str | None = None,
        model_card_kwargs: Mapping[str, Any] | None = None,
        **save_kwargs: Any,
    ) -> str:
        """Upload the Hub-format folder to ``repo_id``; its card loads from ``repo_id``.

        As ``huggingface_hub``'s ``push_to_hub`` (create the repo, write the
        folder, one commit), except that the folder is written for the repo
        it goes to (the card's usage line names ``repo_id``); ``save_kwargs``
        (``dataset``, ``record``, ``metrics``) go to :meth:`save_pretrained`.
        Returns the commit URL.
        """
        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / repo_id
            self.save_pretrained(folder, config=config, repo_id=repo_id, **save_kwargs)
            return api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=folder,
                commit_message=commit_message,
                revision=branch,
                create_pr=create_pr,
                allow_patterns=allow_patterns,
                ignore_patterns=ignore_patterns,
                delete_patterns=delete_patterns,
            )
