"""Physics guidance: data misfit, physics loss (gradient check), refinement, task, recipes.

The forward model's own physics checks live in tests/data/test_forward.py
(2-D analytic direct wave at one receiver, source-receiver reciprocity,
gradient of ``simulate``); here the direct-arrival time is checked at every
receiver of every shot. Cases are small (one or two maps, <= 400 simulated
ms) so each test takes seconds on one core.
"""

from __future__ import annotations

import math
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import EPIC_SMALL as SMALL
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger

from epic_zoo.data.datamodule import FWIDataModule
from epic_zoo.data.forward import simulate
from epic_zoo.data.geometry import (
    DT,
    DX,
    NX,
    NZ,
    PEAK_FREQUENCY,
    RECEIVER_COLUMNS,
    SOURCE_COLUMNS,
    V_MAX,
    V_MIN,
    receiver_split,
)
from epic_zoo.data.transforms import (
    denormalize_seismic,
    denormalize_velocity,
    normalize_seismic,
    normalize_velocity,
)
from epic_zoo.run import config_dir
from epic_zoo.tasks.physics_inversion import PhysicsInversionTask, PhysicsSettings, labelled_mask
from epic_zoo.wave_physics import (
    TimeSubset,
    data_misfit,
    physics_loss,
    refine,
    relative_misfit,
    signed_log,
    total_variation,
)

STRIDE = 4  # ms between stored samples, as in the tiny/lite profiles
RICKER_PEAK_S = 73 * DT  # the 147-sample Ricker peaks at sample index 73
EPIC_SMALL = {**SMALL, "time_samples": 250}  # conftest's small EPIC at these records' length
FAST_PHYSICS = {"shots": [2], "nt": 120, "max_samples": 2, "val_samples": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def _layered(shift: float = 0.0) -> torch.Tensor:
    """One map ``[1, 1, 70, 70]`` m/s: three layers, a lateral ripple, ``shift`` m/s added on top."""
    z = torch.arange(NZ, dtype=torch.float32)[:, None]
    x = torch.arange(NX, dtype=torch.float32)[None, :]
    layers = torch.where(z < 20, 1800.0, torch.where(z < 40, 2600.0, 3400.0))
    ripple = 60.0 * torch.sin(x / 7.0)
    top = torch.where(z < 20, shift, 0.0)
    return (layers + ripple + top).clamp(V_MIN, V_MAX)[None, None]


def _observed(velocity: torch.Tensor, nt: int) -> torch.Tensor:
    """Stored-style records: simulated at 1 ms, every STRIDE-th sample kept ``[N, 5, T, 70]``."""
    return simulate(velocity, nt=nt)[:, :, ::STRIDE]


# ---------------------------------------------------------------- time subset
def test_time_subset_picks_the_stored_samples():
    subset = TimeSubset.make(250, data_time_stride=4)
    assert (subset.observed, subset.nt, subset.stride) == (slice(0, 250, 1), 997, 4)
    subset = TimeSubset.make(250, data_time_stride=4, time_stride=8, nt=300)
    assert list(range(250))[subset.observed] == list(range(0, 75, 2))
    assert subset.nt == 297 and subset.stride == 8  # samples at 0, 8, ..., 296 ms
    with pytest.raises(ValueError, match="multiple of the data's time stride 4"):
        TimeSubset.make(250, data_time_stride=4, time_stride=6)


def test_physics_loss_is_zero_for_the_true_map_only_when_times_align():
    velocity = _layered()
    observed = _observed(velocity, 300)
    exact = physics_loss(velocity, observed, data_time_stride=STRIDE, shots=[1, 3])
    strided = physics_loss(velocity, observed, data_time_stride=STRIDE, time_stride=8, nt=200)
    misaligned = physics_loss(velocity, observed, data_time_stride=2)
    assert exact.shape == (1,) and float(exact) < 1e-8 and float(strided) < 1e-8
    assert float(misaligned) > 0.1
    for space in ("log", "raw"):
        wrong = physics_loss(_layered(150.0), observed, data_time_stride=STRIDE, space=space)
        assert float(wrong) > 1e-3


def test_signed_log_matches_openfwi_compression_and_has_gradient_at_zero():
    x = torch.tensor([-20.0, -0.5, 0.0, 0.5, 20.0], requires_grad=True)
    y = signed_log(x)
    torch.testing.assert_close(y, torch.sign(x) * torch.log1p(x.abs()))
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1.0 / (1.0 + x.detach().abs()))


