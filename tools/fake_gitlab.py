"""A stand-in for GitLab's REST API, on 127.0.0.1: the notes of one merge request, shaped as GitLab serves them,
and the project's merge requests: listed by state and label, created from a form as `curl --data-urlencode`
sends it.

What python-gitlab relies on is kept: the `PRIVATE-TOKEN` header (401 without the right one), offset
pagination (`page`, `per_page` capped at 100, default 20) answered with `x-page`, `x-per-page`,
`x-next-page`, `x-prev-page`, `x-total`, `x-total-pages` and a `Link` header (`rel="next"` only while
a page follows), newest first unless `sort=asc`, notes with their own ids, `POST` to create (201) and
`PUT .../notes/:id` to update, and 404 with GitLab's JSON message for anything else. `fail_next`
queues failure answers (429, 5xx) served before the real ones, each with `Retry-After: 0`, as GitLab
sends it with a 429, so a client that honours it retries at once.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

PROJECT_ID, MERGE_REQUEST_IID = "42", "7"
MERGE_REQUESTS_PATH = f"/api/v4/projects/{PROJECT_ID}/merge_requests"
NOTES_PATH = f"{MERGE_REQUESTS_PATH}/{MERGE_REQUEST_IID}/notes"
MAX_PER_PAGE = 100  # GitLab's cap on per_page
DEFAULT_PER_PAGE = 20
REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class FakeGitLab:
    """The server and what it holds: `notes` (oldest first), every request in `calls` as (method, path, token)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.notes: list[dict] = []
        self.merge_requests: list[dict] = []
        self.calls: list[tuple[str, str, str | None]] = []
        self.failures: list[int] = []
        self._next_id = 3001  # note ids are GitLab-wide, not counted per merge request
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"gitlab": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The instance's base URL, as GitLab CI's CI_SERVER_URL gives it (the API is under /api/v4)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_note(self, body: str, system: bool = False) -> dict:
        with self._lock:
            note = {"id": self._next_id, "body": body, "system": system, "noteable_type": "MergeRequest"}
            note["noteable_iid"] = int(MERGE_REQUEST_IID)
            self._next_id += 1
            self.notes.append(note)
            return note

    def fail_next(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def bodies(self) -> list[str]:
        return [note["body"] for note in self.notes]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    gitlab: FakeGitLab

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refused(self) -> bool:
        """Record the call; answer a queued failure or a bad token, and say so."""
        gitlab = self.gitlab
        gitlab.calls.append((self.command, self.path, self.headers.get("PRIVATE-TOKEN")))
        with gitlab._lock:
            status = gitlab.failures.pop(0) if gitlab.failures else None
        if status:
            self._reply(status, {"message": f"{status} {REASONS.get(status, 'Error')}"}, {"Retry-After": "0"})
            return True
        if self.headers.get("PRIVATE-TOKEN") != gitlab.token:
            self._reply(401, {"message": "401 Unauthorized"})
            return True
        return False

    def _not_found(self) -> None:
        self._reply(404, {"message": "404 Not found"})

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self._refused():
            return
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == MERGE_REQUESTS_PATH:
            return self._reply(200, self._merge_requests(query))
        if url.path != NOTES_PATH:
            return self._not_found()
        per_page = min(int(query.get("per_page", DEFAULT_PER_PAGE)), MAX_PER_PAGE)
        page = max(int(query.get("page", 1)), 1)
        notes = list(self.gitlab.notes) if query.get("sort") == "asc" else self.gitlab.notes[::-1]
        pages = max(1, -(-len(notes) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(notes)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }

        def link(number: int, rel: str) -> str:
            target = urlencode({**query, "page": number, "per_page": per_page})
            return f'<http://{self.headers["Host"]}{url.path}?{target}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < pages else []
        links += [link(page - 1, "prev")] if page > 1 else []
        headers["Link"] = ", ".join([*links, link(1, "first"), link(pages, "last")])
        self._reply(200, notes[(page - 1) * per_page : page * per_page], headers)

    def _merge_requests(self, query: dict[str, str]) -> list[dict]:
        wanted = set(filter(None, query.get("labels", "").split(",")))
        return [
            request
            for request in self.gitlab.merge_requests[::-1]
            if query.get("state", request["state"]) == request["state"] and wanted <= set(request["labels"])
        ]

    def _create_merge_request(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = {key: values[-1] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
        missing = [key for key in ("source_branch", "target_branch", "title") if not form.get(key)]
        if missing:
            return self._reply(400, {"error": f"{', '.join(missing)} is missing"})
        request = {
            **form,
            "iid": len(self.gitlab.merge_requests) + 1,
            "state": "opened",
            "labels": form.get("labels", "").split(","),
            "draft": form["title"].startswith("Draft:"),
        }
        self.gitlab.merge_requests.append(request)
        self._reply(201, request)

    def do_POST(self) -> None:  # noqa: N802
        if self._refused():
            return
        if self.path == MERGE_REQUESTS_PATH:
            return self._create_merge_request()
        if self.path != NOTES_PATH:
            return self._not_found()
        body = self._body().get("body")
        if not body:
            return self._reply(400, {"message": {"body": ["can't be blank"]}})
        self._reply(201, self.gitlab.add_note(body))

    def do_PUT(self) -> None:  # noqa: N802
        if self._refused():
            return
        parent, _, note_id = self.path.rpartition("/")
        note = next((note for note in self.gitlab.notes if str(note["id"]) == note_id), None)
        if parent != NOTES_PATH or note is None:
            return self._not_found()
        body = self._body().get("body")
        if not body:
            return self._reply(400, {"message": {"body": ["can't be blank"]}})
        note["body"] = body
        self._reply(200, note)
