"""``model.invert``: raw records in physical units -> velocity in m/s, with the weights' contract.

The README example is two lines (``create_model(..., pretrained=True)``,
``model.invert(records)``); these tests check that it is exactly the
normalised path (slice to the weights' stride, OpenFWI normalisation with the
weights' dataset, network, m/s), and that wrong input is refused in one line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic
from epic_zoo.models import create_model, list_models, list_pretrained
from epic_zoo.models.inference import input_contract, prepare_records

NAME, DATASET = "epic.flatvel-a", "flatvel-a"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model(NAME, pretrained=True)


def _raw(n: int, seed: int = 0, nt: int = 1000) -> torch.Tensor:
    """Records in physical units inside the dataset's raw range (as OpenFWI's are)."""
    info = get_dataset(DATASET)
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 5, nt, 70, generator=g) * 6).clamp(info.data_min, info.data_max)


def _normalised_path(model: torch.nn.Module, raw: torch.Tensor, stride: int) -> torch.Tensor:
    with torch.inference_mode():
        out = model(normalize_seismic(raw[:, :, ::stride], DATASET))
    return denormalize_velocity(out)[:, 0]


def test_contract_comes_from_the_weights(model: torch.nn.Module) -> None:
    contract = input_contract(model)
    cfg = model.pretrained_cfg
    stored = cfg.get("contract") or cfg  # config.json: a "contract" block, or the older flat keys
    assert (contract.dataset, contract.time_stride) == (cfg["dataset"], stored["time_stride"])
    assert contract.time_samples == model.config["time_samples"] == 1000 // stored["time_stride"]


def test_invert_matches_the_normalised_path_exactly(model: torch.nn.Module) -> None:
    raw = _raw(3)
    stride = input_contract(model).time_stride
    expected = _normalised_path(model, raw, stride)
    velocity = model.invert(raw)
    assert velocity.shape == (3, 70, 70)
    assert torch.equal(velocity, expected)
    # already at the weights' stride: the same maps
    assert torch.equal(model.invert(raw[:, :, ::stride].clone()), expected)
    # numpy in, numpy out; float64 records are read as float32
    as_numpy = model.invert(raw.double().numpy())
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, expected.numpy())
    assert 1500.0 <= float(velocity.min()) and float(velocity.max()) <= 4500.0


def test_one_record_and_batches(model: torch.nn.Module) -> None:
    raw = _raw(2, seed=1)
    single = model.invert(raw[0])
    assert single.shape == (70, 70)
    assert torch.equal(single, _normalised_path(model, raw[:1], 4)[0])
    chunked = model.invert(raw, batch_size=1)
    assert torch.equal(chunked[1], _normalised_path(model, raw[1:], 4)[0])


def test_normalisation_is_the_data_pipelines(model: torch.nn.Module) -> None:
    raw = _raw(2, seed=2).numpy()
    # FWIDataset: records[:, ::step] then normalize_seismic in numpy float32
    pipeline = torch.from_numpy(normalize_seismic(raw[:, :, ::4], DATASET).astype(np.float32))
    prepared = prepare_records(raw, input_contract(model))
    torch.testing.assert_close(prepared, pipeline, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("records", "match"),
    [
        (torch.zeros(2, 5, 999, 70), r"999 time samples: expected \[B, 5, 1000, 70\] at 1 ms"),
        (torch.zeros(2, 3, 1000, 70), r"shape \[2, 3, 1000, 70\]: expected"),
        (torch.zeros(5, 1000), r"shape \[5, 1000\]: expected"),
        (torch.full((1, 5, 1000, 70), float("nan")), "NaN"),
    ],
)
def test_wrong_records_are_refused(model: torch.nn.Module, records, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model.invert(records)


def test_already_normalised_records_are_refused(model: torch.nn.Module) -> None:
    normalised = normalize_seismic(_raw(1), DATASET)
    assert float(normalised.abs().max()) <= 1.0
    with pytest.raises(ValueError, match="look already normalised"):
        model.invert(normalised)
    # on purpose: the check can be turned off
    assert model.invert(normalised, check_units=False).shape == (1, 70, 70)


def test_fresh_model_needs_dataset_and_weights_refuse_another() -> None:
    fresh = create_model("epic", time_samples=250)
    with pytest.raises(ValueError, match="pass dataset=NAME"):
        fresh.invert(_raw(1))
    assert fresh.invert(_raw(1), dataset="style-a").shape == (1, 70, 70)
    fresh.pretrained_cfg = {"dataset": DATASET, "time_stride": 4}
    with pytest.raises(ValueError, match="trained on 'flatvel-a'"):
        fresh.invert(_raw(1), dataset="curvevel-a")


def test_list_models_pretrained_like_timm() -> None:
    assert list_models(pretrained=True) == list_pretrained()
    assert list_models("epic.flat*", pretrained=True) == list_pretrained("epic.flat*")
    assert NAME in list_models(pretrained=True) and "epic" in list_models()
