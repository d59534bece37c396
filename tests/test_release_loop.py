"""The release loop end to end, in a baked project with real git, DVC and GTO and the real service on 127.0.0.1.

v1.0.0 goes to prod; a candidate trained on shuffled labels goes to canary; the test split is replayed through the
service with keys and feedback; `monitor` reports both versions and alerts on the canary; `canary-decide` rolls it
back. A sound candidate then takes its place, is promoted by `canary-decide --apply`, and `rollback` restores v1.0.0
byte for byte, which the service serves after a reload. Shifted inputs fire the drift trigger, new rows the data one.
"""

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import numpy as np
import pandas as pd
import pytest
from tools.bakery import Project
from tools.service import Service, as_request_rows, running_service

pytestmark = pytest.mark.slow

TOKEN = "release-loop-token"
AUTHORIZED = {"authorization": f"Bearer {TOKEN}"}
SHARE = 0.5  # half the keys reach the canary: about 500 labelled requests on each side
STICKY_CHECKS = 100  # keys sent again, to see them reach the same model
PRODUCTION = ("production/baseline.json", "production/reference.parquet")


def held_out_rows(project: Project) -> pd.DataFrame:
    return pd.read_parquet(project.path / "data" / "processed" / "test.parquet")


def every_row(project: Project) -> pd.DataFrame:
    """The processed train and test rows: traffic both models have partly seen in training, alike."""
    processed = project.path / "data" / "processed"
    return pd.concat([pd.read_parquet(processed / f"{split}.parquet") for split in ("train", "test")])


def shuffle_labels(project: Project) -> None:
    """The raw data's target, permuted (seeded): a model trained on it has learnt nothing."""
    raw = project.path / "data" / "raw" / "german_credit.csv"
    frame = pd.read_csv(raw)
    frame["risk"] = np.random.default_rng(0).permutation(frame["risk"].to_numpy())
    frame.to_csv(raw, index=False)


def canary(project: Project, message: str) -> None:
    project.dvc("repro")
    project.commit_all(message)
    project.command("promote", "--canary")


def replay(service: Service, frame: pd.DataFrame, prefix: str, feedback: bool = True) -> dict[str, str]:
    """Each row under its own key, then (with `feedback`) its true label; the version that answered each key."""
    answered = {}
    rows, labels = as_request_rows(frame), frame["risk"].tolist()
    with httpx.Client(base_url=service.url) as client:
        for number, (row, label) in enumerate(zip(rows, labels, strict=True)):
            key = f"{prefix}-{number}"
            answer = client.post("/predict", json={"rows": [row], "key": key}).json()
            answered[key] = answer["model_version"]
            if feedback:
                sent = {"request_id": answer["request_id"], "label": int(label)}
                assert client.post("/feedback", json=sent, headers=AUTHORIZED).status_code == 200
    return answered


def canary_share(answered: dict[str, str], version: str) -> float:
    return sum(answered_by == version for answered_by in answered.values()) / len(answered)


def decision(project: Project, *apply: str) -> dict:
    project.command("canary-decide", *apply)
    return json.loads((project.path / "monitoring" / "canary_decision.json").read_text())


def stages(service: Service) -> dict[str, str | None]:
    return httpx.get(f"{service.url}/health").json()["stages"]


def reload(service: Service) -> dict[str, str | None]:
    answer = httpx.post(f"{service.url}/admin/reload", headers=AUTHORIZED)
    assert answer.status_code == 200, answer.text
    return answer.json()["stages"]


