"""Field-noise training augmentation (epic_zoo.data.degrade.field_noise_batch, data.field_noise).

The noise is checked where it is added: in the raw domain (denormalised batches).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from epic_zoo.data.datamodule import FIELD_NOISE_DEFAULTS, FWIDataModule
from epic_zoo.data.degrade import field_noise_batch
from epic_zoo.data.geometry import DT
from epic_zoo.data.transforms import denormalize_seismic
from epic_zoo.run_identity import config_hash, identity
from tests.helpers import augmented_twice, seeded_batches, tiny_datamodule

STRIDE = 4  # the tiny profile's: a sample every 4 ms


def _module(root: Path, **options) -> FWIDataModule:
    return tiny_datamodule(root, field_noise=options or None)


_batches = seeded_batches


def _raw(seismic: torch.Tensor) -> torch.Tensor:
    return denormalize_seismic(seismic.double(), "flatvel-a")


def _snr_db(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``[B, shot]`` SNR in dB of each shot record."""
    return 10 * torch.log10(signal.square().mean(dim=(2, 3)) / noise.square().mean(dim=(2, 3)))


def test_off_by_default_batches_unchanged(tiny_data_root, one_thread):
    plain = _module(tiny_data_root)
    assert plain.field_noise == FIELD_NOISE_DEFAULTS and plain.field_noise["p"] == 0.0
    assert "field_noise" not in plain.hparams  # off: checkpoints' hyperparameters as before
    plain.trainer = SimpleNamespace(training=True)
    for a, b in zip(
        _batches(plain.train_dataloader()), _batches(plain.train_dataloader()), strict=True
    ):
        out = plain.on_after_batch_transfer(b, 0)
        assert out is b and torch.equal(a["seismic"], out["seismic"])


def test_p1_noise_has_the_snr_and_the_band_in_the_raw_domain(tiny_data_root, one_thread):
    lo, hi, band = 12.0, 18.0, (5.0, 30.0)
    dm = _module(tiny_data_root, p=1.0, snr_db=[lo, hi], dead_max=0.0, band_hz=list(band))
    dm.trainer = SimpleNamespace(training=True)
    seen = []
    for batch in _batches(dm.train_dataloader()):
        clean = _raw(batch["seismic"])
        noise = _raw(dm.on_after_batch_transfer(batch, 0)["seismic"]) - clean
        snr = _snr_db(clean, noise)
        # one SNR per sample (all five shot records), inside the requested range
        assert float((snr - snr[:, :1]).abs().max()) < 0.05
        assert float(snr.min()) > lo - 0.05 and float(snr.max()) < hi + 0.05
        seen.append(snr[:, 0])
        power = torch.fft.rfft(noise, dim=2).abs().square().sum(dim=(0, 1, 3))
        freqs = torch.fft.rfftfreq(noise.shape[2], d=STRIDE * DT)
        outside = (freqs < band[0] - 0.5) | (freqs > band[1] + 0.5)
        assert float(power[outside].sum()) < 1e-6 * float(power.sum())
    snrs = torch.cat(seen)
    assert len(snrs) == 16 and float(snrs.max() - snrs.min()) > 1.0  # drawn, not fixed


def test_dead_traces_are_zero_in_every_shot(tiny_data_root, one_thread):
    dm = _module(tiny_data_root, p=1.0, snr_db=[20, 20], dead_max=0.5)
    dm.trainer = SimpleNamespace(training=True)
    counts = []
    for batch in _batches(dm.train_dataloader()):
        out = _raw(dm.on_after_batch_transfer(batch, 0)["seismic"])
        dead = out.abs().amax(dim=2) < 1e-4  # [B, shot, receiver]
        assert torch.equal(dead, dead[:, :1].expand_as(dead))  # the same receivers in every shot
        counts += dead[:, 0].sum(dim=1).tolist()
    assert max(counts) <= 35 and max(counts) > 0 and len(set(counts)) > 1


