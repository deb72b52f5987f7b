"""`python -m epic_zoo.bench` at the tiny profile: internal consistency, resuming, bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from epic_zoo import bench
from epic_zoo.bench import cell, costs
from epic_zoo.hardware.payload import raw_payload_bytes
from epic_zoo.hardware.profiles import LINKS as LINK_TABLE
from epic_zoo.models import create_model
from tests.helpers import benchmark_script

T = 250  # tiny profile: 1000 ms at a 4 ms stride


LINKS = ("wifi-ac", "4g-sporadic")
BASELINES = ("inversionnet", "inversionnet+f16", "inversionnet+f32-zlib", "inversionnet+f16-zlib")
FORMATS = ("f32", "f16", "f32-zlib", "f16-zlib")


def run(tiny_data_root: Path, out: Path, *extra: str) -> int:
    argv = ["--profile", "tiny", "--datasets", "flatvel-a", "--data-root", str(tiny_data_root)]
    return bench.main([*argv, "--out", str(out), "--repeats", "1", "--warmup", "0", *extra])


@pytest.fixture(scope="module")
def sweep(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    links = ",".join(LINKS)
    assert run(tiny_data_root, out, "--models", "epic,inversionnet", "--links", links) == 0
    return out


@pytest.fixture(scope="module")
def rows(sweep: Path) -> list[dict]:
    return bench.read_csv(sweep / bench.CSV_NAME)


def test_one_row_per_model_dataset_and_link(rows: list[dict], sweep: Path) -> None:
    keys = {(r["model"], r["dataset"], r["link"]) for r in rows}
    models = ("epic", *BASELINES)
    assert keys == {(m, "flatvel-a", link) for m in models for link in LINKS}
    assert len(rows) == len(keys)
    table = (sweep / bench.MD_NAME).read_text()
    assert all(f"| {m} | flatvel-a | wifi-ac |" in table for m in models)
    # the output says which figures are stable and which are measured
    assert "Stable (bit-for-bit" in table and "Measured (steady" in table
    assert (sweep / "plots" / "latency_per_link.png").is_file()
    assert (sweep / "plots" / "energy_per_link.png").is_file()
    # no fidelity without weights: empty metric cells, no fidelity plot
    assert all(r["ssim"] is None and r["checkpoint"] == "untrained" for r in rows)
    assert not (sweep / "plots" / "fidelity_vs_payload.png").exists()


def test_default_links_cover_every_profile_of_issue_12() -> None:
    assert set(bench.Settings().links) == {
        "wifi-ac",
        "wifi-n-ampdu",
        "wifi-n",
        "4g-sporadic",
        "4g-streaming",
        "nbiot",
    }


def test_payload_equals_the_codec_byte_count(rows: list[dict]) -> None:
    epic = create_model("epic", time_samples=T)
    raw_device = raw_payload_bytes(T, 14)
    for r in rows:
        assert r["time_samples"] == T and r["num_devices"] == 5
        assert r["raw_bytes_per_sample"] == 5 * raw_device
        if r["model"] == "epic":
            assert r["raw_format"] is None
            assert (
                r["payload_bytes_per_device"] == r["codec_bytes_per_device"] == epic.payload_bytes()
            )
            assert r["payload_bytes_per_sample"] == 5 * epic.payload_bytes()
        elif r["model"] == "inversionnet":
            assert r["raw_format"] == "f32"
            assert r["payload_bytes_per_device"] == r["codec_bytes_per_device"] == raw_device
        elif r["model"] == "inversionnet+f16":
            assert r["payload_bytes_per_device"] == raw_payload_bytes(T, 14, "float16")
        else:
            assert r["raw_format"].endswith("zlib")
            assert 0 < r["payload_bytes_per_device"] <= raw_device
        assert r["payload_fraction_of_raw"] == pytest.approx(
            r["payload_bytes_per_sample"] / r["raw_bytes_per_sample"]
        )


def test_decoding_from_bytes_reproduces_the_prediction(rows: list[dict]) -> None:
    assert all(r["roundtrip_max_abs_error"] == 0.0 for r in rows)


def test_columns_add_up_and_headline_ratios_use_the_strongest_baseline(rows: list[dict]) -> None:
    for r in rows:
        assert r["energy_radio_j"] == pytest.approx(
            r["energy_tx_j"] + r["energy_listen_j"] + r["energy_state_j"]
        )
        for s in ("measured", "flops"):
            parts = ("device_compute_s", "central_compute_s")
            assert r[f"latency_s_{s}"] == pytest.approx(
                sum(r[f"{p}_{s}"] for p in parts)
                + r["comm_s"]
                + r["propagation_s"]
                + r["promotion_s"]
            )
            assert r[f"energy_total_j_{s}"] == pytest.approx(
                r[f"device_compute_j_{s}"] + r["energy_radio_j"] + r[f"central_compute_j_{s}"]
            )
            for q in ("latency", "energy_total"):
                per_format = {f: r[f"{q}_x_{f}_{s}"] for f in FORMATS}
                assert r[f"{q}_x_{s}"] == min(per_format.values())
                assert per_format[r[f"strongest_ref_{q}_{s}"]] == r[f"{q}_x_{s}"]
        for q in ("energy_tx", "energy_listen", "energy_radio", "payload"):
            assert r[f"{q}_x"] == min(r[f"{q}_x_{f}"] for f in FORMATS)
    # each baseline row is its own reference in its own format: ratio 1
    by_key = {(r["model"], r["link"]): r for r in rows}
    for link in LINKS:
        for name, fmt in zip(BASELINES, FORMATS, strict=True):
            base = by_key[(name, link)]
            assert base[f"latency_x_{fmt}_flops"] == pytest.approx(1.0)
            assert base[f"energy_tx_x_{fmt}"] == pytest.approx(1.0)
        epic, f16 = by_key[("epic", link)], by_key[("inversionnet+f16", link)]
        assert epic["latency_x_f16_flops"] == pytest.approx(
            f16["latency_s_flops"] / epic["latency_s_flops"]
        )
        assert epic["energy_total_x_f16_flops"] == pytest.approx(
            f16["energy_total_j_flops"] / epic["energy_total_j_flops"]
        )
    # float16 halves the raw bytes: the f16 ratio of payload is half the f32 one
    epic_wifi = by_key[("epic", "wifi-ac")]
    assert epic_wifi["payload_x_f16"] == pytest.approx(epic_wifi["payload_x_f32"] / 2)
    assert epic_wifi["payload_x_f32"] > 50
    # sporadic LTE: both pay the promotion and the 11.6 s tail, so total radio energy is close
    lte = by_key[("epic", "4g-sporadic")]
    assert lte["promotion_s"] > 0.2 and lte["energy_state_j"] > 5 * 11
    assert lte["energy_radio_x"] < 1.5 < lte["energy_tx_x"]


def test_conditions_are_recorded(rows: list[dict]) -> None:
    r = rows[0]
    assert r["torch_version"] == torch.__version__
    assert r["data_profile"] == "tiny" and r["test_samples_profile"] == 8
    assert r["timing_threads"] == 1 and r["host_gflops_1thread"] > 0 and r["timing_rounds"] == 1
    assert r["timing_clock"] == "thread CPU time"
    assert r["commit"] and r["cpu"] and r["device_profile"] == "rpi4"
    for r in rows:  # each row's timings are scaled by the host speed measured with them
        assert r["device_speed_ratio"] == pytest.approx(1e-9 * 10e9 / r["host_gflops_1thread"])


def test_resume_keeps_finished_rows_and_adds_new_ones(
    tiny_data_root: Path, sweep: Path, monkeypatch
) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    before = (sweep / bench.CSV_NAME).read_text()
    monkeypatch.setattr(costs, "measure_costs", forbidden)
    monkeypatch.setattr(cell, "load_bench_model", forbidden)
    links = ",".join(LINKS)
    assert run(tiny_data_root, sweep, "--models", "epic,inversionnet", "--links", links) == 0
    assert (sweep / bench.CSV_NAME).read_text() == before
    monkeypatch.undo()
    # a new link reuses the cached timings: only its rows are added
    monkeypatch.setattr(costs, "measure_costs", forbidden)
    assert (
        run(
            tiny_data_root,
            sweep,
            "--models",
            "epic,inversionnet",
            "--links",
            f"{links},nbiot",
            "--no-plots",
        )
        == 0
    )
    rows = bench.read_csv(sweep / bench.CSV_NAME)
    assert len(rows) == 15 and sum(r["link"] == "nbiot" for r in rows) == 5
    assert (sweep / bench.CSV_NAME).read_text().startswith(before.splitlines()[0])


def test_other_settings_in_the_same_folder_are_refused(
    tiny_data_root: Path, sweep: Path, capsys
) -> None:
    assert run(tiny_data_root, sweep, "--models", "epic", "--device", "rpi5") == 2
    assert "other settings (device)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--links", "wifi-ac,5g"], "unknown link profile '5g'"),
        (["--device", "jetson"], "unknown device profile 'jetson'"),
        (["--models", "epic,bigfwi"], "--models: unknown model 'bigfwi'"),
        (["--datasets", "flatvel-z"], "unknown dataset 'flatvel-z'"),
        (["--data", "/nonexistent/data"], "epic_zoo.data generate"),
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
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_unwritable_output_is_refused_before_any_work(
    tiny_data_root: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(bench.sweep, "run_bench", lambda *a, **k: pytest.fail("work started"))
    assert run(tiny_data_root, blocker / "out", "--models", "epic") == 2
    err = capsys.readouterr().err
    assert f"--out {blocker / 'out'}: cannot write there" in err and "writable folder" in err


def test_the_command_line_is_generated_from_the_settings() -> None:
    flags = {a.dest for a in bench.build_parser()._actions}
    fields = {f.name for cls in (bench.Settings, bench.RunOptions) for f in dataclasses.fields(cls)}
    assert fields <= flags
    settings, options = bench.cli.parse(
        ["--links", "all", "--models", "epic", "--limit", "3", "--no-plots", "--misfit"]
    )
    assert settings.links == list(bench.settings.LINKS) and settings.models == ["epic"]
    assert settings.limit == 3 and settings.misfit and not options.plots
    assert settings.fidelity == "none" and settings.datasets == bench.Settings().datasets
    assert bench.cli.parse(["--checkpoints", "w"])[0].fidelity == "checkpoints"


@pytest.mark.parametrize(("value", "field"), [("0", "bandwidth_bps"), ("-3.0", "rtt_s")])
def test_non_positive_profile_values_from_a_file(
    tiny_data_root: Path, tmp_path: Path, capsys, value: str, field: str
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(f"links:\n  lab-wifi:\n    base: wifi-n\n    {field}: {value}\n")
    code = run(
        tiny_data_root, tmp_path / "out", "--links", "lab-wifi", "--profiles-file", str(path)
    )
    assert code == 2
    assert "links.lab-wifi" in (err := capsys.readouterr().err) and f"{field}={value}" in err


def test_profiles_file_adds_a_link(tiny_data_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text("links:\n  lab-wifi:\n    base: wifi-n\n    bandwidth_bps: 6.5e6\n")
    settings = bench.Settings(profile="tiny", links=["lab-wifi", "4g"], profiles_file=str(path))
    hardware = bench.resolve_hardware(settings)
    assert hardware.links["lab-wifi"].bandwidth_bps == 6.5e6
    assert hardware.links["lab-wifi"].per_packet_s == LINK_TABLE["wifi-n"].per_packet_s
    assert hardware.links["4g"].name == "4g-sporadic"  # the old name is an alias


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
            "wifi-ac",
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
    args = ("--models", "epic", "--links", "wifi-ac", "--no-plots")
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
    bench.sweep.log_wandb(rows, plots, bench.Settings(profile="tiny"), sweep, "epic_zoo-test")
    assert wandb.run is None


def test_stability_check_of_two_runs(sweep: Path, tmp_path: Path, capsys) -> None:
    """benchmarks/bench_stability.py: a run against itself passes; a 20 % latency gap fails."""
    import csv

    stability = benchmark_script("bench_stability")
    first = sweep / bench.CSV_NAME
    assert stability.main([str(first), str(first)]) == 0
    assert "| `latency_x_flops` | stable | 0.00 % | 0.00 % | - | yes |" in capsys.readouterr().out
    with first.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows[0]["latency_x_measured"] = str(1.2 * float(rows[0]["latency_x_measured"]))
    second = tmp_path / "run2" / bench.CSV_NAME
    second.parent.mkdir()
    with second.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert stability.main([str(first), str(second)]) == 1
    out = capsys.readouterr().out
    worst = " / ".join((rows[0]["model"], rows[0]["dataset"], rows[0]["link"]))
    assert f"| `latency_x_measured` | measured | 0.00 % | 18.18 % | {worst} | no |" in out
    assert stability.main([str(first), str(tmp_path / "missing.csv")]) == 2