def test_the_admin_endpoints_are_off_without_a_token_and_refuse_a_wrong_one(reproduced_copy, tmp_path):
    project: Project = reproduced_copy
    row = as_request_rows(held_out_rows(project).head(1))[0]
    with running_service(project, log=tmp_path / "off.log") as service:
        answer = httpx.post(f"{service.url}/predict", json={"rows": [row]})
        assert answer.status_code == 200
        feedback = {"request_id": answer.json()["request_id"], "label": 1}
        for path, body in (("/feedback", feedback), ("/admin/reload", None)):
            refused = httpx.post(f"{service.url}{path}", json=body, headers=AUTHORIZED)
            assert refused.status_code == 403 and "SERVE_API_TOKEN" in refused.text, (path, refused.text)
    with running_service(project, log=tmp_path / "on.log", env={"SERVE_API_TOKEN": TOKEN}) as service:
        answer = httpx.post(f"{service.url}/predict", json={"rows": [row]})
        feedback = {"request_id": answer.json()["request_id"], "label": 1}
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            refused = httpx.post(f"{service.url}/feedback", json=feedback, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", headers
        assert httpx.post(f"{service.url}/feedback", json=feedback, headers=AUTHORIZED).status_code == 200
    labelled = project.run("python", "-c", LABELLED_ROWS).stdout.split()
    assert labelled == ["1"]  # the refused attempts recorded nothing


LABELLED_ROWS = (
    "from credit_risk.core import load_params; from credit_risk.prediction_log import log_url, read_log; "
    "print(read_log(log_url(load_params().serve)).predictions['label'].notna().sum())"
)


def test_canary_rollback_then_promotion_then_rollback_to_v1_served_after_reload(reproduced_copy, tmp_path):
    project: Project = reproduced_copy
    project.set_param("serve.canary_share", SHARE)
    for count in ("monitor.min_requests", "monitor.min_labelled", "retrain.min_new_rows"):
        project.set_param(count, 50)
    project.commit_all("Release settings for the test")
    project.command("promote")
    v1 = {name: (project.path / name).read_bytes() for name in PRODUCTION}
    v1_probabilities = json.loads((project.path / "metrics" / "sample_predictions.json").read_text())["probabilities"]
    frame, traffic = held_out_rows(project), every_row(project)

    # a candidate that learnt nothing, let through a lowered gate, goes to canary
    shuffle_labels(project)
    lowered = ("performance.accuracy_min", "performance.f1_min", "performance.roc_auc_min", "comparison.min_ratio")
    for threshold in lowered:
        project.set_param(f"gate.{threshold}", 0.3)
    project.set_param("gate.fairness.max_gap", 1.0)
    canary(project, "A candidate trained on shuffled labels")

    env = {"SERVE_API_TOKEN": TOKEN}
    with running_service(project, log=tmp_path / "serve.log", env=env) as service:
        assert stages(service) == {"prod": "v1.0.0", "canary": "v1.1.0"}
        answered = replay(service, traffic, "first")
        again = replay(service, traffic.head(STICKY_CHECKS), "first", feedback=False)
        assert again == dict(list(answered.items())[:STICKY_CHECKS])  # sticky: each key reached the same model
        share = canary_share(answered, "v1.1.0")
        assert abs(share - SHARE) <= 4 * (SHARE * (1 - SHARE) / len(answered)) ** 0.5, share

        monitored = project.command("monitor", check=False)
        assert monitored.returncode == 1, monitored.stdout + monitored.stderr
        report = json.loads((project.path / "monitoring" / "report.json").read_text())
        assert set(report["versions"]) == {"v1.0.0", "v1.1.0"}
        assert any(alert.startswith("v1.1.0 accuracy") for alert in report["alerts"]), report["alerts"]
        assert not any(alert.startswith("v1.0.0 accuracy") for alert in report["alerts"]), report["alerts"]

        rolled_back = decision(project, "--apply")
        assert rolled_back["decision"] == "rollback" and rolled_back["applied"], rolled_back
        assert rolled_back["canary"]["version"] == "v1.1.0" and rolled_back["test"]["p_value"] < 0.05
        service.process.send_signal(signal.SIGHUP)  # reload as an operator would, without the token
        wait_for_stages(service, {"prod": "v1.0.0", "canary": None})

        # a sound candidate, back on the true labels and the usual gate, takes the canary stage
        project.git("checkout", "credit-risk-model@v1.0.0", "--", "params.yaml", "data/raw/german_credit.csv")
        project.set_param("train.hist_gradient_boosting.learning_rate", 0.08)
        canary(project, "A sound candidate")
        assert reload(service) == {"prod": "v1.0.0", "canary": "v1.2.0"}
        since = datetime.now(UTC)
        replay(service, traffic, "second")
        promoted = decision(project, "--apply")
        assert promoted["decision"] == "promote" and promoted["applied"], promoted
        assert promoted["test"]["p_value"] >= 0.05
        assert reload(service) == {"prod": "v1.2.0", "canary": None}

        project.command("rollback")
        assert {name: (project.path / name).read_bytes() for name in PRODUCTION} == v1
        reloaded = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as other_client:
            answers = other_client.submit(keep_predicting, service, as_request_rows(frame.head(1))[0], reloaded)
            assert reload(service) == {"prod": "v1.0.0", "canary": None}
            reloaded.set()
        statuses, versions = zip(*answers.result(), strict=True)
        assert set(statuses) == {200}  # requests kept being answered through the swap
        assert versions[0] == "v1.2.0" and versions[-1] == "v1.0.0", versions
        served = httpx.post(f"{service.url}/predict", json={"rows": as_request_rows(frame.head(20))}).json()
        assert [prediction["probability"] for prediction in served["predictions"]] == v1_probabilities

        # inputs from another population: monitor alerts on drift, and the drift trigger fires
        shifted = frame.assign(age=100, duration=frame["duration"].max())  # the 200 test rows
        replay(service, shifted, "shifted")
    drifted = project.command("monitor", "--since", since.isoformat(), check=False)
    assert drifted.returncode == 1 and "v1.0.0 input drift PSI" in drifted.stdout, drifted.stdout
    assert "monitor" in retrain_check(project)["fired"]

    incoming = project.path / "data" / "incoming"
    incoming.mkdir(exist_ok=True)
    pd.read_csv(project.path / "data" / "raw" / "german_credit.csv").head(50).to_csv(incoming / "new.csv", index=False)
    assert "data" in retrain_check(project)["fired"]


def keep_predicting(service: Service, row: dict, stop: threading.Event) -> list[tuple[int, str]]:
    """(status, version) of predictions sent one after another until `stop` is set, then one more."""
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=service.url) as client:
        while not answers or not stop.is_set():
            answers.append(client.post("/predict", json={"rows": [row]}))
        answers.append(client.post("/predict", json={"rows": [row]}))
    return [(answer.status_code, answer.json().get("model_version", "")) for answer in answers]


def wait_for_stages(service: Service, expected: dict[str, str | None]) -> None:
    """SIGHUP reloads in the background: ask /health until it reports the new release, for a minute at most."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if stages(service) == expected:
            return
    raise AssertionError(f"the service still serves {stages(service)}, not {expected}:\n{service.output()}")


def retrain_check(project: Project) -> dict:
    return json.loads(project.command("retrain-check").stdout)
