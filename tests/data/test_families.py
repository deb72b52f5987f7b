"""Tests for the ten velocity families (epic_zoo.data.families)."""

from __future__ import annotations

import dataclasses
import socket

import numpy as np
import pytest

from epic_zoo.data import families
from epic_zoo.data.catalog import DATASET_NAMES
from epic_zoo.data.families import (
    FAMILY_PARAMS,
    LayeredParams,
    generate_velocity,
    sample_from_params,
    sample_seed,
    sample_velocity,
)
from epic_zoo.data.geometry import NX, NZ, V_MAX, V_MIN

N_STAT = 50  # samples per statistical check


def _total_variation(velocity: np.ndarray) -> np.ndarray:
    """Mean absolute neighbour difference (z and x) per map, m/s per cell; ``[N, 1, Z, X] -> [N]``."""
    dz = np.abs(np.diff(velocity, axis=-2)).mean(axis=(-3, -2, -1))
    dx = np.abs(np.diff(velocity, axis=-1)).mean(axis=(-3, -2, -1))
    return dz + dx


def _lateral_jumps(velocity: np.ndarray) -> np.ndarray:
    """Cells whose right neighbour differs, ``[Z, X] -> [Z, X - 1]`` bool."""
    return np.diff(velocity, axis=1) != 0


def test_family_params_cover_every_dataset():
    assert set(FAMILY_PARAMS) == set(DATASET_NAMES)


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_shape_dtype_and_range(dataset):
    velocity = generate_velocity(dataset, range(8), seed=3)
    assert velocity.shape == (8, 1, NZ, NX)
    assert velocity.dtype == np.float32
    assert np.isfinite(velocity).all()
    assert velocity.min() >= V_MIN and velocity.max() <= V_MAX
    assert len({m.tobytes() for m in velocity}) == 8  # no two maps alike


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_deterministic_and_independent_of_batch(dataset):
    batch = generate_velocity(dataset, range(10), seed=7, split="val")
    np.testing.assert_array_equal(batch, generate_velocity(dataset, range(10), seed=7, split="val"))
    np.testing.assert_array_equal(generate_velocity(dataset, [5], seed=7, split="val")[0], batch[5])
    np.testing.assert_array_equal(
        generate_velocity(dataset, [9, 2], seed=7, split="val"), batch[[9, 2]]
    )
    assert not np.array_equal(batch[0], batch[1])
    assert not np.array_equal(batch[5], generate_velocity(dataset, [5], seed=8, split="val")[0])
    assert not np.array_equal(batch[5], generate_velocity(dataset, [5], seed=7, split="train")[0])


def test_sample_velocity_is_what_generate_velocity_draws():
    rng = np.random.default_rng(sample_seed("curvefault-b", 4, seed=1, split="test"))
    expected = generate_velocity("curvefault-b", [4], seed=1, split="test")[0, 0]
    np.testing.assert_array_equal(sample_velocity("curvefault-b", rng), expected)


def test_openfwi_spelling_is_accepted():
    np.testing.assert_array_equal(
        generate_velocity("FlatVel-A", [0]), generate_velocity("flatvel-a", [0])
    )


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(KeyError, match="flatvel-a"):
        generate_velocity("flatvel-c", [0])
    with pytest.raises(KeyError):
        sample_velocity("marmousi", np.random.default_rng(0))
    with pytest.raises(ValueError, match="split"):
        generate_velocity("flatvel-a", [0], split="training")
    with pytest.raises(ValueError, match="non-negative"):
        generate_velocity("flatvel-a", [-1])
    with pytest.raises(ValueError, match="min_thickness"):
        LayeredParams(
            layers=(2, 12),
            min_thickness=8,
            velocity_order="random",
            top_velocity=(1500, 4500),
            contrast=(100, 200),
        )
    with pytest.raises(ValueError, match="velocity_order"):
        dataclasses.replace(FAMILY_PARAMS["flatvel-a"], velocity_order="decreasing")
    with pytest.raises(TypeError, match="FAMILY_PARAMS"):
        sample_from_params({"layers": (2, 4)}, np.random.default_rng(0))


@pytest.mark.parametrize("family", ["flatvel", "curvevel", "flatfault", "curvefault", "style"])
def test_b_is_harder_than_a(family):
    """Over N_STAT maps, B has clearly more structure (total variation) than A."""
    tv_a = _total_variation(generate_velocity(f"{family}-a", range(N_STAT)))
    tv_b = _total_variation(generate_velocity(f"{family}-b", range(N_STAT)))
    standard_error = np.sqrt(tv_a.var(ddof=1) / N_STAT + tv_b.var(ddof=1) / N_STAT)
    assert tv_b.mean() > 1.5 * tv_a.mean()
    assert (tv_b.mean() - tv_a.mean()) / standard_error > 4.0


@pytest.mark.parametrize("family", ["flatvel", "curvevel", "flatfault", "curvefault"])
def test_b_has_more_layers_than_a(family):
    count = {
        v: [len(np.unique(m)) for m in generate_velocity(f"{family}-{v}", range(N_STAT))]
        for v in "ab"
    }
    assert np.mean(count["b"]) > np.mean(count["a"]) + 1.0


@pytest.mark.parametrize("dataset", ["flatvel-a", "curvevel-a"])
def test_a_velocity_increases_with_depth(dataset):
    velocity = generate_velocity(dataset, range(N_STAT))
    assert (np.diff(velocity, axis=2) >= 0).all()


