import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }} import retrain
from {{ cookiecutter.package_name }}.core import PipelineError, load_params
from {{ cookiecutter.package_name }}.preprocess import read_raw_csv
from {{ cookiecutter.package_name }}.retrain import (
    count_new_rows,
    data_trigger,
    fold,
    incoming_files,
    last_training,
    monitor_trigger,
    move_folded,
    time_trigger,
)
from {{ cookiecutter.package_name }}.schema import load_schema

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INCOMING = Path("data/incoming")


def raw() -> Path:
    """The project's example data, whichever task it was made for."""
    return load_params().paths.raw


def write_incoming(name: str, rows: int, seed: int = 0) -> Path:
    """A seeded sample of the shipped raw rows, as a new labelled file would bring them (drawn with
    replacement when the example data holds fewer rows)."""
    INCOMING.mkdir(parents=True, exist_ok=True)
    path = INCOMING / name
    shipped = pd.read_csv(raw())
    shipped.sample(rows, random_state=seed, replace=rows > len(shipped)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("age_days", "fired"), [(29.99, False), (30.0, False), (30.01, True)])
def test_the_time_trigger_fires_only_when_the_training_is_older_than_the_limit(age_days, fired):
    trigger = time_trigger(NOW - timedelta(days=age_days), NOW, max_age_days=30)
    assert trigger.fired is fired and trigger.value == age_days and trigger.threshold == 30
    assert f"{age_days} days ago" in trigger.reason


def test_no_recorded_model_fires_the_time_trigger():
    trigger = time_trigger(None, NOW, max_age_days=30)
    assert trigger.fired and "no trained model" in trigger.reason


