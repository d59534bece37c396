from pathlib import Path

import pytest
from tools.bakery import Project, bake_project
from tools.s3 import started_s3


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The default project, baked once, with `dvc repro` run and committed. Read-only: copy to change."""
    project = bake_project(tmp_path_factory.mktemp("reproduced"))
    project.dvc("repro")
    project.commit_all("Run the pipeline")
    return project


@pytest.fixture
def reproduced_copy(reproduced: Project, tmp_path: Path) -> Project:
    """A private copy of the reproduced default project, for a test that changes it."""
    return reproduced.copy(tmp_path)


@pytest.fixture
def s3():
    """An S3 server of the test's own, which it may stop and restart."""
    server = started_s3()
    yield server
    server.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs DVC on a baked project; `make test-fast` leaves these out")