@pytest.mark.parametrize("dataset", ["flatvel-b", "curvevel-b"])
def test_b_velocity_is_not_monotonic(dataset):
    velocity = generate_velocity(dataset, range(N_STAT))
    inverted = (np.diff(velocity, axis=2) < 0).any(axis=(1, 2, 3))
    assert inverted.mean() > 0.7


@pytest.mark.parametrize("dataset", ["flatvel-a", "flatvel-b"])
def test_flat_layers_are_constant_along_x(dataset):
    velocity = generate_velocity(dataset, range(N_STAT))
    assert (velocity == velocity[..., :1]).all()


@pytest.mark.parametrize("dataset", ["flatfault-a", "flatfault-b"])
def test_flat_fault_is_one_straight_lateral_discontinuity(dataset):
    """Flat layers vary laterally only at the fault: at most one jump per row, on one line."""
    for velocity in generate_velocity(dataset, range(N_STAT))[:, 0]:
        jumps = _lateral_jumps(velocity)
        rows = np.flatnonzero(jumps.any(axis=1))
        assert len(rows) >= 3, "the fault must offset at least one interface"
        assert jumps.sum(axis=1).max() <= 1
        columns = jumps[rows].argmax(axis=1)
        slope, intercept = np.polyfit(rows, columns, 1)
        assert np.abs(columns - (slope * rows + intercept)).max() <= 1.5


@pytest.mark.parametrize("dataset", ["curvefault-a", "curvefault-b"])
def test_curved_fault_adds_lateral_discontinuity(dataset):
    """The same curved layers (same seed) without a throw have fewer lateral jumps."""
    params = FAMILY_PARAMS[dataset]
    unfaulted = dataclasses.replace(params, fault_throw=(0.0, 0.0))
    more = []
    for i in range(N_STAT):
        faulted_map = sample_from_params(params, np.random.default_rng(i))
        plain_map = sample_from_params(unfaulted, np.random.default_rng(i))
        more.append(_lateral_jumps(faulted_map).sum() > _lateral_jumps(plain_map).sum())
    assert np.mean(more) >= 0.85


@pytest.mark.parametrize("dataset", ["style-a", "style-b"])
def test_style_maps_are_not_layered(dataset):
    velocity = generate_velocity(dataset, range(N_STAT))[:, 0]
    lateral_std = velocity.std(axis=2).mean(axis=1)  # m/s, mean over depth rows
    assert lateral_std.min() > 30.0
    assert min(len(np.unique(m)) for m in velocity) > 1000


def test_style_needs_no_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    families._style_images.cache_clear()
    monkeypatch.setattr(socket, "socket", no_network)
    try:
        velocity = generate_velocity("style-a", [0])
    finally:
        families._style_images.cache_clear()
    assert velocity.shape == (1, 1, NZ, NX)


# ---------------------------------------------------------------- wider laws
@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_wide_laws_stay_in_range_and_reproducible(dataset):
    wide = generate_velocity(dataset, range(8), seed=3, generator="wide")
    assert wide.shape == (8, 1, NZ, NX) and wide.dtype == np.float32
    assert wide.min() >= V_MIN and wide.max() <= V_MAX
    np.testing.assert_array_equal(
        generate_velocity(dataset, [5], seed=3, generator="wide")[0], wide[5]
    )
    assert not np.array_equal(wide, generate_velocity(dataset, range(8), seed=3))


def test_wide_flat_layers_grow_inside_layers_and_keep_their_family():
    default = generate_velocity("flatvel-a", range(N_STAT))
    wide = generate_velocity("flatvel-a", range(N_STAT), generator="wide")
    assert (wide == wide[..., :1]).all()  # still flat, constant along x
    assert (np.diff(wide, axis=2) >= 0).all()  # still increasing with depth (A)
    # more distinct velocities per column: the in-layer gradient (the default has <= 5 layers)
    levels = [len(np.unique(m[0, :, 0])) for m in wide]
    assert max(len(np.unique(m[0, :, 0])) for m in default) <= 5 and np.median(levels) > 20
    # deeper parts reach higher velocities than the default laws allow on average
    assert wide[:, 0, -10:].mean() > default[:, 0, -10:].mean() + 200


@pytest.mark.parametrize("dataset", ["flatvel-a", "curvevel-a", "curvefault-b"])
def test_layer_gradient_keeps_every_other_choice_and_never_clips(dataset):
    plain = FAMILY_PARAMS[dataset]
    graded = dataclasses.replace(plain, layer_gradient=(5.0, 40.0))
    for i in range(20):
        a = sample_from_params(plain, np.random.default_rng(i))
        b = sample_from_params(graded, np.random.default_rng(i))
        assert (b >= a).all() and (b > a).mean() > 0.5  # the same layers, each growing inside
        if dataset == "flatvel-a":
            assert (b[0] == a[0]).all()  # the surface row tops the first layer: unchanged
        assert b.max() <= V_MAX and (b == V_MAX).sum() <= NX  # lowered, not a clipped floor
        if plain.velocity_order == "increasing":
            assert (np.diff(b, axis=0) >= 0).all()  # every interface still a step up
    with pytest.raises(ValueError, match="layer_gradient"):
        dataclasses.replace(plain, layer_gradient=(-1.0, 5.0))


def test_unknown_generator_is_refused():
    with pytest.raises(ValueError, match="generator='odd'; choose one of: default, wide"):
        generate_velocity("flatvel-a", [0], generator="odd")
