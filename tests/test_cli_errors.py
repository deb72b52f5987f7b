"""Expected failures of the ``deploy``, ``data`` and ``compare`` commands: one line, the fix, exit != 0.

Each case runs the command's ``main`` in-process with an input a careless
user would give and checks that it returns a non-zero status, prints a
single ``error:`` line naming the input (no traceback), and, where the
command writes files, that the output path is checked before the work.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from epic_zoo.deploy.security import provision
from tests.helpers import one_line_error as _one_line_error


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    """A plain file: any path below it cannot be created."""
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


# ------------------------------------------------------------------------------ deploy
def _deploy(*argv: str) -> int:
    """The deploy CLI's exit status (argparse's own refusals exit 2 with one line)."""
    from epic_zoo.deploy.__main__ import main

    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_deploy_central_without_credentials(tmp_path, capsys) -> None:
    rc = _deploy(
        "central", "--bundle", str(tmp_path), "--credentials", str(tmp_path / "nope.json"),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "nope.json", "provision")


def test_deploy_central_out_unwritable_is_checked_first(tmp_path, a_file, capsys) -> None:
    rc = _deploy(
        "central", "--bundle", str(tmp_path / "no-bundle"), "--credentials", str(tmp_path / "c.json"),
        "--out", str(a_file / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "--out", str(a_file / "out"), "writable")


def test_deploy_central_without_a_bundle(tmp_path, capsys) -> None:
    provision(1, tmp_path / "secrets")
    rc = _deploy(
        "central", "--bundle", str(tmp_path / "empty"), "--credentials",
        str(tmp_path / "secrets/central.json"), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert rc == 1
    _one_line_error(capsys, "manifest.json", "export")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--watch", "missing-folder"], ["--watch", "missing-folder", "create it"]),
        (["--data", "missing.npy"], ["--data", "missing.npy"]),
        (["--data", ".", "--first-sample", "-1"], ["--first-sample"]),
        (["--data", ".", "--stats", "{file}/stats.json"], ["--stats", "writable"]),
        (["--data", ".", "--link", "carrier-pigeon"], ["carrier-pigeon"]),
    ],
)
def test_deploy_edge_bad_arguments_before_connecting(
    tmp_path, a_file, capsys, monkeypatch, extra, needles
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = [e.replace("{file}", str(a_file)) for e in extra]
    rc = _deploy(
        "edge", "--bundle", str(tmp_path), "--device", "0", "--credentials", "c.json",
        "--broker", "127.0.0.1:1", *extra,
    )  # fmt: skip
    assert rc == (2 if "--first-sample" in extra else 1)  # a bad number: argparse's status
    _one_line_error(capsys, *needles)


def test_deploy_provision_out_unwritable(a_file, capsys) -> None:
    assert _deploy("provision", "--devices", "2", "--out", str(a_file / "secrets")) == 1
    _one_line_error(capsys, "--out", "writable")


def test_deploy_provision_claims_the_real_mode(tmp_path, capsys) -> None:
    out = tmp_path / "secrets"
    out.mkdir()
    (out / "central.json").write_text("{}")
    (out / "central.json").chmod(0o644)
    assert _deploy("provision", "--devices", "1", "--out", str(out), "--force") == 0
    assert "(mode 0o600)" in capsys.readouterr().out
    assert stat.S_IMODE((out / "central.json").stat().st_mode) == 0o600


def test_deploy_broker_without_credentials(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    rc = _deploy("broker", "--credentials", str(tmp_path / "empty"), "--devices", "2")
    assert rc == 1
    _one_line_error(capsys, "empty", "provision")


# -------------------------------------------------------------------------------- data
def _data(*argv: str) -> int:
    from epic_zoo.data.__main__ import main

    return main(list(argv))


def _no_simulation(monkeypatch) -> list[int]:
    """Replace the forward model by a counter of its calls (it must not run)."""
    from epic_zoo.data import forward

    calls: list[int] = []
    monkeypatch.setattr(forward, "simulate", lambda *a, **k: calls.append(1) or pytest.fail())
    return calls


def test_data_generate_unwritable_out_is_checked_before_simulating(
    a_file, capsys, monkeypatch
) -> None:
    calls = _no_simulation(monkeypatch)
    out = a_file / "data"
    assert _data("generate", "--dataset", "flatvel-a", "--num", "1", "--out", str(out)) == 2
    _one_line_error(capsys, str(out), "writable --out")
    assert calls == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_data_generate_read_only_split_folder(tmp_path, capsys, monkeypatch) -> None:
    calls = _no_simulation(monkeypatch)
    split = tmp_path / "data/flatvel-a/train"
    split.mkdir(parents=True)
    split.chmod(0o555)
    try:
        rc = _data(
            "generate", "--dataset", "flatvel-a", "--num", "1", "--out", str(tmp_path / "data")
        )
    finally:
        split.chmod(0o755)
    assert rc == 2 and calls == []
    _one_line_error(capsys, str(split), "writable --out")


def test_data_generate_refuses_nan_in_time_samples_the_stride_drops(
    tmp_path, capsys, monkeypatch
) -> None:
    from epic_zoo.data import forward

    def diverged(velocity, **kwargs):
        seismic = np.zeros((len(velocity), 5, 1000, 70), dtype=np.float32)
        seismic[:, 0, 1, 0] = np.nan  # sample 1 ms: dropped by --time-stride 4
        return seismic

    monkeypatch.setattr(forward, "simulate", diverged)
    out = tmp_path / "data"
    rc = _data(
        "generate", "--dataset", "flatvel-a", "--num", "1", "--time-stride", "4", "--out", str(out),
        "--no-progress",
    )  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "NaN", "before time decimation")
    assert not list(out.rglob("shard-*.h5"))


def test_data_import_names_the_velocity_file_in_velocity_errors(
    tmp_path, write_openfwi_files, capsys
) -> None:
    src = tmp_path / "FlatVel_A"
    [(seismic_file, velocity_file)] = write_openfwi_files(src, "flatvel-a", [(1,)])
    np.save(velocity_file, np.load(velocity_file) * 1000.0)  # km/s taken for m/s, say
    assert _data("import-openfwi", str(src), "--out", str(tmp_path / "out"), "--no-progress") == 2
    line = _one_line_error(capsys, "outside the OpenFWI range")
    assert line.startswith(f"error: {velocity_file}: velocity"), line
    assert str(seismic_file) not in line


def test_missing_bare_shard_path_gives_a_sensible_hint(tmp_path) -> None:
    from epic_zoo.data.store import DataError, H5Split

    shard = tmp_path / "somewhere" / "shard-00000.h5"
    with pytest.raises(DataError) as info:
        H5Split(shard)
    message = str(info.value)
    assert str(shard) in message and "python -m epic_zoo.data generate" in message
    assert "--split shard-00000.h5" not in message and "--dataset somewhere" not in message


def test_regenerate_hint_of_a_shard_path_names_its_split() -> None:
    from epic_zoo.data.store import regenerate_command

    hint = regenerate_command(Path("root/flatvel-a/test/shard-00003.h5"))
    assert "--dataset flatvel-a --split test" in hint and "--out root" in hint


# ----------------------------------------------------------------------------- compare
def test_compare_damaged_run_logs(tmp_path, capsys) -> None:
    from epic_zoo.compare import main

    version = tmp_path / "run/csv/version_0"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text("test/mae\n0.1\n")
    (version / "hparams.yaml").write_text("model_name: [unclosed\n")
    assert main([str(tmp_path / "run")]) == 2
    _one_line_error(capsys, str(tmp_path / "run"), "leave it out")
    (tmp_path / "bad/").mkdir()
    (tmp_path / "bad/results.json").write_text("{not json")
    assert main([str(tmp_path / "bad")]) == 2
    _one_line_error(capsys, str(tmp_path / "bad"))
    assert main([str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "missing", "does not exist")


def test_data_info_refuses_a_shard_declaring_2_to_the_40_samples(tmp_path, capsys) -> None:
    import h5py

    from epic_zoo.data.__main__ import main

    split_dir = tmp_path / "flatvel-a" / "test"
    split_dir.mkdir(parents=True)
    path = split_dir / "shard-00000.h5"
    n = 2**40
    with h5py.File(path, "w") as f:  # datasets declared, nothing stored: a tiny file
        f.create_dataset("seismic", shape=(n, 5, 250, 70), dtype="f4", chunks=(1, 5, 250, 70))
        f.create_dataset("velocity", shape=(n, 1, 70, 70), dtype="f4", chunks=(1, 1, 70, 70))
        f.attrs.update(
            dict(complete=True, count=n, total=n, shard_size=n, num_shards=1, shard_index=0)
        )
        f.attrs.update(dict(first_index=0, nt=250, time_stride=4, dtype="float32"))
    for target in (path, split_dir, tmp_path):
        assert main(["info", str(target)]) == 2
        err = capsys.readouterr()
        lines = [line for line in (err.out + err.err).splitlines() if str(path) in line]
        assert len(lines) == 1 and "stores data for only part" in lines[0], err
        assert "Traceback" not in err.err


# --------------------------------------------------------------------------------- run
def _run_main(monkeypatch, *argv: str) -> int:
    """``python -m epic_zoo.run ARGV`` in-process; the exit status (0 if it returned)."""
    from epic_zoo import run

    monkeypatch.setattr(sys, "argv", ["epic_zoo.run", *argv])
    with pytest.raises(SystemExit) as exit_:
        run.main()
    return int(exit_.value.code or 0)


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["data.dataset=flatvel-z"], ["data.dataset='flatvel-z'", "flatvel-a"]),
        (["data.profile=huge"], ["data.profile='huge'", "lite"]),
        (["data.batch_size=-4"], ["data.batch_size=-4", "at least 1"]),
        (["data.batch_size=0"], ["data.batch_size=0", "at least 1"]),
        (["data.batch_size=abc"], ["data.batch_size='abc'", "int"]),
        (["data.num_workers=-1"], ["data.num_workers=-1"]),
        (["model.name=resnet"], ["model.name='resnet'", "model=NAME", "inversionnet"]),
        (["model=resnet"], ["model=resnet", "recipes/model/resnet.yaml", "epic-small"]),
        (["model.name=inversionnet"], ["model.kwargs.latent_dim", "model=inversionnet"]),
        (["model.kwargs.bogus=1"], ["model.kwargs.bogus", "spelling"]),
        (["trainer.max_epochs=0"], ["trainer.max_epochs=0"]),
        (["data=openfwi"], ["data.openfwi_root", "OpenFWI"]),
        (["-m", "data.batch_size=4,-2"], ["data.batch_size=-2"]),
    ],
)
def test_run_bad_override_is_one_line_before_anything_runs(
    monkeypatch, tmp_path, capsys, overrides, needles
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run_main(monkeypatch, "recipe=epic_lite", *overrides) == 2
    _one_line_error(capsys, *needles)
    assert list(tmp_path.iterdir()) == []  # no run folder, no data, no logs


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ([], ["recipe", "quickstart"]),
        (["recipe=nope"], ["recipe=nope", "recipes/recipe/nope.yaml", "epic_lite"]),
    ],
)
def test_run_missing_recipe_is_one_line(monkeypatch, tmp_path, capsys, argv, needles) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run_main(monkeypatch, *argv) == 2
    _one_line_error(capsys, *needles)


def test_run_dir_that_is_a_file_is_refused_and_kept(monkeypatch, a_file, capsys) -> None:
    before = a_file.read_bytes()
    for run_dir in (a_file, a_file / "below"):
        assert _run_main(monkeypatch, "recipe=epic_lite", f"run_dir={run_dir}") == 2
        _one_line_error(capsys, f"run_dir={run_dir}", "is a file")
    assert a_file.read_bytes() == before


def test_run_bad_override_from_the_shell_has_no_traceback(tmp_path) -> None:
    import subprocess

    run = subprocess.run(
        [sys.executable, "-m", "epic_zoo.run", "recipe=epic_lite", "data.batch_size=-1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: data.batch_size=-1")
    assert "Traceback" not in run.stderr and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- hub
@pytest.fixture()
def hub_source(tmp_path: Path) -> Path:
    """A valid Hub-format folder of a tiny EPIC (a source ``hub export`` copies)."""
    import torch
    from conftest import TINY_EPIC

    from epic_zoo import hub
    from epic_zoo.models import create_model

    torch.manual_seed(0)
    model = create_model("epic", **TINY_EPIC).eval()
    return hub.save_hub_folder(model, tmp_path / "source", dataset="flatvel-a")


def test_hub_export_refuses_an_existing_out_without_force(tmp_path, hub_source, capsys) -> None:
    from epic_zoo.hub.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}\n')
    assert main(["export", str(hub_source), "--out", str(out)]) == 2
    _one_line_error(capsys, "--out", str(out), "--force")
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert (out / "config.json").read_text() == '{"mine": true}\n'
    assert main(["export", str(hub_source), "--out", str(tmp_path / "new")]) == 0  # fresh: fine
    assert main(["export", str(hub_source), "--out", str(out), "--force"]) == 0
    assert (out / "config.json").read_bytes() == (hub_source / "config.json").read_bytes()


def test_hub_push_dry_run_refuses_an_existing_out(tmp_path, hub_source, capsys) -> None:
    from epic_zoo.hub.cli import main

    kept = tmp_path / "kept"
    kept.write_text("x")
    argv = ["push", str(hub_source), "--repo-id", "org/name", "--dry-run", "--out", str(kept)]
    assert main(argv) == 2
    _one_line_error(capsys, "--out", "--force")
    assert kept.read_text() == "x"


def _registry_with(**damage) -> str:
    """The shipped registry's first entry, with ``damage`` applied to it, as registry text."""
    import json

    from epic_zoo.weights.registry import default_registry_path

    raw = json.loads(default_registry_path().read_text())
    name, entry = next(iter(raw["weights"].items()))
    raw["weights"] = {name: {**entry, **damage}}
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('{"format_version": 1, "weights": {"a.b"', ["cannot read JSON"]),  # truncated
        ("[1, 2]", ["JSON object"]),
        ('{"format_version": 1, "weights": [1]}', ["'weights' must be a mapping"]),
        ('{"format_version": 1, "weights": {"e.f": [1]}}', ["'e.f' is not a mapping"]),
        (_registry_with(metrics={"mae": "low"}), ["metrics.mae", "numbers"]),
        (_registry_with(dataset=7), ["dataset=7", "text"]),
        (_registry_with(size_bytes=-1), ["size_bytes=-1", "a count"]),
        (_registry_with(baseline=[1]), ["baseline", "a mapping"]),
        ('{"format_version": 1, "weights": {"a.b": {}}}', ["'a.b' lacks architecture"]),
    ],
)
def test_hub_list_on_a_malformed_registry_is_one_line(tmp_path, capsys, text, needles) -> None:
    from epic_zoo.hub.cli import main

    registry = tmp_path / "registry.json"
    registry.write_text(text)
    assert main(["--registry", str(registry), "list"]) == 2
    _one_line_error(capsys, *needles)


