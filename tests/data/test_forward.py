"""Tests of epic_zoo.data.forward: contract, validation, port agreement, physics.

Small cases (2 maps, <= 400 time steps) so the file runs in well under a
minute on one core; benchmarks/forward_model.py does the full-size comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from epic_zoo.data.forward import _openfwi_damping, relative_l2_error, simulate
from epic_zoo.data.geometry import DT, DX, NX, NZ, PEAK_FREQUENCY, SOURCE_COLUMNS

RICKER_PEAK_S = 73 * DT  # the 147-sample Ricker peaks at sample index 73


pytestmark = pytest.mark.usefixtures("one_thread")


def _maps() -> np.ndarray:
    """Two maps ``[2, 1, 70, 70]`` m/s: a slow layered one and a fast, laterally varying one.

    The second exceeds 4243 m/s, where deepwave would sub-step if not pinned.
    """
    z = np.arange(NZ, dtype=np.float32)[:, None]
    x = np.arange(NX, dtype=np.float32)[None, :]
    layered = np.select([z < 25, z < 45], [1800.0, 2600.0], 3400.0) + 0.0 * x
    dipping = 2500.0 + 25.0 * z + 250.0 * np.sin(x / 9.0)  # 2250..4475 m/s
    maps = np.stack([layered, np.clip(dipping, 1500.0, 4500.0)]).astype(np.float32)
    return maps[:, None]


def _ricker(t: np.ndarray) -> np.ndarray:
    """The recipe's Ricker as a function of time in s (peak at 73 ms)."""
    b = (math.pi * PEAK_FREQUENCY * (t - RICKER_PEAK_S)) ** 2
    return (1.0 - 2.0 * b) * np.exp(-b)


def _analytic_trace(distance: float, velocity: float, times: np.ndarray) -> np.ndarray:
    """2-D free-space response to the recipe's point source, ``[len(times)]``.

    Injecting ``(v dt)^2 w`` into one cell solves ``u_tt / v^2 - lap(u) = dx^2 w(t) delta(x)``,
    so ``u(r, t) = dx^2 / (2 pi) int_0^acosh(t/T) w(t - T cosh s) ds`` with ``T = r / v``
    (the 2-D Green's function ``H(t - T) / (2 pi sqrt(t^2 - T^2))`` after ``tau = T cosh s``).
    """
    arrival = distance / velocity
    out = np.zeros(times.shape)
    for i, t in enumerate(times):
        if t > arrival:
            s = np.linspace(0.0, math.acosh(t / arrival), 4001)
            f = _ricker(t - arrival * np.cosh(s))
            out[i] = DX**2 / (2 * math.pi) * float(np.sum((f[1:] + f[:-1]) * np.diff(s)) / 2)
    return out


def test_shapes_dtypes_and_numpy_torch_agree():
    maps = _maps()
    seismic = simulate(maps, nt=120)
    assert isinstance(seismic, np.ndarray)
    assert seismic.shape == (2, 5, 120, NX) and seismic.dtype == np.float32

    as_tensor = simulate(torch.from_numpy(maps[:, 0]).double(), nt=120, shots=[4, 1])
    assert isinstance(as_tensor, torch.Tensor)
    assert as_tensor.shape == (2, 2, 120, NX) and as_tensor.dtype == torch.float32
    np.testing.assert_allclose(as_tensor.numpy(), seismic[:, [4, 1]], rtol=1e-5, atol=1e-6)
    assert np.abs(seismic).max() > 1.0  # the source is actually injected

    empty = simulate(np.zeros((0, NZ, NX), np.float32), nt=10)
    assert empty.shape == (0, 5, 10, NX)


def test_result_does_not_depend_on_batching():
    maps = _maps()
    together = simulate(maps, nt=200, batch_size=2)
    apart = simulate(maps, nt=200, batch_size=1)
    np.testing.assert_allclose(together, apart, rtol=0, atol=1e-6 * np.abs(together).max())


def test_progress_bar(capsys):
    simulate(_maps()[:1], nt=20, progress=True)
    assert "deepwave" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("velocity", "message"),
    [
        (np.full((NZ, NX), 2000.0), r"shape \[N, 70, 70\]"),
        (np.full((2, 2, NZ, NX), 2000.0), r"got \[2, 2, 70, 70\]"),
        (np.full((2, NZ, 60), 2000.0), "velocity must have shape"),
        ([[2000.0]], "numpy array or torch tensor"),
    ],
)
def test_bad_shape_or_type_raises(velocity, message):
    with pytest.raises(ValueError, match=message):
        simulate(velocity)


