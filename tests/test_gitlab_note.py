"""`<project> gitlab-note`: the merge request's one report note, through python-gitlab, against a stand-in for
GitLab's API (tools/fake_gitlab.py). The command is the root instance's (the template's default rendering),
so these run no DVC and stay in `make test-fast`.
"""

import socket
import subprocess
import sys
from pathlib import Path

import gitlab
import pytest
from tools.bakery import VENV_BIN, isolated_env
from tools.fake_gitlab import MERGE_REQUEST_IID, PROJECT_ID, FakeGitLab

from credit_risk.core import PipelineError
from credit_risk.report import MARKER, gitlab_note

TOKEN = "glpat-t0k"


@pytest.fixture
def gitlab_server():
    server = FakeGitLab(token=TOKEN)
    yield server
    server.stop()


def ci_variables(url: str) -> dict[str, str]:
    return {
        "CI_SERVER_URL": url,
        "CI_PROJECT_ID": PROJECT_ID,
        "CI_MERGE_REQUEST_IID": MERGE_REQUEST_IID,
        "GITLAB_TOKEN": TOKEN,
    }


def post(tmp_path: Path, url: str, text: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`credit-risk gitlab-note --file report.md` as GitLab's merge-request job runs it; `variables` override CI's."""
    report = tmp_path / "report.md"
    report.write_text(text)
    env = {**isolated_env(tmp_path), **ci_variables(url), **variables}
    command = [str(VENV_BIN / "credit-risk"), "gitlab-note", "--file", str(report)]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)


def methods(server: FakeGitLab) -> list[str]:
    return [method for method, _, _ in server.calls]


def test_gitlab_note_is_created_once_then_updated(gitlab_server, tmp_path):
    gitlab_server.add_note("a reviewer's comment")
    first, second = f"{MARKER}\nfirst run\n", f"{MARKER}\nsecond run\n"
    assert "created the report note on merge request !7" in post(tmp_path, gitlab_server.url, first).stdout
    assert "updated the report note on merge request !7" in post(tmp_path, gitlab_server.url, second).stdout
    assert gitlab_server.bodies() == ["a reviewer's comment", second]
    assert methods(gitlab_server) == ["GET", "POST", "GET", "PUT"]
    assert {token for _, _, token in gitlab_server.calls} == {TOKEN}


def test_the_report_note_beyond_the_first_page_is_updated_not_duplicated(gitlab_server, tmp_path):
    """150 notes served 100 a page, the report's note 121st; a reply quoting the report is not it."""
    for number in range(150):
        if number == 5:
            gitlab_server.add_note(f"> {MARKER}\n> quoted by a reviewer")
        elif number == 120:
            gitlab_server.add_note(f"{MARKER}\nthe first run's report")
        else:
            gitlab_server.add_note(f"comment {number}")
    result = post(tmp_path, gitlab_server.url, f"{MARKER}\nthis run's report\n")
    assert result.returncode == 0, result.stderr
    assert "updated" in result.stdout
    bodies = gitlab_server.bodies()
    assert len(bodies) == 150 and bodies[120] == f"{MARKER}\nthis run's report\n"
    assert bodies[5] == f"> {MARKER}\n> quoted by a reviewer"
    pages = [path for method, path, _ in gitlab_server.calls if method == "GET"]
    assert len(pages) == 2 and "page=2" in pages[1], pages  # the second page came from the Link header
    assert methods(gitlab_server)[-1] == "PUT"


def test_a_429_then_a_502_are_retried_and_the_note_is_posted_once(gitlab_server, tmp_path):
    gitlab_server.fail_next(429, 502)
    result = post(tmp_path, gitlab_server.url, f"{MARKER}\nreport\n")
    assert result.returncode == 0, result.stderr
    assert methods(gitlab_server) == ["GET", "GET", "GET", "POST"]  # the list asked three times, answered the third
    assert gitlab_server.bodies() == [f"{MARKER}\nreport\n"]


@pytest.mark.parametrize(
    ("failures", "variables", "calls", "message"),
    [
        (
            [],
            {"GITLAB_TOKEN": "wrong"},
            1,
            "answered 401 (401 Unauthorized) for merge request !7: check GITLAB_TOKEN's",
        ),
        ([], {"CI_PROJECT_ID": "43"}, 1, "answered 404 (404 Not found) for merge request !7: check GITLAB_TOKEN's"),
        ([503] * 11, {}, 11, "answered 503 (503 Service Unavailable) for merge request !7\n"),
    ],
    ids=["bad-token", "project-the-token-cannot-see", "503-after-10-retries"],
)
def test_a_refused_or_failing_request_ends_in_one_line_without_traceback(
    gitlab_server, tmp_path, failures, variables, calls, message
):
    gitlab_server.fail_next(*failures)
    result = post(tmp_path, gitlab_server.url, f"{MARKER}\nreport\n", **variables)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: GitLab API {message}"), result.stderr
    assert len(gitlab_server.calls) == calls and gitlab_server.notes == []


def test_outside_gitlab_the_missing_variables_are_named(tmp_path):
    result = post(tmp_path, "", "report", CI_PROJECT_ID="", GITLAB_TOKEN="")
    assert result.returncode == 2
    assert "error: set CI_SERVER_URL, CI_PROJECT_ID, GITLAB_TOKEN: this command runs in" in result.stderr


def test_an_unreachable_gitlab_is_retried_with_back_off_then_named(monkeypatch, tmp_path):
    """In-process, so that python-gitlab's back-off between its 10 retries is recorded instead of waited."""
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in ci_variables(f"http://127.0.0.1:{port}").items():
        monkeypatch.setenv(name, value)
    waits: list[float] = []
    monkeypatch.setattr(gitlab.utils.time, "sleep", waits.append)
    report = tmp_path / "report.md"
    report.write_text(f"{MARKER}\nreport\n")
    with pytest.raises(PipelineError, match=rf"GitLab at http://127.0.0.1:{port} unreachable: .*Connection refused"):
        gitlab_note(str(report))
    assert len(waits) == 10 and waits == sorted(waits)


def test_without_python_gitlab_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    for name, value in ci_variables("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "gitlab", None)  # `import gitlab` now fails as if it were not installed
    report = tmp_path / "report.md"
    report.write_text("report")
    with pytest.raises(PipelineError, match=r"needs python-gitlab.*pip install --no-deps -r requirements-gitlab.lock"):
        gitlab_note(str(report))
