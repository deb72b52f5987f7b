"""`python -m epic_zoo.bench` at the tiny profile: internal consistency, resuming, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from epic_zoo import bench
from epic_zoo.hardware.payload import raw_payload_bytes
from epic_zoo.models import create_model

T = 250  # tiny profile: 1000 ms at a 4 ms stride


def run(tiny_data_root: Path, out: Path, *extra: str) -> int:
    argv = ["--profile", "tiny", "--datasets", "flatvel-a", "--data-root", str(tiny_data_root)]
    return bench.main([*argv, "--out", str(out), "--repeats", "1", *extra])


@pytest.fixture(scope="module")
def sweep(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    assert run(tiny_data_root, out, "--models", "epic,inversionnet", "--links", "wifi,4g") == 0
    return out


@pytest.fixture(scope="module")
def rows(sweep: Path) -> list[dict]:
    return bench.read_csv(sweep / bench.CSV_NAME)


def test_one_row_per_model_dataset_and_link(rows: list[dict], sweep: Path) -> None:
    keys = {(r["model"], r["dataset"], r["link"]) for r in rows}
    models = ("epic", "inversionnet", "inversionnet+zlib")
    assert keys == {(m, "flatvel-a", link) for m in models for link in ("wifi", "4g")}
    assert len(rows) == len(keys)
    table = (sweep / bench.MD_NAME).read_text()
    assert all(f"| {m} | flatvel-a | wifi |" in table for m in models)
    assert (sweep / "plots" / "latency_per_link.png").is_file()
    assert (sweep / "plots" / "energy_per_link.png").is_file()
    # no fidelity without weights: empty metric cells, no fidelity plot
    assert all(r["ssim"] is None and r["checkpoint"] == "untrained" for r in rows)
    assert not (sweep / "plots" / "fidelity_vs_payload.png").exists()


def test_payload_equals_the_codec_byte_count(rows: list[dict]) -> None:
    epic = create_model("epic", time_samples=T)
    raw_device = raw_payload_bytes(T, 14)
    for r in rows:
        assert r["time_samples"] == T and r["num_devices"] == 5
        assert r["raw_bytes_per_sample"] == 5 * raw_device
        if r["model"] == "epic":
            assert r["payload_kind"] == "latent"
            assert (
                r["payload_bytes_per_device"] == r["codec_bytes_per_device"] == epic.payload_bytes()
            )
            assert r["payload_bytes_per_sample"] == 5 * epic.payload_bytes()
        elif r["model"] == "inversionnet":
            assert r["payload_kind"] == "raw"
            assert r["payload_bytes_per_device"] == r["codec_bytes_per_device"] == raw_device
        else:
            assert r["payload_kind"] == "zlib"
            assert 0 < r["payload_bytes_per_device"] <= raw_device
        assert r["payload_fraction_of_raw"] == pytest.approx(
            r["payload_bytes_per_sample"] / r["raw_bytes_per_sample"]
        )


def test_decoding_from_bytes_reproduces_the_prediction(rows: list[dict]) -> None:
    assert all(r["roundtrip_max_abs_error"] == 0.0 for r in rows)


def test_ratios_are_the_quotients_of_their_columns(rows: list[dict]) -> None:
    for r in rows:
        for s in ("measured", "flops"):
            assert r[f"latency_ratio_{s}"] == pytest.approx(
                r[f"ref_latency_s_{s}"] / r[f"latency_s_{s}"]
            )
            assert r[f"energy_ratio_{s}"] == pytest.approx(
                r[f"ref_energy_j_{s}"] / r[f"energy_j_{s}"]
            )
            parts = ("device_compute_s", "central_compute_s")
            assert r[f"latency_s_{s}"] == pytest.approx(
                sum(r[f"{p}_{s}"] for p in parts) + r["comm_s"] + r["propagation_s"]
            )
            assert r[f"energy_j_{s}"] == pytest.approx(
                r[f"device_compute_j_{s}"] + r["radio_energy_j"] + r[f"central_compute_j_{s}"]
            )
        assert r["comm_energy_ratio"] == pytest.approx(r["ref_comm_energy_j"] / r["comm_energy_j"])
        assert r["radio_energy_ratio"] == pytest.approx(
            r["ref_radio_energy_j"] / r["radio_energy_j"]
        )
        assert r["payload_ratio"] == pytest.approx(
            r["ref_payload_bytes_per_sample"] / r["payload_bytes_per_sample"]
        )
        assert r["radio_energy_j"] == pytest.approx(r["comm_energy_j"] + r["radio_listen_j"])
    # the baseline is its own reference; its reference columns are shared by the link's rows
    for link in ("wifi", "4g"):
        base = next(r for r in rows if r["model"] == "inversionnet" and r["link"] == link)
        assert base["latency_ratio_measured"] == base["comm_energy_ratio"] == 1.0
        for r in rows:
            if r["link"] == link:
                assert r["ref_latency_s_measured"] == base["latency_s_measured"]
    epic_wifi = next(r for r in rows if r["model"] == "epic" and r["link"] == "wifi")
    assert epic_wifi["payload_ratio"] > 50 and epic_wifi["comm_energy_ratio"] > 10


def test_conditions_are_recorded(rows: list[dict]) -> None:
    r = rows[0]
    assert r["torch_version"] == torch.__version__
    assert r["data_profile"] == "tiny" and r["test_samples_profile"] == 8
    assert r["timing_threads"] == 1 and r["host_gflops_1thread"] > 0
    assert r["commit"] and r["cpu"] and r["device_profile"] == "rpi4"
    for r in rows:  # each row's timings are scaled by the host speed measured with them
        assert r["device_speed_ratio"] == pytest.approx(1e-9 * 10e9 / r["host_gflops_1thread"])


def test_resume_keeps_finished_rows_and_adds_new_ones(
    tiny_data_root: Path, sweep: Path, monkeypatch
) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    before = (sweep / bench.CSV_NAME).read_text()
    monkeypatch.setattr(bench, "measure_cost", forbidden)
    monkeypatch.setattr(bench, "load_model", forbidden)
    assert run(tiny_data_root, sweep, "--models", "epic,inversionnet", "--links", "wifi,4g") == 0
    assert (sweep / bench.CSV_NAME).read_text() == before
    monkeypatch.undo()
    # a new link reuses the cached timings: only its rows are added
    monkeypatch.setattr(bench, "measure_cost", forbidden)
    assert (
        run(
            tiny_data_root,
            sweep,
            "--models",
            "epic,inversionnet",
            "--links",
            "wifi,4g,nbiot",
            "--no-plots",
        )
        == 0
    )
    rows = bench.read_csv(sweep / bench.CSV_NAME)
    assert len(rows) == 9 and sum(r["link"] == "nbiot" for r in rows) == 3
    assert (sweep / bench.CSV_NAME).read_text().startswith(before.splitlines()[0])


def test_other_settings_in_the_same_folder_are_refused(
    tiny_data_root: Path, sweep: Path, capsys
) -> None:
    assert run(tiny_data_root, sweep, "--models", "epic", "--device", "rpi5") == 2
    assert "other settings (device)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--links", "wifi,5g"], "unknown link profile '5g'"),
        (["--device", "jetson"], "unknown device profile 'jetson'"),
        (["--models", "epic,bigfwi"], "unknown model 'bigfwi'"),
        (["--datasets", "flatvel-z"], "unknown dataset 'flatvel-z'"),
        (["--profile", "huge"], "unknown data profile 'huge'"),
        (["--checkpoints", "/nonexistent/weights"], "no such folder"),
        (["--limit", "0"], "--limit 0"),
    ],
)
def test_bad_names_and_values(
    tiny_data_root: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    code = bench.main(
        ["--profile", "tiny", "--out", str(tmp_path), "--data-root", str(tiny_data_root), *args]
    )
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("value", "field"), [("0", "bandwidth_bps"), ("-3.0", "rtt_s")])
def test_non_positive_profile_values_from_a_file(
    tiny_data_root: Path, tmp_path: Path, capsys, value: str, field: str
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(f"links:\n  lab-wifi:\n    base: wifi\n    {field}: {value}\n")
    code = run(
        tiny_data_root, tmp_path / "out", "--links", "lab-wifi", "--profiles-file", str(path)
    )
    assert code == 2
    assert "links.lab-wifi" in (err := capsys.readouterr().err) and f"{field}={value}" in err


def test_profiles_file_adds_a_link(tiny_data_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("links:\n  lab-wifi:\n    base: wifi\n    bandwidth_bps: 6.5e6\n")
    settings = bench.Settings(profile="tiny", links=["lab-wifi", "4g"], profiles_file=str(path))
    hardware = bench.resolve_hardware(settings)
    assert hardware.links["lab-wifi"].bandwidth_bps == 6.5e6
    assert hardware.links["lab-wifi"].per_packet_s == bench.LINKS["wifi"].per_packet_s


def save_weights(folder: Path, dataset: str, time_samples: int = T) -> Path:
    from epic_zoo import hub

    torch.manual_seed(0)
    model = create_model("epic", time_samples=time_samples).eval()
    return hub.save_hub_folder(model, folder, dataset=dataset)


def refusal(tiny_data_root: Path, tmp_path: Path, capsys) -> str:
    """Run EPIC on the weights under ``tmp_path / "w"``: assert exit 2, return stderr."""
    out = tmp_path / "out"
    assert run(tiny_data_root, out, "--models", "epic", "--checkpoints", str(tmp_path / "w")) == 2
    return capsys.readouterr().err


def test_trained_weights_give_fidelity_and_panels(tiny_data_root: Path, tmp_path: Path) -> None:
    save_weights(tmp_path / "weights" / "epic.flatvel-a", "flatvel-a")
    out = tmp_path / "out"
    assert (
        run(
            tiny_data_root,
            out,
            "--models",
            "epic",
            "--links",
            "wifi",
            "--checkpoints",
            str(tmp_path / "weights"),
        )
        == 0
    )
    (row,) = bench.read_csv(out / bench.CSV_NAME)
    assert row["test_samples"] == 8 and row["trained_on"] == "flatvel-a"
    assert 0 <= row["ssim"] <= 1 and math.isclose(row["mae_ms"], row["mae"] * 1500, rel_tol=1e-5)
    assert row["checkpoint"].endswith("epic.flatvel-a") and row["roundtrip_max_abs_error"] == 0.0
    assert (out / "plots" / "fidelity_vs_payload.png").is_file()
    assert (out / "plots" / "panels_flatvel-a.png").is_file()


def test_misfit_column_only_when_asked(tiny_data_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ("--models", "epic", "--links", "wifi", "--no-plots")
    assert run(tiny_data_root, out, *args, "--misfit", "--physics-limit", "2") == 0
    (row,) = bench.read_csv(out / bench.CSV_NAME)
    assert row["misfit_samples"] == 2 and 0 < row["misfit"] < 10
    # a misfit sweep resumes only as one
    assert run(tiny_data_root, out, *args) == 2
    assert "other settings (misfit, physics_limit)" in capsys.readouterr().err
    assert run(tiny_data_root, out, *args, "--misfit", "--physics-limit", "3") == 2


def test_sweeps_without_misfit_keep_their_identity() -> None:
    identity = bench.Settings(profile="tiny").identity()
    assert "misfit" not in identity and "physics_limit" not in identity


def test_weights_for_another_dataset_are_refused(
    tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    save_weights(tmp_path / "w" / "epic.flatvel-a", "flatvel-b")
    assert "trained on flatvel-b, not flatvel-a" in refusal(tiny_data_root, tmp_path, capsys)


def test_weights_for_another_geometry_are_refused(
    tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    folder = save_weights(tmp_path / "w" / "epic.flatvel-a", "flatvel-a")
    config = json.loads((folder / "config.json").read_text())
    config["geometry"]["dx"] = 5.0
    (folder / "config.json").write_text(json.dumps(config))
    assert "another acquisition geometry: dx=5.0" in refusal(tiny_data_root, tmp_path, capsys)


def test_weights_for_another_record_length_are_refused(
    tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    save_weights(tmp_path / "w" / "epic.flatvel-a", "flatvel-a", time_samples=500)
    assert "takes 500 time samples" in refusal(tiny_data_root, tmp_path, capsys)


def test_missing_weights_name_the_expected_path(
    tiny_data_root: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "w").mkdir()
    assert "epic.flatvel-a" in refusal(tiny_data_root, tmp_path, capsys)


def test_empty_test_split_is_an_error(tmp_path: Path, write_openfwi_files, capsys) -> None:
    folder = tmp_path / "FlatVel_A"
    write_openfwi_files(folder, "flatvel-a", [(1,), (2,)], samples=2)  # train files only
    code = bench.main(
        [
            "--datasets",
            "flatvel-a",
            "--models",
            "epic",
            "--data",
            str(folder),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "test data of flatvel-a" in capsys.readouterr().err


def test_wandb_logging_finishes_its_run(rows: list[dict], sweep: Path, monkeypatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "disabled")
    plots = sorted((sweep / "plots").glob("*.png"))
    bench.log_wandb(rows, plots, bench.Settings(profile="tiny"), sweep, "epic_zoo-test")
    assert wandb.run is None


@pytest.mark.slow
def test_train_path_trains_then_benchmarks(tiny_data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = [
        "--models",
        "epic",
        "--links",
        "wifi",
        "--train",
        "--train-override",
        "trainer.max_epochs=1",
    ]
    assert run(tiny_data_root, out, *extra) == 0
    (row,) = bench.read_csv(out / bench.CSV_NAME)
    assert row["train_epochs"] == 1 and row["train_profile"] == "tiny"
    assert Path(row["checkpoint"]).is_relative_to(out / "runs" / "epic" / "flatvel-a")
    summary = json.loads((out / "runs" / "epic" / "flatvel-a" / "results.json").read_text())
    assert row["ssim"] == pytest.approx(summary["metrics"]["test/ssim"], abs=1e-5)