# --------------------------------------------------------------------- metric
def test_data_misfit_per_sample_and_device():
    velocity = torch.cat([_layered(), _layered(200.0)])
    observed = _observed(_layered().expand(2, -1, -1, -1), 300)
    misfit = data_misfit(velocity, observed.numpy(), data_time_stride=STRIDE)
    assert misfit.sample.shape == (2,) and misfit.device.shape == (2, 5)
    assert float(misfit.sample[0]) < 1e-5 < 0.05 < float(misfit.sample[1])
    # The devices' squared residuals add up to the whole record's.
    obs = observed.double()
    norms = torch.stack([obs[..., r].flatten(1).norm(dim=1) for r in receiver_split(5)], dim=1)
    total = ((misfit.device * norms) ** 2).sum(1).sqrt() / obs.flatten(1).norm(dim=1)
    torch.testing.assert_close(total, misfit.sample, rtol=1e-5, atol=1e-9)


def test_data_misfit_and_loss_reject_bad_input():
    observed = torch.zeros(1, 5, 10, 70)
    with pytest.raises(ValueError, match=r"raw records \[N, 5, time, 70\]"):
        data_misfit(_layered(), observed[:, :3])
    with pytest.raises(ValueError, match="holds 1 samples but velocity holds 2"):
        data_misfit(torch.cat([_layered(), _layered()]), observed)
    with pytest.raises(ValueError, match="outside the OpenFWI range"):
        physics_loss(_layered() - 1000.0, observed)
    with pytest.raises(ValueError, match="space='l2'"):
        physics_loss(_layered(), observed, space="l2")
    with pytest.raises(ValueError, match=r"shots=\[7\]"):
        physics_loss(_layered(), observed, shots=[7])


def test_relative_misfit_values():
    observed = torch.ones(2, 1, 3, 4)
    simulated = observed * torch.tensor([1.0, 1.5]).view(2, 1, 1, 1)
    torch.testing.assert_close(
        relative_misfit(simulated, observed), torch.tensor([0.0, 0.5], dtype=torch.float64)
    )


# ----------------------------------------------------------------------- loss
@pytest.mark.parametrize("space", ["log", "raw"])
def test_physics_loss_gradient_matches_finite_differences(space):
    """Directional derivative of the loss (shot 2, 200 ms, every 8th ms) vs central differences."""
    observed = _observed(_layered(), 200)
    start = _layered(120.0)[:, 0]
    options = {"data_time_stride": STRIDE, "shots": [2], "time_stride": 8, "space": space}
    velocity = start.clone().requires_grad_()
    physics_loss(velocity, observed, **options).sum().backward()
    grad = velocity.grad.double()
    assert torch.isfinite(grad).all() and grad.abs().max() > 0

    direction = torch.randn(start.shape, generator=torch.Generator().manual_seed(0))
    step = 2.0  # m/s
    with torch.no_grad():
        plus = physics_loss(start + step * direction, observed, **options).double().sum()
        minus = physics_loss(start - step * direction, observed, **options).double().sum()
    finite_difference = float((plus - minus) / (2 * step))
    adjoint = float((grad * direction.double()).sum())
    assert finite_difference == pytest.approx(adjoint, rel=0.02)


