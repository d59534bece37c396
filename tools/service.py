"""A baked project's model service, started for real on 127.0.0.1 and stopped as an operator would."""

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from tools.bakery import Project

START_SECONDS = 90
PORT = "{port}"  # in a server's command: where the free port goes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Service:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """SIGTERM, as a container runtime sends it; the exit status once the server has shut down."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@contextmanager
def running_service(project: Project, *args: str, log: Path, env: dict[str, str] | None = None) -> Iterator[Service]:
    """`<slug> serve` on a free port, once /health answers; stopped on the way out."""
    command = [project.slug, "serve", "--host", "127.0.0.1", "--port", PORT, *args]
    with running_server(command, cwd=project.path, env={**project.env, **(env or {})}, log=log) as service:
        yield service


@contextmanager
def running_server(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[Service]:
    """Any HTTP server answering /health on 127.0.0.1, its `PORT` argument replaced by a free port."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(port) if part == PORT else part for part in command],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    service = Service(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_healthy(service)
        yield service
    finally:
        service.stop()


def wait_until_healthy(service: Service) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited {service.process.returncode}:\n{service.output()}")
        try:
            if httpx.get(f"{service.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling interval while the server starts, not a timing assumption
    raise AssertionError(f"the service did not answer /health within {START_SECONDS} s:\n{service.output()}")


def as_request_rows(frame: pd.DataFrame, target: str = "risk") -> list[dict]:
    """Rows as a client sends them: JSON values, null for missing, whole numbers as integers."""
    # pandas-stubs 2.3 refuses None as `other`; pandas puts it in object columns, as JSON's null
    records = frame.drop(columns=[target]).astype(object).where(frame.notna(), None).to_dict("records")  # type: ignore[call-overload]
    return [
        {key: int(value) if isinstance(value, float) and value.is_integer() else value for key, value in row.items()}
        for row in records
    ]