def test_the_last_training_is_when_the_current_model_md5_first_entered_dvc_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Path("models/model.joblib")

    def commit_lock(model_md5: str, other_md5: str, day: int) -> None:
        stages = {
            "train": {"outs": [{"path": str(model), "md5": model_md5}]},
            "evaluate": {"outs": [{"path": "metrics/latency.json", "md5": other_md5}]},
        }
        Path("dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": stages}))
        date = f"2026-11-{day:02d}T12:00:00+00:00"
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
        subprocess.run(["git", *identity, "commit", "-qam", f"day {day}"], check=True, env=env)

    subprocess.run(["git", "init", "--quiet"], check=True)
    Path("dvc.lock").write_text("{}")
    subprocess.run(["git", "add", "dvc.lock"], check=True)
    commit_lock("a" * 32, "1" * 32, day=1)
    commit_lock("b" * 32, "1" * 32, day=10)  # retrained
    commit_lock("b" * 32, "2" * 32, day=20)  # only evaluate's timings changed: the same model
    assert last_training(model) == datetime(2026, 11, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(("rows", "fired"), [(499, False), (500, True)])
def test_the_data_trigger_fires_at_min_new_rows_summed_over_incoming_files(project_copy, rows, fired):
    params = load_params()
    assert params.retrain.min_new_rows == 500
    write_incoming("first.csv", 300, seed=1)
    write_incoming("second.csv", rows - 300, seed=2)
    (INCOMING / "notes.txt").write_text("not a CSV: ignored")
    counted = count_new_rows(params, load_schema(params.paths.contract))
    trigger = data_trigger(counted, params.retrain.min_new_rows)
    assert trigger.fired is fired and trigger.value == rows and trigger.threshold == 500
    assert f"{rows} new labelled rows in 2 CSV files" in trigger.reason


def test_no_incoming_folder_means_no_new_rows(project_copy):
    params = load_params()
    assert count_new_rows(params, load_schema(params.paths.contract)) == {}
    assert not data_trigger({}, 500).fired


def test_an_incoming_row_that_breaks_the_contract_is_named_by_file_row_and_column(project_copy):
    params = load_params()
    schema = load_schema(params.paths.contract)
    features = {name: spec for name, spec in schema.columns.items() if name != params.data.target}
    bounded, minimum = next((name, spec.min) for name, spec in features.items() if spec.min is not None)
    labelled = next((name for name, spec in features.items() if spec.allowed and not spec.is_numeric), None)
    path = write_incoming("batch.csv", 10)
    frame = pd.read_csv(path)
    if labelled is not None:
        frame[labelled] = frame[labelled].astype(object)
        frame.loc[6, labelled] = "castle"  # data row 7
    frame.loc[8, bounded] = minimum - 6  # data row 9: below the column's minimum
    frame.to_csv(path, index=False)
    with pytest.raises(PipelineError) as error:
        count_new_rows(params, schema)
    message = str(error.value)
    assert message.startswith(f"{path} breaks the data contract")
    if labelled is not None:
        assert f"data row 7: column '{labelled}': batch.csv: allowed values" in message and "'castle'" in message
    assert f"data row 9: column '{bounded}': batch.csv: minimum" in message
    if bounded == "age" and "adult_applicant" in schema.rules:  # the credit data's age of 12: under age too
        assert "data row 9: batch.csv: rule adult_applicant" in message
    assert "nothing was folded" in message


def test_an_incoming_file_with_a_column_outside_the_contract_is_refused(project_copy):
    params = load_params()
    path = write_incoming("batch.csv", 5)
    pd.read_csv(path).assign(score=1).to_csv(path, index=False)
    with pytest.raises(PipelineError, match=r"batch.csv: columns \['score'\] are not in the data contract"):
        count_new_rows(params, load_schema(params.paths.contract))


def test_the_monitor_trigger_follows_the_latest_report_and_a_missing_one_does_not_fire(tmp_path):
    report = tmp_path / "report.json"
    missing = monitor_trigger(report, enabled=True)
    assert not missing.fired and missing.value is None and "no monitor report" in missing.reason
    report.write_text(json.dumps({"alerted": True, "alerts": ["v1.0.0: f1 0.61 < 0.75", "v1.0.0: drift in age"]}))
    alerted = monitor_trigger(report, enabled=True)
    assert alerted.fired and alerted.value is True and "f1 0.61 < 0.75; v1.0.0: drift in age" in alerted.reason
    assert not monitor_trigger(report, enabled=False).fired
    report.write_text(json.dumps({"alerted": False, "alerts": []}))
    assert not monitor_trigger(report, enabled=True).fired
    for broken in (json.dumps({"alerts": []}), '{"alerted": tr'):
        report.write_text(broken)
        with pytest.raises(PipelineError, match="no true/false 'alerted' key: re-run `monitor`"):
            monitor_trigger(report, enabled=True)


def test_retrain_check_prints_every_trigger_as_sorted_json(project_copy, monkeypatch, capsys):
    monkeypatch.setattr(retrain, "last_training", lambda model: NOW - timedelta(days=31))
    write_incoming("batch.csv", 20)
    retrain.retrain_check()
    printed = capsys.readouterr().out
    verdict = json.loads(printed)
    assert printed == json.dumps(verdict, indent=2, sort_keys=True) + "\n"
    assert verdict["fired"] == ["time"]
    assert sorted(verdict["triggers"]) == ["data", "monitor", "time"]
    assert verdict["triggers"]["data"] == {
        "fired": False,
        "value": 20,
        "threshold": 500,
        "reason": "20 new labelled rows in 1 CSV file: fewer than needed",
    }
    assert verdict["triggers"]["time"]["fired"] and verdict["triggers"]["time"]["threshold"] == 30


def test_folding_appends_the_rows_verbatim_and_moves_the_files_out_of_the_way(project_copy):
    params = load_params()
    schema = load_schema(params.paths.contract)
    shipped = raw()
    before, rows_before = shipped.read_bytes(), len(read_raw_csv(shipped, schema))
    files = [write_incoming("a.csv", 30, seed=1), write_incoming("b.csv", 20, seed=2)]
    fold(params, files)
    kept = move_folded(files, INCOMING, NOW)
    after = shipped.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 50
    assert len(read_raw_csv(shipped, schema)) == rows_before + 50
    assert kept == INCOMING / "folded" / "20261127T120000Z"
    assert sorted(path.name for path in kept.iterdir()) == ["a.csv", "b.csv"]
    assert incoming_files(INCOMING) == []  # nothing left to fold twice
    assert (INCOMING / "folded" / ".gitignore").read_text().endswith("*\n")