def test_total_variation():
    constant = torch.full((1, 1, NZ, NX), 2500.0)
    assert float(total_variation(constant)) == 0.0
    step = constant.clone()
    step[..., NX // 2 :] += 300.0  # one vertical jump of 0.1 (x 3000 m/s) in each of 70 rows
    assert float(total_variation(step)) == pytest.approx(70 * 0.1 / (NZ * NX))


# ----------------------------------------------------------------- refinement
def test_refinement_lowers_the_misfit_and_stays_in_range():
    truth = _layered()
    observed = _observed(truth.expand(2, -1, -1, -1), 300)
    start = torch.cat([_layered(150.0), torch.full_like(truth, V_MIN)])
    result = refine(
        start,
        observed,
        4,
        data_time_stride=STRIDE,
        lr=10.0,
        tv_weight=0.01,
        shots=[1, 3],
        batch_size=1,
    )
    assert result.velocity.shape == (2, 1, NZ, NX) and result.misfit.shape == (5, 2)
    assert result.seconds > 0
    assert float(result.misfit[-1, 0]) < 0.8 * float(result.misfit[0, 0])
    assert float(result.misfit[-1, 1]) < float(result.misfit[0, 1])
    assert float(result.velocity.min()) >= V_MIN and float(result.velocity.max()) <= V_MAX


def test_refinement_with_no_iteration_only_measures():
    observed = _observed(_layered(), 200)
    result = refine(_layered(100.0).numpy(), observed.numpy(), 0, data_time_stride=STRIDE)
    torch.testing.assert_close(result.velocity, _layered(100.0))
    expected = data_misfit(_layered(100.0), observed, data_time_stride=STRIDE).sample
    torch.testing.assert_close(result.misfit[0], expected, rtol=1e-4, atol=1e-8)
    with pytest.raises(ValueError, match="iterations=-1"):
        refine(_layered(), observed, -1)


# ----------------------------------------------------- forward-model physics
def _analytic_peak_times(distances: np.ndarray, velocity: float, nt: int) -> np.ndarray:
    """Sample index of the peak of the 2-D free-space response at each distance (m).

    ``u(r, t) ~ int_0^acosh(t/T) w(t - T cosh s) ds`` with ``T = r / v``: the
    Ricker convolved with the 2-D Green's function ``H(t - T) / sqrt(t^2 - T^2)``.
    Sample ``n`` holds time ``(n + 1) dt``.
    """
    times = (np.arange(nt) + 1) * DT
    peaks = []
    for r in distances:
        arrival = r / velocity
        s_max = np.arccosh(np.maximum(times / arrival, 1.0))  # [nt]
        s = np.linspace(0.0, 1.0, 801)[None, :] * s_max[:, None]  # [nt, 801]
        tau = times[:, None] - arrival * np.cosh(s)
        b = (math.pi * PEAK_FREQUENCY * (tau - RICKER_PEAK_S)) ** 2
        trace = np.trapezoid((1.0 - 2.0 * b) * np.exp(-b), s, axis=1)
        peaks.append(int(np.argmax(trace)))
    return np.asarray(peaks)


def test_direct_arrival_time_at_every_receiver_of_every_shot():
    """Homogeneous 2500 m/s: the direct wave peaks within one sample of the independent solution.

    That solution peaks a few ms after ``distance / velocity + 73 ms`` (the
    Ricker's peak delay plus the 2-D Green's function's phase lag), which is
    checked too. Receivers closer than 5 cells to the source are skipped
    (the point source spans a few cells of the 4th-order stencil).
    """
    velocity, nt = 2500.0, 400
    seismic = simulate(np.full((1, NZ, NX), velocity, np.float32), nt=nt)[0]  # [5, nt, 70]
    offsets = np.abs(np.subtract.outer(np.asarray(SOURCE_COLUMNS), np.asarray(RECEIVER_COLUMNS)))
    distances = np.unique(offsets[offsets >= 5]) * DX
    expected = dict(zip(distances, _analytic_peak_times(distances, velocity, nt), strict=True))
    naive = {r: (r / velocity + RICKER_PEAK_S) / DT - 1 for r in distances}
    assert all(0 <= expected[r] - naive[r] <= 10 for r in distances)
    checked = 0
    for shot in range(len(SOURCE_COLUMNS)):
        for receiver in RECEIVER_COLUMNS:
            distance = offsets[shot, receiver] * DX
            if distance < 5 * DX:
                continue
            picked = int(np.argmax(seismic[shot, :, receiver]))
            assert abs(picked - expected[distance]) <= 1, (shot, receiver, picked)
            checked += 1
    assert checked > 300


# ---------------------------------------------------------------- task: units
def test_labelled_mask_is_a_deterministic_fraction():
    index = torch.arange(1000)
    half = labelled_mask(index, 0.5, seed=0)
    assert abs(int(half.sum()) - 500) <= 2
    assert torch.equal(half, labelled_mask(index, 0.5, seed=0))
    assert not torch.equal(half, labelled_mask(index, 0.5, seed=1))
    assert bool(labelled_mask(index, 1.0).all()) and not bool(labelled_mask(index, 0.0).any())
    assert abs(int(labelled_mask(index[:40], 0.25).sum()) - 10) <= 2
    with pytest.raises(ValueError, match="label_fraction=1.5"):
        labelled_mask(index, 1.5)


def test_physics_settings_reject_bad_options():
    assert PhysicsSettings.from_mapping({"shots": [0, 4]}).shots == (0, 4)
    with pytest.raises(ValueError, match="unknown physics option.*wieght"):
        PhysicsSettings.from_mapping({"wieght": 1.0})
    with pytest.raises(ValueError, match="physics.shots"):
        PhysicsSettings.from_mapping({"shots": [5]})
    with pytest.raises(ValueError, match="physics.every_n_steps=0"):
        PhysicsSettings.from_mapping({"every_n_steps": 0})
    with pytest.raises(ValueError, match="leaves no loss"):
        PhysicsInversionTask("epic", EPIC_SMALL, physics={"weight": 0.0}, label_fraction=0.0)
    with pytest.raises(ValueError, match="federated"):
        PhysicsInversionTask("federated", {"time_samples": 250})


def _batch(samples: int = 4) -> dict[str, torch.Tensor]:
    """A physically consistent normalised batch (flatvel-a statistics), 300 ms at every 4th ms.

    Padded with zeros to the 250 samples the small model takes.
    """
    velocity = torch.cat([_layered(40.0 * i) for i in range(samples)])
    raw = torch.zeros(samples, 5, 250, NX)
    raw[:, :, :75] = _observed(velocity, 300)
    return {
        "seismic": normalize_seismic(raw, "flatvel-a").float(),
        "velocity": normalize_velocity(velocity).float(),
        "index": torch.arange(samples),
    }


def _step(task: PhysicsInversionTask, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    with warnings.catch_warnings():  # self.log() without a Trainer warns
        warnings.simplefilter("ignore")
        return task.training_step(batch, 0)


def test_supervised_on_a_fraction_uses_only_the_labelled_samples():
    torch.manual_seed(0)
    task = PhysicsInversionTask(
        "epic", EPIC_SMALL, physics={"weight": 0.0}, label_fraction=0.5, label_seed=3
    ).eval()  # batch norm on running statistics: the same prediction twice
    batch = _batch()
    labelled = labelled_mask(batch["index"], 0.5, seed=3)
    assert 0 < int(labelled.sum()) < 4
    loss = _step(task, batch)
    pred = task(batch["seismic"])
    expected = (pred[labelled] - batch["velocity"][labelled]).abs().mean()
    torch.testing.assert_close(loss, expected)
    unlabelled_only = {k: v[~labelled] for k, v in batch.items()}
    assert _step(task, unlabelled_only) is None  # nothing to learn from: step skipped


def test_unlabelled_samples_learn_from_the_physics_loss_alone():
    torch.manual_seed(0)
    physics = dict(FAST_PHYSICS, weight=2.0, max_samples=None)
    task = PhysicsInversionTask(
        "epic",
        EPIC_SMALL,
        physics=physics,
        label_fraction=0.0,
        dataset_name="flatvel-a",
        data_time_stride=STRIDE,
    ).eval()
    batch = _batch(2)
    loss = _step(task, batch)
    loss.backward()
    velocity = denormalize_velocity(task(batch["seismic"]).detach()).clamp(V_MIN, V_MAX)
    expected = physics_loss(
        velocity,
        denormalize_seismic(batch["seismic"], "flatvel-a"),
        data_time_stride=STRIDE,
        shots=[2],
        nt=120,
    ).mean()
    torch.testing.assert_close(loss.detach(), 2.0 * expected, rtol=1e-4, atol=1e-7)
    grads = [p.grad for p in task.model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().max()) > 0 for g in grads)


def test_physics_task_needs_the_data_facts_without_a_datamodule():
    task = PhysicsInversionTask("epic", EPIC_SMALL, physics=FAST_PHYSICS)
    with pytest.raises(ValueError, match="dataset_name=... and data_time_stride"):
        _step(task, _batch(2))


# ------------------------------------------------------------ task: training
def test_fit_logs_physics_and_validation_misfit(tiny_data_root, tmp_path):
    datamodule = FWIDataModule("flatvel-a", "tiny", root=tiny_data_root, batch_size=4)
    task = PhysicsInversionTask(
        "epic", EPIC_SMALL, physics=FAST_PHYSICS, label_fraction=0.5, num_panels=0
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, datamodule=datamodule)
    logged = trainer.logged_metrics
    assert {"train/physics_epoch", "train/labelled", "val/misfit", "val/ssim"} <= set(logged)
    assert 0.0 < float(logged["val/misfit"]) and math.isfinite(float(logged["train/physics_epoch"]))
    assert task.hparams.physics["nt"] == 120  # plain values, saved with the checkpoint


@pytest.mark.parametrize(("recipe", "label_fraction"), [("epic_phys", 1.0), ("epic_semi", 0.5)])
def test_recipes_build_the_physics_task(recipe, label_fraction):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"recipe={recipe}", "scale=lite"])
    task = instantiate(
        cfg.task, model_name=cfg.model.name, model_kwargs=EPIC_SMALL, _convert_="all"
    )
    assert isinstance(task, PhysicsInversionTask)
    assert cfg.model.name == "epic" and cfg.recipe_name == f"{recipe}_lite"
    assert task.hparams.label_fraction == label_fraction
    assert task.physics.weight > 0 and task.physics.shots == (2,)


def test_semi_supervised_batches_need_the_sample_index():
    """Labels are chosen by ``batch["index"]`` (FWIDataModule batches carry it)."""
    batch = {k: v for k, v in _batch(1).items() if k != "index"}
    supervised = PhysicsInversionTask("epic", EPIC_SMALL, physics={"weight": 0.0})
    assert _step(supervised, batch) is not None  # every sample labelled: no index needed
    semi = PhysicsInversionTask("epic", EPIC_SMALL, physics={"weight": 0.0}, label_fraction=0.5)
    with pytest.raises(KeyError, match="'index'.*label_fraction=0.5"):
        _step(semi, batch)
