"""A PostgreSQL server of the tests' own on 127.0.0.1: `initdb` and `pg_ctl` from the machine's packages.

`initdb` refuses to run as root, and CI runs as root: then the server runs as the `postgres` user, in a
folder it owns.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.service import free_port

USER = "app"
MISSING = "no PostgreSQL server binaries (initdb, pg_ctl) on PATH: install PostgreSQL 15 to run this test"


@dataclass(frozen=True)
class Postgres:
    port: int

    @property
    def url(self) -> str:
        """A SQLAlchemy URL with no password: the server trusts local connections."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"


def available() -> bool:
    return all(shutil.which(tool) for tool in ("initdb", "pg_ctl"))


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A fresh cluster, started on a free port and stopped (fast) on the way out, its folder removed."""
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = [*as_owner, "pg_ctl", "-D", str(data)]
    try:
        subprocess.run(
            [*as_owner, "initdb", "-D", str(data), "-A", "trust", "-U", USER], check=True, capture_output=True
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*run, "-o", options, "-l", str(folder / "log"), "-w", "start"], check=True, capture_output=True)
        yield Postgres(port)
    finally:
        subprocess.run([*run, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
