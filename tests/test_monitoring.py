"""`monitor` and `canary-decide` in baked projects, on prediction logs written as the service writes them,
with the real GTO registry: a quiet log passes, a shifted one alerts; a good canary is promoted in place, a
bad one rolled back."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from tools.bakery import Project
from tools.prediction_logs import Traffic, sqlite_url, write_log

from tests.test_registry_stages import ARTIFACT, gto_stages, new_candidate, registry_state

pytestmark = pytest.mark.slow  # runs DVC: `make test-fast` leaves it out

TARGET = "risk"


def scored_rows(project: Project, scratch: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The project's processed rows (1,000: enough requests to be judged) as sent, and as the workspace
    model scored them with `predict` (prediction, probability) beside the true label."""
    processed = project.path / "data" / "processed"
    frame = pd.concat([pd.read_parquet(processed / f"{name}.parquet") for name in ("train", "test")], ignore_index=True)
    rows = frame.drop(columns=[TARGET])
    rows.to_parquet(scratch / "rows.parquet", index=False)
    project.command("predict", "--input", str(scratch / "rows.parquet"), "--output", str(scratch / "scored.parquet"))
    scored = pd.read_parquet(scratch / "scored.parquet")
    scored["truth"] = frame[TARGET].astype(int)
    return rows, scored


def traffic(
    version: str, rows: pd.DataFrame, scored: pd.DataFrame, wrong: bool = False, again: bool = False
) -> Traffic:
    """That version's answers to the rows, every one labelled; `again` for a second batch (new request ids)."""
    predictions = scored["prediction"].astype(int)
    if wrong:  # a model that gets every row wrong
        predictions = 1 - scored["truth"]
    probabilities, truth = scored["probability"].tolist(), scored["truth"].tolist()
    return Traffic(version, rows, predictions.tolist(), probabilities, truth, first_row=len(rows) if again else 0)


def monitor_report(project: Project) -> dict:
    return json.loads((project.path / "monitoring" / "report.json").read_text())


def test_monitor_reports_a_quiet_log_and_alerts_on_shifted_inputs(reproduced_copy, tmp_path):
    project = reproduced_copy
    project.command("promote")
    rows, scored = scored_rows(project, tmp_path)
    url = sqlite_url(project.path)
    write_log(url, [traffic("v1.0.0", rows, scored)])

    quiet = project.command("monitor")
    report = monitor_report(project)
    assert report["alerted"] is False and report["alerts"] == [], quiet.stdout
    figures = report["versions"]["v1.0.0"]
    assert figures["requests"] == 1000 and figures["judged"] is True and figures["labelled_requests"] == 1000
    assert figures["error_rate"] == 0.0 and figures["evaluation_positive_rate"] == 0.79
    assert set(figures["drift"]["psi"]) == set(rows.columns) and figures["drift"]["drifted_share"] <= 0.5
    assert (project.path / "monitoring" / "report-v1.0.0.html").stat().st_size > 10_000
    first = (project.path / "monitoring" / "report.json").read_bytes()
    project.command("monitor")
    assert (project.path / "monitoring" / "report.json").read_bytes() == first  # the same log, the same bytes

    since = datetime.now(UTC).isoformat()
    shifted = rows.assign(age=rows["age"] + 30, credit_amount=rows["credit_amount"] * 4)
    write_log(url, [traffic("v1.0.0", shifted, scored, again=True)])
    alerted = project.command("monitor", "--since", since, check=False)
    assert alerted.returncode == 1, alerted.stderr
    alerts = monitor_report(project)["alerts"]
    assert "column 'age': v1.0.0 input drift PSI" in "\n".join(alerts) and "threshold 0.2" in alerts[0]
    assert all(f"ALERT {line}" in alerted.stdout for line in alerts)
    assert monitor_report(project)["versions"]["v1.0.0"]["requests"] == 1000  # the shifted ones only


def test_canary_decide_waits_then_promotes_in_place_then_rolls_a_worse_canary_back(reproduced_copy, tmp_path):
    project = reproduced_copy
    project.command("promote")
    new_candidate(project, 0.06)
    project.command("promote", "--canary")
    decision_file = project.path / "monitoring" / "canary_decision.json"

    waiting = project.command("canary-decide", "--apply")
    assert "canary-decide: wait" in waiting.stdout and "canary has 0 requests" in waiting.stdout
    assert json.loads(decision_file.read_text())["decision"] == "wait"
    assert gto_stages(project) == {"prod": "v1.0.0", "canary": "v1.1.0"}

    rows, scored = scored_rows(project, tmp_path)
    url = sqlite_url(project.path)
    write_log(url, [traffic("v1.0.0", rows, scored), traffic("v1.1.0", rows, scored)])
    promoted = project.command("canary-decide", "--apply")
    assert "canary-decide: promote" in promoted.stdout and "two-proportion z-test" in promoted.stdout
    decision = json.loads(decision_file.read_text())
    assert decision["decision"] == "promote" and decision["applied"] is True and decision["test"]["p_value"] >= 0.05
    assert gto_stages(project) == {"prod": "v1.1.0"}
    assert f"{ARTIFACT}@v1.2.0" not in registry_state(project)[0]  # no new version registered

    new_candidate(project, 0.07)
    project.command("promote", "--canary")
    assert gto_stages(project) == {"prod": "v1.1.0", "canary": "v1.2.0"}
    write_log(url, [traffic("v1.1.0", rows, scored, again=True), traffic("v1.2.0", rows, scored, wrong=True)])
    rolled = project.command("canary-decide", "--apply")
    assert "canary-decide: rollback" in rolled.stdout and "canary accuracy 0.0 is lower" in rolled.stdout
    assert gto_stages(project) == {"prod": "v1.1.0"}

    refused = project.command("canary-decide", check=False)
    assert refused.returncode == 2 and "holds the canary stage" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # a version promoted in place was registered before its production record was committed: a rollback
    # to it restores the record that names it, not the one at its tag
    project.command("promote")  # the rolled-back canary's commit, now to prod as v1.2.0
    project.command("rollback")
    baseline = json.loads((project.path / "production" / "baseline.json").read_text())
    assert baseline["version"] == "v1.1.0" and gto_stages(project) == {"prod": "v1.1.0"}
