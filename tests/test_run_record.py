"""The run record (results.json): one definition, typed reads, one-line errors, old records."""

from __future__ import annotations

import json

import pytest

from epic_zoo.run_record import (
    RECORD_VERSION,
    RunRecord,
    RunRecordError,
    read_run_record,
    write_run_record,
)


def _record() -> RunRecord:
    return RunRecord(
        recipe="epic_lite",
        dataset="flatvel-a",
        model="epic",
        seed=1,
        epochs=2,
        samples_seen=32,
        schedule={"planned_steps": 8, "steps": 8, "complete": True, "cut_short_by": None},
        metrics={"test/mae_ms": 120.5, "test/ssim": 0.8},
        baseline={"mean_map_mae_ms": 380.0, "mae_ratio_to_mean_map": 0.317, "learns": True},
        learning_curve=[{"epoch": 0, "val/mae_ms": 200.0}],
        wall_time_s=12.5,
        config={"seed": 1, "model": {"name": "epic"}},
        identity_hash="abcd1234",
    )


def test_round_trip_through_the_file(tmp_path):
    record = _record()
    path = write_run_record(tmp_path, record)
    assert path.name == "results.json" and not list(tmp_path.glob("*.tmp"))
    back = read_run_record(tmp_path)
    assert back == record and back.complete and back.record_version == RECORD_VERSION
    assert json.loads(path.read_text())["metrics"]["test/mae_ms"] == 120.5


def test_records_written_before_the_module_read_back(tmp_path):
    old = {
        k: v for k, v in _record().to_dict().items() if k not in ("identity_hash", "record_version")
    }
    old["an_unknown_future_key"] = [1, 2]
    (tmp_path / "results.json").write_text(json.dumps(old))
    back = read_run_record(tmp_path)
    assert back.record_version == 1 and back.identity_hash is None
    assert back.metrics == old["metrics"] and back.seed == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON object is expected"),
        ('{"seed": "zero"}', "field 'seed' should be an integer"),
        ('{"metrics": {"test/mae_ms": "fast"}}', "metric 'test/mae_ms' is not a number"),
        ('{"metrics": [1]}', "field 'metrics' should be a JSON object"),
        ('{"learning_curve": {"a": 1}}', "field 'learning_curve' should be a list"),
        ('{"config": "x"}', "field 'config' should be a JSON object"),
        ('{"seed": true}', "field 'seed' should be an integer"),
    ],
)
def test_damaged_records_are_one_line_naming_the_file(tmp_path, content, message):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(RunRecordError) as err:
        read_run_record(tmp_path)
    text = str(err.value)
    assert message in text and str(tmp_path) in text and "\n" not in text


def test_missing_record_says_the_run_has_not_finished(tmp_path):
    with pytest.raises(RunRecordError, match="has not finished"):
        read_run_record(tmp_path)
