"""A Dask cluster of the tests' own on 127.0.0.1, started as an operator starts one on real machines:
`dask scheduler`, then `dask worker <address>` processes, each one thread and a memory limit; stopped on the way out.

The workers run in the environment given (a baked project's, so they import its package) and each in a folder of
its own, not the project's: a stage that hands them a relative path fails here as it would on other machines.
Each worker runs under its nanny (the `dask worker` process), which restarts it if it dies; `kill_worker` and
`kill_worker_at` kill one for real (see tools/dask_faults.py).
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import cloudpickle  # type: ignore[import-untyped]  # no type information
from distributed import Client

from tools.bakery import VENV_BIN
from tools.dask_faults import TRIGGER_VARIABLE
from tools.service import free_port

START_SECONDS = 60
STOP_SECONDS = 30
FAULTS = Path(__file__).with_name("dask_faults.py")
DASK = VENV_BIN / "dask"  # the command line of the distributed package the lock pins

# The scheduler runs in the project's environment, where `tools` is not importable: this module's hooks
# (run_on_scheduler's functions) travel by value instead of by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _transition_counter(dask_scheduler) -> int:  # type: ignore[no-untyped-def]  # Client.run_on_scheduler's hook
    """How many task state transitions the scheduler has made since it started: it grows only when work runs."""
    return dask_scheduler.transition_counter


def _task_names(dask_scheduler) -> list[str]:  # type: ignore[no-untyped-def]
    """The names (prefixes) of every task the scheduler has seen, e.g. `_written` for write_partitions' writer."""
    return sorted(dask_scheduler.task_prefixes)


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen
    nannies: list[subprocess.Popen]  # `dask worker` processes: each runs and restarts one worker process
    folder: Path

    @contextmanager
    def client(self) -> Iterator[Client]:
        with Client(self.address, timeout=START_SECONDS) as client:
            yield client

    def transitions(self) -> int:
        """The scheduler's transition counter: compare it before and after a stage to see the stage ran here."""
        with self.client() as client:
            return client.run_on_scheduler(_transition_counter)

    def task_names(self) -> list[str]:
        with self.client() as client:
            return client.run_on_scheduler(_task_names)

    def worker_pids(self) -> dict[str, int]:
        """Each worker's name (`worker-<n>`) and the pid of its process (not its nanny's)."""
        with self.client() as client:
            pids = client.run(os.getpid)
            names = {address: info["name"] for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}
        return dict(sorted((names[address], pid) for address, pid in pids.items()))

    def kill_worker(self, name: str) -> None:
        """SIGKILL one worker's process, as the OOM killer would, and wait until its nanny has started a new one."""
        pid = self.worker_pids()[name]
        os.kill(pid, signal.SIGKILL)
        self.wait_for_workers(dead_pid=pid)

    def kill_worker_at(self, task_name: str) -> Path:
        """Arm the fault: the first worker to start a task named `task_name` kills itself. Returns the trigger
        file, which is gone (renamed `<name>.taken-by-<pid>`) once a worker took it."""
        trigger = self.trigger
        trigger.write_text(task_name)
        return trigger

    @property
    def trigger(self) -> Path:
        return self.folder / "kill-trigger"

    def fired(self) -> bool:
        """Whether an armed fault killed a worker."""
        return any(self.folder.glob(f"{self.trigger.name}.taken-by-*"))

    def disarm(self) -> None:
        self.trigger.unlink(missing_ok=True)
        for taken in self.folder.glob(f"{self.trigger.name}.taken-by-*"):
            taken.unlink()

    def wait_for_workers(self, dead_pid: int | None = None) -> None:
        """Until every nanny's worker is connected (after a kill: a new process, not the dead one)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                pids = self.worker_pids()
            except OSError:  # the scheduler is still starting
                pids = {}
            if len(pids) == len(self.nannies) and dead_pid not in pids.values():
                return
            time.sleep(0.2)
        raise AssertionError(f"the Dask workers did not all connect within {START_SECONDS} s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in sorted(self.folder.glob("*.log")))


@contextmanager
def running_dask_cluster(
    env: dict[str, str], folder: Path, workers: int = 2, memory_limit: str = "2GB"
) -> Iterator[DaskCluster]:
    """A scheduler and `workers` workers on 127.0.0.1 (one thread each, `memory_limit` each), all connected."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    worker_env = {**env, TRIGGER_VARIABLE: str(folder / "kill-trigger")}
    scheduler = _started(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env,
        folder,
        "scheduler",
    )
    nannies: list[subprocess.Popen] = []
    cluster = DaskCluster(address, scheduler, nannies, folder)
    try:
        for number in range(workers):
            name = f"worker-{number}"
            (folder / name).mkdir(exist_ok=True)
            command = [str(DASK), "worker", address, "--name", name, "--nthreads", "1", "--memory-limit", memory_limit]
            command += ["--no-dashboard", "--local-directory", str(folder / name), "--preload", str(FAULTS)]
            nannies.append(_started(command, worker_env, folder / name, name, log_folder=folder))
        cluster.wait_for_workers()
        yield cluster
    finally:
        for process in [*nannies, scheduler]:
            _stop(process)


def _started(
    command: list[str], env: dict[str, str], cwd: Path, name: str, log_folder: Path | None = None
) -> subprocess.Popen:
    """A process in a session of its own (so stopping it reaches its children), its output in <name>.log."""
    with ((log_folder or cwd) / f"{name}.log").open("w") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as an operator stops a Dask process (a nanny closes its worker first); SIGKILL to the whole
    session if it has not ended within STOP_SECONDS."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    with suppress(ProcessLookupError):  # leftovers of its session, e.g. a worker whose nanny ended
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
