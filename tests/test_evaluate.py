"""Evaluation (epic_zoo.evaluate): metrics, data formats, CLI, re-measuring recorded weights."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_EPIC
from torch import nn

from epic_zoo import evaluate, evaluation, hub
from epic_zoo.data.contract import InputContract
from epic_zoo.data.datamodule import FWIDataset
from epic_zoo.data.openfwi import OpenFWIFolder
from epic_zoo.data.store import H5Split
from epic_zoo.data.transforms import normalize_seismic, normalize_velocity
from epic_zoo.models import create_model


class ZeroVelocity(nn.Module):
    """Predicts 0 (3000 m/s) everywhere: metrics then depend on the targets only."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"name": "zero", "time_samples": 250}
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, seismic: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(seismic.shape[0], 1, 70, 70)


def tiny_epic(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("epic", **TINY_EPIC).eval()


@pytest.fixture
def hub_folder(tmp_path: Path) -> Path:
    return hub.save_hub_folder(tiny_epic(), tmp_path / "epic.flatvel-a", dataset="flatvel-a")


def test_metrics_of_a_constant_prediction(tiny_dataset_dir: Path) -> None:
    split = H5Split(tiny_dataset_dir / "test")
    target = np.stack([normalize_velocity(split[i][1]) for i in range(len(split))]).astype(
        np.float64
    )
    result = evaluation.evaluate_model(ZeroVelocity(), split, batch_size=3)
    assert result["num_samples"] == len(split) == 8
    assert result["mae"] == pytest.approx(np.abs(target).mean(), rel=1e-5)
    assert result["rmse"] == pytest.approx(np.sqrt((target**2).mean()), rel=1e-5)
    assert result["mae_ms"] == pytest.approx(1500.0 * result["mae"], rel=1e-5)
    assert -1.0 < result["ssim_openfwi"] < 1.0 and -1.0 < result["ssim"] < 1.0
    assert result["payload_kind"] == "raw"
    assert result["payload_bytes_per_device"] == 5 * 250 * 14 * 4


def test_openfwi_records_are_decimated_to_the_model(tiny_openfwi_root: Path) -> None:
    model = tiny_epic()
    folder = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", split=None)
    result = evaluation.evaluate_model(model, folder, batch_size=4)
    seismic = np.stack([folder[i][0] for i in range(len(folder))])[:, :, ::4]
    target = torch.from_numpy(
        np.stack([normalize_velocity(folder[i][1]) for i in range(len(folder))])
    )
    with torch.no_grad():
        pred = model(torch.from_numpy(normalize_seismic(seismic, "flatvel-a")).float())
    assert result["num_samples"] == 9
    assert result["mae"] == pytest.approx((pred - target).abs().mean().item(), rel=1e-5)
    assert result["payload_kind"] == "latent"
    assert (
        result["payload_bytes_per_device"] == model.payload_bytes() < result["raw_bytes_per_device"]
    )


def test_cli_writes_json_and_figure(
    hub_folder: Path, tiny_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "out" / "metrics.json", tmp_path / "out" / "panels.png"
    argv = ["--model", str(hub_folder), "--data", str(tiny_dataset_dir), "--batch-size", "4"]
    assert evaluate.main([*argv, "--json", str(out), "--figure", str(png)]) == 0
    record = json.loads(out.read_text())
    assert record["dataset"] == "flatvel-a" and record["num_samples"] == 8
    assert record["architecture"] == "epic" and record["time_stride"] == 4
    assert set(evaluation.METRIC_KEYS) <= set(record)
    direct = evaluation.evaluate_model(
        hub.load_hub_folder(hub_folder), H5Split(tiny_dataset_dir / "test")
    )
    assert record["ssim_openfwi"] == pytest.approx(direct["ssim_openfwi"], abs=1e-6)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "ssim_openfwi" in printed and "bytes/device/sample" in printed


def test_misfit_matches_the_raw_records(tiny_dataset_dir: Path, one_thread: None) -> None:
    from epic_zoo.wave_physics import data_misfit

    model = tiny_epic()
    split = H5Split(tiny_dataset_dir / "test")
    plain = evaluation.evaluate_model(model, split, limit=3)
    assert not {"misfit", "misfit_per_device", "misfit_samples", "refine"} & set(plain)
    result = evaluation.evaluate_model(model, split, limit=3, misfit=True, physics_limit=2)
    assert {k: result[k] for k in plain} == plain  # the other keys are unchanged
    assert result["misfit_samples"] == 2 and len(result["misfit_per_device"]) == 5
    raw = np.stack([split[i][0] for i in range(2)])  # stored at the model's 4 ms stride
    data = FWIDataset(split)
    with torch.no_grad():
        pred = model(torch.stack([data[i]["seismic"] for i in range(2)]))
    velocity = evaluation.predicted_velocity_ms(pred)
    expected = data_misfit(velocity, raw, data_time_stride=4)
    assert result["misfit"] == pytest.approx(float(expected.sample.mean()), rel=1e-3)
    assert result["misfit_per_device"] == pytest.approx(
        expected.device.mean(dim=0).tolist(), rel=1e-3
    )
    with pytest.raises(ValueError, match="physics_limit=0"):
        evaluation.evaluate_model(model, split, misfit=True, physics_limit=0)
    with pytest.raises(ValueError, match="dataset name and time stride"):
        evaluation.evaluate_model(model, [data[0]], misfit=True)


def test_cli_misfit_and_refinement(
    hub_folder: Path,
    tiny_dataset_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    one_thread: None,
) -> None:
    out = tmp_path / "metrics.json"
    argv = ["--model", str(hub_folder), "--data", str(tiny_dataset_dir), "--limit", "4"]
    physics = ["--misfit", "--refine", "2", "--physics-limit", "2"]
    assert evaluate.main([*argv, *physics, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["num_samples"] == 4 and record["misfit_samples"] == 2
    assert 0 < record["misfit"] and len(record["misfit_per_device"]) == 5
    refined = record["refine"]
    assert refined["iterations"] == 2 and refined["samples"] == 2 and refined["seconds"] > 0
    for stage in ("before", "after"):
        assert set(refined[stage]) == set(evaluation.REFINE_METRIC_KEYS)
    assert refined["before"]["misfit"] == pytest.approx(record["misfit"], rel=1e-4)
    assert refined["after"]["misfit"] <= refined["before"]["misfit"] * (1 + 1e-6)
    printed = capsys.readouterr().out
    assert "first 2 samples" in printed and "refinement: 2 FWI iterations" in printed
    # without the flags: neither keys nor lines
    assert evaluate.main([*argv, "--json", str(out), "--force"]) == 0
    record = json.loads(out.read_text())
    assert not {"misfit", "misfit_per_device", "misfit_samples", "refine"} & set(record)
    printed = capsys.readouterr().out
    assert "  misfit " not in printed and "refinement:" not in printed


def test_cli_reads_npy_folders_and_lightning_checkpoints(
    tiny_openfwi_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_epic()
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    hparams = {"model_name": "epic", "model_kwargs": TINY_EPIC}
    torch.save({"state_dict": state, "hyper_parameters": hparams, "epoch": 0}, ckpt)
    out = tmp_path / "m.json"
    argv = ["--model", str(ckpt.parent), "--data", str(tiny_openfwi_root), "--split", "test"]
    assert evaluate.main([*argv, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["num_samples"] == 3  # file 49 is the only official test file present
    test = OpenFWIFolder(tiny_openfwi_root, "flatvel-a", split="test")
    assert record["mae"] == pytest.approx(evaluation.evaluate_model(model, test)["mae"], rel=1e-6)
    # OpenFWI's own layout refines in place: the raw 1 ms records of data*.npy
    refine = ["--refine", "1", "--physics-limit", "1", "--json", str(out), "--force"]
    assert evaluate.main([*argv, *refine]) == 0
    refined = json.loads(out.read_text())["refine"]
    assert refined["samples"] == 1
    assert refined["after"]["misfit"] <= refined["before"]["misfit"] * (1 + 1e-6)


def test_cli_errors_name_the_problem(
    hub_folder: Path, tiny_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate.main(["--model", str(hub_folder), "--data", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    full = hub.save_hub_folder(
        create_model("epic", **{**TINY_EPIC, "time_samples": 1000}),
        tmp_path / "full",
        dataset="flatvel-a",
    )
    assert evaluate.main(["--model", str(full), "--data", str(tiny_dataset_dir)]) == 2
    assert "not a multiple of the stored time_stride=4" in capsys.readouterr().err
    npy = tmp_path / "unnamed"
    npy.mkdir()
    np.save(npy / "data1.npy", np.zeros((1, 5, 1000, 70), np.float32))
    with pytest.raises(ValueError, match="names no dataset; pass --dataset"):
        evaluation.open_data(npy)


def test_compare_metrics_tolerance() -> None:
    recorded = {"ssim": 0.80, "mae": 0.100}
    assert evaluation.compare_metrics({"ssim": 0.804, "mae": 0.1019}, recorded) == []
    failures = evaluation.compare_metrics({"ssim": 0.79, "mae": 0.1030}, recorded)
    assert [f.split(":")[0] for f in failures] == ["ssim", "mae"]


@pytest.mark.usefixtures("one_thread")
def test_recorded_check_reproduces_on_regenerated_data(
    tiny_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metrics recorded on the original tiny test split are met on a regeneration of it."""
    folder = hub.save_hub_folder(
        tiny_epic(), tmp_path / "checkpoints" / "epic.flatvel-a", dataset="flatvel-a"
    )
    registry = tmp_path / "checkpoints" / hub.REGISTRY_NAME
    info = hub.register(folder, registry=registry, repo_id="org/epic-flatvel-a", local=True)
    data = {"seed": 0, "time_stride": 4, "dtype": "float32", "generator_version": "1"}
    original = FWIDataset(H5Split(tiny_dataset_dir / "test"))
    recorded = evaluation.evaluate_model(hub.load_hub_folder(folder), original, limit=3)
    check = {"num": 3, "seed": 0, "metrics": {k: recorded[k] for k in evaluation.METRIC_KEYS}}
    hub.write_registry({info.name: dataclasses.replace(info, data=data, check=check)}, registry)

    result = evaluation.reproduce_pretrained(info.name, tmp_path / "regen", registry=registry)
    assert result["failures"] == []
    assert result["measured"]["ssim"] == pytest.approx(recorded["ssim"], abs=1e-4)

    check["metrics"]["ssim"] += 0.05
    hub.write_registry({info.name: dataclasses.replace(info, data=data, check=check)}, registry)
    result = evaluation.reproduce_pretrained(info.name, tmp_path / "regen", registry=registry)
    assert [f.split(":")[0] for f in result["failures"]] == ["ssim"]

    with pytest.raises(ValueError, match="generator version 0"):
        evaluation.regenerated_test_metrics(
            tiny_epic(), "flatvel-a", {**data, "generator_version": "0"}, 3, tmp_path / "regen"
        )


def test_raw_readers_are_read_at_the_model_contract_stride(tiny_dataset_dir: Path) -> None:
    """The stride comes from the model's stored contract, never from its sample count."""
    split = H5Split(tiny_dataset_dir / "test")
    model = ZeroVelocity()
    assert evaluation.model_contract(model) is None
    # a fresh model: the contract's reader derives it from the model's time_samples
    assert evaluation.model_contract(model, "flatvel-a") == InputContract.make("flatvel-a", 4)
    model.config["time_samples"] = 5  # kept by every stride from 200 to 249 ms: unknown
    assert evaluation.model_contract(model, "flatvel-a") is None
    assert evaluation.as_dataset(split, model).time_stride == 4  # then the data's own
    model.contract = InputContract.make("flatvel-a", 8)
    model.config["time_samples"] = 125
    assert evaluation.as_dataset(split, model).time_samples == 125
    model.config["time_samples"] = 250
    with pytest.raises(ValueError, match="--time-stride 8"):
        evaluation.evaluate_model(model, split)


def test_raw_payload_is_the_hardware_arithmetic() -> None:
    from epic_zoo.hardware.payload import raw_payload_bytes

    info = evaluation.payload_info(ZeroVelocity())
    assert info["payload_kind"] == "raw"
    assert info["raw_bytes_per_device"] == raw_payload_bytes(250, 14) == 4 * 5 * 250 * 14


def test_cli_refuses_to_overwrite_json_and_figure_without_force(
    hub_folder: Path, tiny_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers import one_line_error

    argv = ["--model", str(hub_folder), "--data", str(tiny_dataset_dir), "--limit", "2"]
    for flag, name in (("--json", "kept.json"), ("--figure", "kept.png")):
        kept = tmp_path / name
        kept.write_bytes(b"a user's file\n")
        assert evaluate.main([*argv, flag, str(kept)]) == 2
        one_line_error(capsys, flag, str(kept), "--force")
        assert kept.read_bytes() == b"a user's file\n"
    assert evaluate.main([*argv, "--json", str(tmp_path / "kept.json"), "--force"]) == 0
    os.mkfifo(tmp_path / "pipe")  # refused even with --force: writing it would block
    assert evaluate.main([*argv, "--json", str(tmp_path / "pipe"), "--force"]) == 2
    one_line_error(capsys, "not a regular file")
    assert json.loads((tmp_path / "kept.json").read_text())["num_samples"] == 2


def test_cli_refuses_a_shard_declaring_2_to_the_40_samples(
    hub_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import h5py

    from tests.helpers import one_line_error

    path = tmp_path / "flatvel-a" / "test" / "shard-00000.h5"
    path.parent.mkdir(parents=True)
    n = 2**40
    with h5py.File(path, "w") as f:  # declared, never stored: a few KB on disk
        f.create_dataset("seismic", shape=(n, 5, 250, 70), dtype="f4", chunks=(1, 5, 250, 70))
        f.create_dataset("velocity", shape=(n, 1, 70, 70), dtype="f4", chunks=(1, 1, 70, 70))
        f.attrs.update(dict(complete=True, count=n, total=n, shard_size=n, num_shards=1))
        f.attrs.update(dict(shard_index=0, first_index=0, nt=250, time_stride=4, dtype="float32"))
    assert evaluate.main(["--model", str(hub_folder), "--data", str(path.parent)]) == 2
    one_line_error(capsys, str(path), "stores data for only part")