@pytest.mark.parametrize(
    ("bad_value", "message"),
    [
        (np.nan, r"sample 1 has a non-finite value \(nan\) at \(z=3, x=4\)"),
        (np.inf, r"sample 1 has a non-finite value \(inf\)"),
        (
            1400.0,
            r"sample 1 has 1400 m/s at \(z=3, x=4\), outside .*1500\.\.4500.*denormalize_velocity",
        ),
        (4600.0, r"sample 1 has 4600 m/s"),
        (0.5, r"sample 1 has 0\.5 m/s"),
    ],
)
def test_bad_values_raise_naming_the_sample(bad_value, message):
    maps = np.full((3, 1, NZ, NX), 2500.0, np.float32)
    maps[1, 0, 3, 4] = bad_value
    with pytest.raises(ValueError, match=message):
        simulate(maps)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "devito"}, "backend='devito'"),
        ({"shots": [5]}, r"source indices in 0\.\.4"),
        ({"shots": []}, "non-empty"),
        ({"nt": 0}, "nt=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"backend": "openfwi", "openfwi_nbc": 1}, "openfwi_nbc=1"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(np.full((1, NZ, NX), 2500.0, np.float32), **kwargs)


def test_openfwi_backend_refuses_gradients():
    velocity = torch.full((1, NZ, NX), 2500.0, requires_grad=True)
    with pytest.raises(ValueError, match="not differentiable"):
        simulate(velocity, "openfwi", nt=5)


def test_openfwi_sponge_profile_follows_the_recipe():
    """kappa0 = 3 v_min ln(1e7) / (2 (nbc - 1) dx), quadratic ramp, corners take the x profile."""
    nbc, size = 5, 15
    damping = _openfwi_damping(torch.tensor([2000.0], dtype=torch.float64), nbc, size, size)[0]
    kappa0 = 3 * 2000.0 * math.log(1e7) / (2 * (nbc - 1) * DX)
    assert damping[0, 7] == pytest.approx(kappa0) and damping[7, -1] == pytest.approx(kappa0)
    assert damping[2, 7] == pytest.approx(kappa0 * (2 / 4) ** 2)
    assert torch.all(damping[nbc:-nbc, nbc:-nbc] == 0)
    # corner cells carry the horizontal profile only: the column beside the map is undamped
    assert torch.all(damping[:nbc, nbc - 1] == 0) and torch.all(damping[-nbc:, -nbc] == 0)
    assert damping[0, 0] == pytest.approx(kappa0)


def test_deepwave_matches_openfwi_port():
    """<= 1 % relative L2 per sample over the first 400 ms (all 5 shots)."""
    maps = _maps()
    fast = simulate(maps, "deepwave", nt=400)
    port = simulate(maps, "openfwi", nt=400)
    error = relative_l2_error(fast, port)
    assert error.shape == (2,)
    assert np.all(error <= 0.01), error


def test_gradient_matches_finite_difference():
    maps = torch.from_numpy(_maps()[1:, 0]).requires_grad_()
    seismic = simulate(maps, shots=[2], nt=250)
    assert seismic.requires_grad
    seismic.square().sum().backward()
    grad = maps.grad
    assert torch.isfinite(grad).all() and grad.abs().max() > 0

    direction = torch.from_numpy(
        np.random.default_rng(0).standard_normal(maps.shape).astype(np.float32)
    )
    step = 2.0  # m/s
    with torch.no_grad():
        plus = simulate(maps + step * direction, shots=[2], nt=250).double().square().sum()
        minus = simulate(maps - step * direction, shots=[2], nt=250).double().square().sum()
    finite_difference = float((plus - minus) / (2 * step))
    adjoint = float((grad.double() * direction.double()).sum())
    assert finite_difference == pytest.approx(adjoint, rel=0.01)


@pytest.mark.parametrize("backend", ["deepwave", "openfwi"])
def test_homogeneous_direct_wave_matches_2d_analytic_solution(backend):
    """Direct arrival 350 m from the source in a 2500 m/s medium.

    The peak lies ~6 ms after ``r / v + 73 ms``: the 2-D Green's function
    delays a wavelet by a ~45 degree phase shift. Sample ``n`` holds time
    ``(n + 1) dt`` (the wavefield right after step ``n``).
    """
    velocity, receiver, nt = 2500.0, 35, 300
    seismic = simulate(np.full((1, NZ, NX), velocity, np.float32), backend, shots=[0], nt=nt)
    trace = seismic[0, 0, :, receiver].astype(np.float64)
    distance = (receiver - SOURCE_COLUMNS[0]) * DX
    expected = _analytic_trace(distance, velocity, (np.arange(nt) + 1) * DT)

    naive_peak = (distance / velocity + RICKER_PEAK_S) / DT - 1
    assert abs(int(np.argmax(trace)) - int(np.argmax(expected))) <= 1
    assert 3 <= np.argmax(trace) - naive_peak <= 8
    window = slice(int(naive_peak) - 80, nt)
    assert relative_l2_error(trace[None, window], expected[None, window])[0] < 0.02


@pytest.mark.parametrize("backend", ["deepwave", "openfwi"])
def test_source_receiver_reciprocity(backend):
    """Source at column 0 heard at column 52 == source at column 52 heard at column 0."""
    seismic = simulate(_maps()[1:], backend, shots=[0, 3], nt=300)[0]
    forward, backward = seismic[0, :, SOURCE_COLUMNS[3]], seismic[1, :, SOURCE_COLUMNS[0]]
    assert np.abs(forward).max() > 0.1
    assert relative_l2_error(forward[None], backward[None])[0] < 1e-4


def test_relative_l2_error():
    reference = np.ones((2, 3, 4))
    seismic = reference * np.array([1.0, 1.5])[:, None, None]
    np.testing.assert_allclose(relative_l2_error(seismic, reference), [0.0, 0.5])
    with pytest.raises(ValueError, match="same"):
        relative_l2_error(seismic, reference[:, :2])