def test_hub_list_skips_an_entry_it_cannot_show(tmp_path, capsys) -> None:
    from epic_zoo.hub.cli import main

    registry = tmp_path / "registry.json"
    registry.write_text(_registry_with(baseline={"mean_map_mae_ms": {"x": 1}}))
    assert main(["--registry", str(registry), "list"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("skipped: ") and str(registry) in line
    assert "Traceback" not in captured.err


# ------------------------------------------------------------------------------- bench
@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("{bad", ["cannot read profiles file"]),
        ("links:\n  - 1\n", ["links must map names to fields"]),
        ("links:\n  mine: [1]\n", ["links.mine must map field names"]),
    ],
)
def test_bench_malformed_profiles_file_is_one_line(tmp_path, capsys, text, needles) -> None:
    from epic_zoo.bench.cli import main

    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    argv = ["--profiles-file", str(path), "--out", str(out), "--no-plots", "--no-wandb"]
    assert main(argv) == 2
    _one_line_error(capsys, str(path), *needles)
    assert not out.exists() or list(out.rglob("*")) == []  # nothing written


def test_run_failure_after_composition_is_one_line(monkeypatch, tmp_path, capsys) -> None:
    """An expected failure inside the job (here: data that are missing and may not be made)."""
    monkeypatch.chdir(tmp_path)
    argv = ["recipe=epic_lite", "data.generate=false", f"data.root={tmp_path / 'no-data'}"]
    assert _run_main(monkeypatch, *argv, f"run_dir={tmp_path / 'run'}") == 2
    _one_line_error(capsys, "python -m epic_zoo.data generate")
    assert not (tmp_path / "run" / "results.json").exists()