def test_torch_batch_shares_the_numpy_core() -> None:
    """p=1, one SNR, no dead traces: the noise is the shared core's for the same white noise."""
    from epic_zoo.data.degrade import shaped_noise

    records = torch.randn(3, 5, 200, 70, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(7)
    out = field_noise_batch(records, 1.0, (20.0, 20.0), 0.0, dt=DT, generator=gen)
    gen = torch.Generator().manual_seed(7)
    torch.rand(3, generator=gen), torch.rand(3, generator=gen)  # pick, snr
    white = torch.randn(records.shape, generator=gen)
    expected = records + shaped_noise(white, records, 20.0, (2.0, 40.0), DT)
    torch.testing.assert_close(out, expected)
    p0 = field_noise_batch(records, 0.0)
    assert p0 is records


def test_validation_and_test_batches_are_never_augmented(tiny_data_root, one_thread):
    plain = _module(tiny_data_root)
    dm = _module(tiny_data_root, p=1.0)
    dm.trainer = SimpleNamespace(training=False)
    for name in ("val_dataloader", "test_dataloader"):
        for a, b in zip(getattr(plain, name)(), getattr(dm, name)(), strict=True):
            assert torch.equal(a["seismic"], dm.on_after_batch_transfer(b, 0)["seismic"])


def test_draws_follow_the_global_seed(tiny_data_root, one_thread):
    records, a, b = augmented_twice(_module(tiny_data_root, p=0.5))
    assert torch.equal(a, b) and not torch.equal(a, records)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"p": 1.5}, "data.field_noise.p=1.5"),
        ({"p": "half"}, "data.field_noise.p=half"),
        ({"snr_db": [30, 10]}, "data.field_noise.snr_db"),
        ({"snr_db": 20}, "data.field_noise.snr_db"),
        ({"dead_max": 1.0}, "data.field_noise.dead_max=1.0"),
        ({"dead_max": -0.1}, "data.field_noise.dead_max=-0.1"),
        ({"band_hz": [40, 2]}, "data.field_noise.band_hz"),
        ({"snr": [10, 30]}, "data.field_noise has unknown key(s) snr"),
    ],
)
def test_bad_options_raise_one_line(options, named):
    with pytest.raises(ValueError) as err:
        FWIDataModule("flatvel-a", profile="tiny", field_noise=options)
    message = str(err.value)
    assert message.startswith(named) and "\n" not in message
    assert "e.g. data.field_noise." in message or "use only p, snr_db" in message


def test_union_refuses_field_noise():
    from epic_zoo.data.union import UnionDataModule

    with pytest.raises(ValueError, match="set data.field_noise.p=0"):
        UnionDataModule(["flatvel-a", "style-a"], profile="tiny", field_noise={"p": 0.5})


def test_setting_is_in_the_identity_only_when_on():
    base = {"seed": 0, "data": {"dataset": "flatvel-a", "recipe_residuals": {"p": 0.0}}}
    off = {**base, "data": {**base["data"], "field_noise": dict(FIELD_NOISE_DEFAULTS)}}
    on = {**base, "data": {**base["data"], "field_noise": {**FIELD_NOISE_DEFAULTS, "p": 0.5}}}
    other = {**base, "data": {**base["data"], "field_noise": {**FIELD_NOISE_DEFAULTS, "p": 0.25}}}
    assert config_hash(off) == config_hash(base)  # older runs keep their hash and folder
    assert len({config_hash(base), config_hash(on), config_hash(other)}) == 3
    assert identity(on)["data.field_noise.snr_db"] == [10.0, 30.0]


def test_records_keep_the_setting(tiny_data_root):
    from epic_zoo.evidence import data_provenance
    from epic_zoo.hub.export import data_record

    dm = FWIDataModule("flatvel-a", profile="tiny", root=tiny_data_root, field_noise={"p": 0.5})
    assert dm.run_record()["field_noise"]["p"] == 0.5
    assert data_provenance(dm)["field_noise"]["snr_db"] == [10.0, 30.0]
    assert data_record(dict(dm.hparams))["field_noise"]["p"] == 0.5
    off = FWIDataModule("flatvel-a", profile="tiny", root=tiny_data_root)
    assert "field_noise" not in data_record(dict(off.hparams))
