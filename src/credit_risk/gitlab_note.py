"""Create, or update in place, the one merge-request note that holds the pipeline report on GitLab.

Reads GitLab CI's predefined variables (CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID) and a
token from the masked CI/CD variable GITLAB_TOKEN (a project access token with the `api` scope).
"""

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from .errors import PipelineError
from .report import MARKER

REQUIRED = ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "GITLAB_TOKEN")


def call(method: str, url: str, token: str, payload: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"PRIVATE-TOKEN": token, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise PipelineError(f"GitLab API {method} {url} answered {error.code}: check GITLAB_TOKEN's scope") from None
    except urllib.error.URLError as error:
        raise PipelineError(f"GitLab API at {url} unreachable: {error.reason}") from None


def upsert_note(api_url: str, project_id: str, merge_request_iid: str, token: str, body: str) -> str:
    """Update the note that carries the report marker, or create it; returns what was done."""
    notes_url = f"{api_url}/projects/{project_id}/merge_requests/{merge_request_iid}/notes"
    notes = call("GET", f"{notes_url}?per_page=100&sort=asc&order_by=created_at", token)
    ours = next((note for note in notes if MARKER in note.get("body", "")), None)
    if ours:
        call("PUT", f"{notes_url}/{ours['id']}", token, {"body": body})
        return "updated"
    call("POST", notes_url, token, {"body": body})
    return "created"


def main(file: str) -> None:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        raise PipelineError(f"set {', '.join(missing)}: this command runs in a GitLab merge-request pipeline")
    env = os.environ
    done = upsert_note(
        env["CI_API_V4_URL"],
        env["CI_PROJECT_ID"],
        env["CI_MERGE_REQUEST_IID"],
        env["GITLAB_TOKEN"],
        Path(file).read_text(),
    )
    print(f"gitlab-note: {done} the report note on merge request !{env['CI_MERGE_REQUEST_IID']}")
