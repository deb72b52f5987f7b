"""Recipe-boundary residuals (epic_zoo.data.residuals) and the data module's opt-in augmentation.

The recipe port costs ~5 s per map on one core: the templates of 2 maps are
made once per module (into a copy of the tiny data root) and reused.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from epic_zoo.data import residuals
from epic_zoo.data.datamodule import FWIDataModule, FWIDataset
from epic_zoo.data.forward import simulate
from epic_zoo.data.store import H5Split, profile_root
from epic_zoo.data.transforms import normalize_seismic
from tests.helpers import augmented_twice, seeded_batches, tiny_datamodule

NUM = 2
STRIDE = 4  # the tiny profile's


@pytest.fixture(scope="module")
def residual_root(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny data root whose flatvel-a folder holds the templates of 2 maps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("residual_root") / "data"
    shutil.copytree(tiny_data_root, root)
    train = profile_root(root, "tiny", 0) / "flatvel-a" / "train"
    residuals.ensure_recipe_residuals(train, "flatvel-a", NUM, STRIDE)
    return root


def _dataset_dir(root: Path) -> Path:
    return profile_root(root, "tiny", 0) / "flatvel-a"


def test_templates_are_port_minus_stored_deepwave_records(residual_root):
    """Shape [2, 5, 250, 70]; template k = normalised port record - the stored (deepwave) item of the same map."""
    path = _dataset_dir(residual_root) / residuals.residual_cache_name(NUM, STRIDE)
    templates = np.load(path)
    assert templates.shape == (NUM, 5, 250, 70) and templates.dtype == np.float32
    train = FWIDataset(H5Split(_dataset_dir(residual_root) / "train"))
    last = len(train) - 1  # the last map is the second template
    velocity = H5Split(_dataset_dir(residual_root) / "train")[last][1]
    port = normalize_seismic(simulate(velocity, backend="openfwi")[:, :, ::STRIDE], "flatvel-a")
    expected = port[0] - train[last]["seismic"].numpy()
    np.testing.assert_allclose(templates[1], expected, atol=2e-4)
    # the artefact is late: the first 0.4 s barely differ, the last 0.2 s do
    late, early = np.abs(templates[:, :, 200:]).mean(), np.abs(templates[:, :, :100]).mean()
    assert late > 3 * early


def test_cache_is_reused(residual_root, monkeypatch, capsys):
    def no_port(*args, **kwargs):
        raise AssertionError("the cached templates should have been reused")

    monkeypatch.setattr(residuals, "recipe_residuals", no_port)
    train = _dataset_dir(residual_root) / "train"
    path = residuals.ensure_recipe_residuals(train, "flatvel-a", NUM, STRIDE)
    assert path == train.parent / "recipe_residuals-n2-stride4.npy"
    assert "simulating" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="data.recipe_residuals.num=17 .* at most 16"):
        residuals.ensure_recipe_residuals(train, "flatvel-a", 17, STRIDE)


def _module(root: Path, **options) -> FWIDataModule:
    return tiny_datamodule(root, recipe_residuals=options or None)


_batches = seeded_batches


def test_p0_leaves_training_batches_bit_identical(residual_root):
    before = _module(residual_root)
    off = _module(residual_root, p=0.0, num=NUM)
    assert off.residual_templates is None
    off.trainer = SimpleNamespace(training=True)
    for a, b in zip(
        _batches(before.train_dataloader()), _batches(off.train_dataloader()), strict=True
    ):
        b = off.on_after_batch_transfer(b, 0)
        assert torch.equal(a["seismic"], b["seismic"]) and torch.equal(a["index"], b["index"])
    assert off.hparams["recipe_residuals"] == {"p": 0.0, "num": NUM, "scale": [0.5, 1.5]}


def test_p1_adds_one_scaled_template_to_every_training_sample_only(residual_root):
    plain = _module(residual_root)
    dm = _module(residual_root, p=1.0, num=NUM)
    templates = dm.residual_templates
    assert templates is not None and templates.shape == (NUM, 5, 250, 70)
    dm.trainer = SimpleNamespace(training=True)
    seen = 0
    for batch in _batches(dm.train_dataloader()):
        x = batch["seismic"].clone()
        out = dm.on_after_batch_transfer(batch, 0)["seismic"]
        for d in out - x:
            # exactly one template, scaled within [0.5, 1.5]
            fits = []
            for t in templates:
                s = float((d * t).sum() / (t * t).sum())
                fits.append((float((d - s * t).abs().max()), s))
            err, s = min(fits)
            assert err < 1e-5 and 0.5 <= s <= 1.5
            seen += 1
    assert seen == 16
    # validation/test: the hook leaves them alone outside training, and the loaders are unchanged
    dm.trainer = SimpleNamespace(training=False)
    for name in ("val_dataloader", "test_dataloader"):
        for a, b in zip(getattr(plain, name)(), getattr(dm, name)(), strict=True):
            assert torch.equal(a["seismic"], dm.on_after_batch_transfer(b, 0)["seismic"])


def test_draws_follow_the_global_seed(residual_root):
    _, a, b = augmented_twice(_module(residual_root, p=0.5, num=NUM))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"p": 1.5}, "data.recipe_residuals.p=1.5"),
        ({"p": "half"}, "data.recipe_residuals.p=half"),
        ({"num": 0}, "data.recipe_residuals.num=0"),
        ({"num": 2.5}, "data.recipe_residuals.num=2.5"),
        ({"scale": [1.5, 0.5]}, "data.recipe_residuals.scale"),
        ({"scale": 1.0}, "data.recipe_residuals.scale"),
        ({"prob": 0.5}, "data.recipe_residuals has unknown key(s) prob"),
    ],
)
def test_bad_options_raise_one_line(options, named):
    with pytest.raises(ValueError) as err:
        FWIDataModule("flatvel-a", profile="tiny", recipe_residuals=options)
    message = str(err.value)
    assert message.startswith(named) and "\n" not in message
    assert "e.g. data.recipe_residuals." in message or "use only p, num, scale" in message


def test_real_openfwi_data_refuse_residuals(tiny_openfwi_root):
    with pytest.raises(ValueError, match="data.recipe_residuals.p=0"):
        FWIDataModule(
            "flatvel-a", profile="full", openfwi_root=tiny_openfwi_root, recipe_residuals={"p": 0.5}
        )


def test_provenance_records_the_option(tiny_data_root):
    from epic_zoo.evidence import data_provenance

    dm = FWIDataModule("flatvel-a", profile="tiny", root=tiny_data_root)
    assert data_provenance(dm)["recipe_residuals"]["p"] == 0.0
