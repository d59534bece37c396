"""Loaded into each test worker by `dask worker --preload <this file>`: a fault that a test arms by writing a file.

While the file named by $DASK_TEST_KILL_TRIGGER holds a task name (e.g. `_written`, the partition writer), the
first worker to start a task of that name takes the file and SIGKILLs itself, as the kernel's OOM killer would
end it; its nanny then starts a fresh worker. Taking the file is an atomic rename, so exactly one worker dies,
once, however many run that task.

This file is copied into each worker's folder and imported there by path, so it imports nothing of the
template's own (`tools` is not importable on a worker).
"""

import os
import signal
from pathlib import Path
from typing import Any

from dask.utils import key_split
from distributed import Worker, WorkerPlugin

TRIGGER_VARIABLE = "DASK_TEST_KILL_TRIGGER"


class KillAtTask(WorkerPlugin):
    """SIGKILL this worker's process as it starts the task named in the trigger file, if the file is there."""

    name = "kill-at-task"

    def __init__(self, trigger: Path) -> None:
        self.trigger = trigger

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or not self.trigger.exists():
            return
        try:
            armed_for = self.trigger.read_text().strip()
            if key_split(key) != armed_for:
                return
            self.trigger.rename(self.trigger.with_name(f"{self.trigger.name}.taken-by-{os.getpid()}"))
        except FileNotFoundError:  # another worker took it first
            return
        os.kill(os.getpid(), signal.SIGKILL)


async def dask_setup(worker: Worker) -> None:
    trigger = os.environ.get(TRIGGER_VARIABLE)
    if trigger:
        await worker.plugin_add(KillAtTask(Path(trigger)))
