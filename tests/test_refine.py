"""The refinement library: bounded parameterisation, low-pass, priors, a tiny refinement, the CLI flag."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from epic_zoo.data.degrade import band_limited_noise, dead_traces
from epic_zoo.data.forward import simulate
from epic_zoo.data.geometry import DT, NX, NZ, V_MAX, V_MIN
from epic_zoo.refine import (
    BoundedVelocity,
    Schedule,
    Stage,
    depth_weights,
    live_traces,
    lowpass,
    noise_variance,
    pre_arrival_mask,
    prior_for,
    refine_maps,
    row_tv,
    smoothness,
    tv_2d,
)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def layered(values: tuple[float, ...], depths: tuple[int, ...]) -> torch.Tensor:
    """``[1, 70, 70]`` m/s: ``values[i]`` from row ``depths[i]`` down."""
    v = torch.empty(1, NZ, NX)
    for value, depth in zip(values, depths, strict=True):
        v[:, depth:] = value
    return v


def test_bounded_velocity_stays_in_range_and_round_trips() -> None:
    bounded = BoundedVelocity()
    m = torch.linspace(-50, 50, 101)
    v = bounded.to_velocity(m)
    assert float(v.min()) == V_MIN and float(v.max()) == V_MAX
    inside = torch.tensor([1500.0, 1600.0, 3000.0, 4400.0, 4500.0])
    back = bounded.to_velocity(bounded.to_parameter(inside))
    assert torch.allclose(back, inside, atol=0.05)


@pytest.mark.parametrize("velocity", [V_MIN, V_MAX])
def test_bounded_velocity_gradient_does_not_vanish_at_the_bounds(velocity: float) -> None:
    bounded = BoundedVelocity()
    m = bounded.to_parameter(torch.tensor([velocity])).requires_grad_()
    bounded.to_velocity(m).sum().backward()
    assert float(m.grad) > 0.5 * bounded.margin  # ~margin m/s per unit, not 0
    # a cell pushed beyond the bound keeps a gradient, so it can come back
    beyond = torch.tensor([-8.0 if velocity == V_MIN else 8.0], requires_grad=True)
    bounded.to_velocity(beyond).sum().backward()
    assert float(beyond.grad) > 0


def test_depth_weights_grow_with_depth_and_average_one() -> None:
    w = depth_weights(1.0)
    assert w.shape == (NZ, 1) and math.isclose(float(w.mean()), 1.0, rel_tol=1e-5)
    assert bool((w[1:] > w[:-1]).all())
    assert torch.allclose(depth_weights(0.0), torch.ones(NZ, 1))


def test_lowpass_keeps_low_and_removes_high_frequencies() -> None:
    t = torch.arange(1000) * DT
    low = torch.sin(2 * math.pi * 3.0 * t)
    high = torch.sin(2 * math.pi * 30.0 * t)
    records = (low + high)[None, None, :, None].repeat(1, 1, 1, 2)
    out = lowpass(records, 8.0)
    inner = slice(200, 800)  # away from the record's ends
    assert torch.allclose(out[0, 0, inner, 0], low[inner], atol=0.05)
    assert lowpass(records, None) is records
    with pytest.raises(ValueError, match="cutoff_hz"):
        lowpass(records, 600.0)


def test_priors() -> None:
    flat = layered((2000.0, 3000.0), (0, 30))
    assert float(row_tv(flat)) < 1e-6  # flat layers cost nothing along rows
    assert float(tv_2d(flat)) > 0 and float(smoothness(flat)) > 0
    tilted = flat.clone()
    tilted[:, 25:30, 35:] = 3000.0
    assert float(row_tv(tilted)) > float(row_tv(flat)) + 1e-4
    constant = torch.full((1, NZ, NX), 2500.0)
    for prior in (row_tv, tv_2d, smoothness):
        assert float(prior(constant)) < 1e-6
    sharp, smooth = layered((2000.0, 3000.0), (0, 35)), torch.linspace(2000, 3000, NZ)
    smooth = smooth[None, :, None].expand(1, NZ, NX)
    assert float(smoothness(smooth)) < float(smoothness(sharp))  # Tikhonov prefers ramps
    assert prior_for("flatvel-b") == "row_tv" and prior_for("style-a") == "smooth"
    assert prior_for("curvefault-a") == "tv_2d" and prior_for(None) == "tv_2d"


def test_schedule_scaling() -> None:
    schedule = Schedule()
    scaled = schedule.with_iterations(200)
    assert abs(sum(s.iterations for s in scaled.stages) - 200) <= len(schedule.stages)
    with pytest.raises(ValueError, match="iterations"):
        schedule.with_iterations(0)


def test_mute_leaves_late_records_out_and_is_no_part_of_an_unmuted_record() -> None:
    from epic_zoo.refine import MUTE_TAPER_S, _time_gain

    t = np.arange(1, 1001) * DT
    plain = _time_gain(1000, 1, 1.0, torch.device("cpu"))[:, 0].numpy()
    muted = _time_gain(1000, 1, 1.0, torch.device("cpu"), mute_after_ms=800)[:, 0].numpy()
    np.testing.assert_allclose(plain, t, rtol=1e-6)
    np.testing.assert_allclose(muted[t <= 0.8], plain[t <= 0.8], rtol=1e-6)
    assert np.all(muted[t >= 0.8 + MUTE_TAPER_S] == 0)
    taper = (
        muted[(t > 0.8) & (t < 0.8 + MUTE_TAPER_S)] / plain[(t > 0.8) & (t < 0.8 + MUTE_TAPER_S)]
    )
    assert np.all(np.diff(taper) < 0) and 0 <= taper.min() and taper.max() < 1
    assert (
        "mute_after_ms" not in Schedule().as_dict()
    )  # records made before the setting still match
    assert Schedule(mute_after_ms=800).as_dict()["mute_after_ms"] == 800


def test_a_few_iterations_lower_the_misfit_and_the_error(one_thread: None) -> None:
    truth = layered((2000.0, 2600.0, 3200.0), (0, 20, 45))
    start = layered((2000.0, 2450.0, 3050.0), (0, 20, 45))  # 150 m/s slow below 200 m
    observed = simulate(truth, nt=500)
    schedule = Schedule(stages=(Stage(None, 6),), batch_size=1)
    result = refine_maps(start, observed, dataset="flatvel-a", schedule=schedule)
    assert result.velocity.shape == (1, 1, NZ, NX)
    assert float(result.misfit_after[0]) < 0.5 * float(result.misfit_before[0])
    mae_before = float((start - truth).abs().mean())
    mae_after = float((result.velocity[:, 0] - truth).abs().mean())
    assert mae_after < 0.97 * mae_before  # 6 iterations: ~5 % closer to the truth
    assert result.threads == 1 and result.cpu_seconds > 0 and result.evaluations >= 6
    again = refine_maps(start, observed, dataset="flatvel-a", schedule=schedule)
    assert torch.equal(again.velocity, result.velocity)  # deterministic


def test_layered_constraint_keeps_rows_flat_and_fits(one_thread: None) -> None:
    truth = layered((2000.0, 2600.0, 3200.0), (0, 20, 45))
    start = layered((2000.0, 2450.0, 3050.0), (0, 20, 45))
    start[:, 30:40, :35] += 200.0  # a lateral blob the flat-layer constraint averages away
    observed = simulate(truth, nt=500)
    schedule = Schedule(stages=(Stage(None, 6),), prior="layered", batch_size=1)
    result = refine_maps(start, observed, schedule=schedule)
    refined = result.velocity[:, 0]
    assert float((refined - refined[..., :1]).abs().max()) == 0.0  # one velocity per row
    assert float(result.misfit_after[0]) < 0.5 * float(result.misfit_before[0])
    mae = [float((m - truth).abs().mean()) for m in (start, refined)]
    assert mae[1] < 0.9 * mae[0]
    assert result.schedule["prior_used"] == "layered"


def test_dead_traces_are_left_out_of_the_misfit(one_thread: None) -> None:
    truth = layered((2000.0, 2600.0), (0, 30))
    observed = simulate(truth, nt=300)
    observed[:, :, :, [3, 40]] = 0.0
    mask = live_traces(observed)
    assert mask.shape == (1, 5, 1, NX) and float(mask.sum()) == 5 * (NX - 2)
    schedule = Schedule(stages=(Stage(None, 1),), batch_size=1)
    result = refine_maps(truth, observed, schedule=schedule)
    assert float(result.misfit_before[0]) < 1e-5  # the dead traces do not count as misfit


def test_noise_is_measured_where_no_wave_has_arrived(one_thread: None) -> None:
    truth = torch.stack([layered((2000.0, 2600.0), (0, 30))[0], layered((4400.0,), (0,))[0]])
    clean = simulate(truth, nt=600)
    window = pre_arrival_mask(600)
    assert window.shape == (5, 600, NX) and bool(window[0, 0, 0]) and not bool(window[0, -1, -1])
    # the fastest map's direct wave still arrives after its window closes
    assert float((clean.square() * window).sum()) < 1e-6 * float(clean.square().sum())
    noisy = torch.from_numpy(band_limited_noise(clean.numpy(), 20.0, seed=3))
    true_power = (noisy - clean).double().square().flatten(1).mean(1)
    ratio = noise_variance(noisy) / true_power
    assert bool(((ratio > 0.8) & (ratio < 1.2)).all()), ratio
    assert bool((noise_variance(clean) < 1e-3 * true_power).all())  # < 1e-5 of the signal
    dead = noisy.clone()
    dead[:, :, :, :10] = 1e3 * noisy[:, :, :, :10]  # huge values, then the traces die
    dead[:, :, :, :10] = 0.0
    assert torch.allclose(noise_variance(dead), noise_variance(noisy), rtol=0.25)


def test_noise_stop_ends_the_full_band_at_the_noise_and_spares_clean_records(
    one_thread: None,
) -> None:
    truth = layered((2000.0, 2600.0, 3200.0), (0, 20, 45))
    start = layered((2000.0, 2450.0, 3050.0), (0, 20, 45))
    clean = simulate(truth, nt=500)
    noisy = torch.from_numpy(band_limited_noise(clean.numpy(), 10.0, seed=4))
    schedule = Schedule(stages=(Stage(None, 8),), batch_size=1, patience=8)
    assert schedule.noise_stop == 1.05  # the default
    free = refine_maps(start, noisy, schedule=replace(schedule, noise_stop=None))
    stopped = refine_maps(start, noisy, schedule=schedule)
    assert len(stopped.history[0][0]) < len(free.history[0][0])  # stopped early
    assert float(stopped.misfit_after[0]) <= 1.3 * float(stopped.noise_level[0])
    assert float(free.misfit_after[0]) < float(stopped.misfit_after[0])  # the rest fitted noise
    assert 0.25 < float(stopped.noise_level[0]) < 0.4  # 10 dB: noise RMS ~ 0.32 of the signal's
    assert stopped.schedule["noise_stop"] == 1.05
    # clean records: the noise is far below any misfit, the stop changes nothing
    short = Schedule(stages=(Stage(None, 3),), batch_size=1)
    plain = refine_maps(start, clean, schedule=replace(short, noise_stop=None))
    guarded = refine_maps(start, clean, schedule=short)
    assert torch.equal(plain.velocity, guarded.velocity)
    assert float(plain.noise_level[0]) < 1e-3
    with pytest.raises(ValueError, match="noise_stop"):
        refine_maps(start, clean, schedule=replace(short, noise_stop=0.0))


def test_refine_maps_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="seismic must be raw records"):
        refine_maps(torch.full((1, NZ, NX), 2000.0), torch.zeros(1, 5, 100, 3))
    with pytest.raises(ValueError, match="one record per map"):
        refine_maps(torch.full((2, NZ, NX), 2000.0), torch.zeros(1, 5, 100, NX))
    with pytest.raises(ValueError, match="prior"):
        refine_maps(
            torch.full((1, NZ, NX), 2000.0),
            torch.zeros(1, 5, 100, NX),
            schedule=Schedule(prior="gaussian"),
        )


def test_band_limited_noise_and_dead_traces() -> None:
    rng = np.random.default_rng(0)
    records = rng.standard_normal((2, 5, 400, NX)).astype(np.float32)
    copy = records.copy()
    noisy = band_limited_noise(records, 20.0, (2.0, 40.0), seed=1)
    np.testing.assert_array_equal(records, copy)  # input unchanged
    noise = noisy - records
    snr = 10 * np.log10(np.mean(records**2, axis=(2, 3)) / np.mean(noise**2, axis=(2, 3)))
    np.testing.assert_allclose(snr, 20.0, atol=0.01)
    spectrum = np.abs(np.fft.rfft(noise, axis=2)).mean(axis=(0, 1, 3))
    freqs = np.fft.rfftfreq(400, d=DT)
    assert spectrum[freqs > 45].max() < 1e-3 * spectrum[(freqs > 5) & (freqs < 35)].mean()
    dead = dead_traces(records, 0.05, seed=2)
    silent = np.all(dead == 0, axis=2)  # [N, shot, receiver]
    assert silent.sum(axis=2).tolist() == [[4] * 5, [4] * 5]  # round(0.05 * 70) per shot
    assert np.array_equal(silent[:, 0], silent[:, 4])  # a dead channel is dead for every shot
    with pytest.raises(ValueError, match="fraction"):
        dead_traces(records, 1.5)


def test_evaluate_refine_flag_parses_with_and_without_a_number() -> None:
    from epic_zoo.evaluate import build_parser

    parser = build_parser()
    base = ["--model", "epic.flatvel-a", "--data", "somewhere"]
    assert parser.parse_args(base).refine == 0
    assert parser.parse_args([*base, "--refine"]).refine == "default"
    assert parser.parse_args([*base, "--refine", "25"]).refine == 25
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--refine", "0"])
