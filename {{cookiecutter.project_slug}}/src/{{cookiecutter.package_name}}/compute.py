"""Where the stages run: `compute.engine: local` in this process with pandas, `dask` on a Dask cluster.

The stages keep one implementation of each check and metric: pure functions over a frame's columns or one
partition of it, plus aggregations that merge the partitions' results (see DESIGN.md). The local engine
calls them on the whole frame as one partition; the Dask engine on each partition, on the workers.

The cluster is the one at `compute.scheduler`, or at DASK_SCHEDULER_ADDRESS when it is set (a CI job or a
shell can point a project at its cluster without editing params.yaml). With neither, a LocalCluster of
`compute.local_workers` processes starts on 127.0.0.1 for the stage and stops after it. Dask is imported
only here and only by the Dask engine, so the local engine starts as fast as before.

The workers run this package's functions, so they need the project installed (as `pip install .` does),
with the same versions of the libraries the lock pins; `dask_client` checks both before any work.
"""

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import Compute, PipelineError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    from distributed import Client, Future

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
CONNECT_SECONDS = 20
WATCH_SECONDS = 1  # how often gathered_from checks that the workers its tasks are pinned to are still there
PART_NAME = "part.{}.parquet"


def scheduler_address(settings: Compute) -> str:
    """The cluster to use: DASK_SCHEDULER_ADDRESS when set, else compute.scheduler; blank: a LocalCluster."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or settings.scheduler.strip()


@contextmanager
def dask_client(settings: Compute) -> Iterator["Client"]:
    """A client of the configured cluster (or of a LocalCluster started for this stage), checked to be able to
    run the project's code; a worker lost beyond Dask's retries becomes a PipelineError that says so."""
    from distributed import Client, KilledWorker, LocalCluster

    address = scheduler_address(settings)
    with _cluster_errors(address):
        if address:
            client = _connected(address)
            cluster = None
        else:
            cluster = LocalCluster(
                n_workers=settings.local_workers,
                threads_per_worker=1,
                memory_limit=settings.worker_memory,
                host="127.0.0.1",
                dashboard_address=":0",  # a free port: a second cluster on the machine must not warn about 8787
                processes=True,
            )
            client = Client(cluster)
    try:
        _refuse_unfit_workers(client, address or "the local cluster")
        try:
            yield client
        except KilledWorker as error:
            raise PipelineError(
                f"Dask workers died while running the task {error.task!r}, {error.allowed_failures + 1} times "
                "(most often out of memory): raise their memory limit (compute.worker_memory, or the cluster's "
                "own), or lower compute.partition_size so each task holds less"
            ) from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _connected(address: str) -> "Client":
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        origin = f"${ADDRESS_VARIABLE}" if os.environ.get(ADDRESS_VARIABLE, "").strip() else "compute.scheduler"
        raise PipelineError(
            f"{origin} is {address}, but no Dask scheduler answered there within {CONNECT_SECONDS} s ({error}): "
            "start one (`dask scheduler`, then `dask worker <address>` on each machine), fix the address, or leave "
            "it blank for a local cluster"
        ) from None


@contextmanager
def _cluster_errors(address: str) -> Iterator[None]:
    try:
        yield
    except ValueError as error:  # e.g. a malformed address or memory size
        raise PipelineError(f"cannot start or reach the Dask cluster {address or '(local)'}: {error}") from None


def _refuse_unfit_workers(client: "Client", where: str) -> None:
    """Workers that cannot import this package, or whose libraries differ from the client's, would fail
    mid-stage with an unpickling error; say so now, with the fix."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    try:
        found = client.run(importlib.util.find_spec, __package__)
    except Exception as error:
        raise PipelineError(f"the Dask workers of {where} cannot run the project's code ({error})") from None
    missing = sorted(worker for worker, spec in found.items() if spec is None)
    if missing:
        raise PipelineError(
            f"the Dask workers {missing} of {where} cannot import '{__package__}': install the project on them "
            "(`pip install .` in the same environment as the lock's dependencies)"
        )
    try:
        client.get_versions(check=True)
    except ValueError as error:
        raise PipelineError(
            f"the Dask workers of {where} run other library versions than this client: {error}"
        ) from None


# --- Tasks pinned to workers (`workers=[...]`, `allow_other_workers=False`), e.g. LightGBM's machines
def gathered_from(client: "Client", futures: list["Future"], workers: list[str], what: str) -> list[Any]:
    """The results of tasks pinned to `workers`, or a PipelineError as soon as one of those workers leaves
    (see `finished_on`)."""
    finished_on(client, futures, workers, what)
    return client.gather(futures)


def finished_on(client: "Client", futures: list["Future"], workers: list[str], what: str) -> None:
    """Wait for tasks pinned to `workers`; a PipelineError as soon as one of those workers leaves.

    Dask reruns a lost task elsewhere, but a pinned one only where it may run: on a worker that is gone, so it
    would wait forever, and the other workers' LightGBM would wait for its machine until its network time-out
    (hours). So the workers are watched while the tasks run; when one leaves (killed, most often out of memory),
    the tasks are cancelled and the workers left are restarted (by their nannies), freeing any thread still
    blocked on the lost one.
    """
    from distributed import wait

    while True:
        try:
            wait(futures, timeout=WATCH_SECONDS)
            return
        except TimeoutError:
            present = set(client.scheduler_info(n_workers=-1)["workers"])
            lost = sorted(set(workers) - present)
            if lost:
                client.cancel(futures)
                client.restart_workers(sorted(set(workers) & present), raise_for_error=False)
                raise PipelineError(
                    f"the Dask worker {', '.join(lost)} left the cluster while {what} (most often killed out of "
                    "memory): run the stage again; if it recurs, raise the workers' memory limit "
                    "(compute.worker_memory, or the cluster's own) or lower compute.partition_size"
                ) from None


# --- Partitioned Parquet: the processed splits, as a folder of part.<n>.parquet files that DVC tracks
def read_partitions(path: Path, columns: list[str] | None = None) -> "dd.DataFrame":
    """A processed split as a Dask frame, one partition per file, in the files' order. The local engine's
    single file reads as one partition."""
    import dask.dataframe as dd

    from .core import require

    files = sorted(require(path).glob("part.*.parquet"), key=_part_number) if path.is_dir() else [path]
    # absolute: the workers may run in another folder than this process
    return dd.read_parquet([str(file.resolve()) for file in files], columns=columns, split_row_groups=False)


@contextmanager
def replaced_by_folders(*paths: Path) -> Iterator[list[Path]]:
    """A staging folder for each of `paths`, for the block to fill with part.<n>.parquet files (`write_part`). When
    the block ends without error each folder replaces whatever its path held (file or folder) by a rename; when it
    fails they are removed, so a failure leaves every earlier output whole. Absolute: the workers may run in
    another folder than this process."""
    stagings = [path.with_name(f".{path.name}.partial").resolve() for path in paths]
    for staging in stagings:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    try:
        yield stagings
    except BaseException:
        for staging in stagings:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    for staging, path in zip(stagings, paths, strict=True):
        previous = path.with_name(f".{path.name}.previous")
        if path.exists():
            path.rename(previous)
        staging.rename(path)
        if previous.is_dir():
            shutil.rmtree(previous)
        elif previous.exists():
            previous.unlink()


def write_part(partition: "pd.DataFrame", folder: Path, number: int) -> None:
    """One partition as `folder`/part.<number>.parquet, with the local engine's own writer (runs on a worker)."""
    from .core import write_parquet

    write_parquet(partition.reset_index(drop=True), folder / PART_NAME.format(number))


def _part_number(file: Path) -> int:
    return int(file.name.split(".")[1])


def rows_per_partition(chosen: "np.ndarray", lengths: list[int]) -> list["np.ndarray"]:
    """Sorted global row positions (of the partitions one after another) as each partition's own positions."""
    import numpy as np

    offsets = np.cumsum([0, *lengths])
    bounds = np.searchsorted(chosen, offsets)
    return [chosen[bounds[i] : bounds[i + 1]] - offsets[i] for i in range(len(lengths))]


# --- Rows by position: the seeded samples (core.sample_positions over the split's row count) of the Dask engine
def rows_at_positions(frame: "dd.DataFrame", lengths: list[int], positions: "np.ndarray") -> "pd.DataFrame":
    """The rows at these sorted positions of the whole split (partitions in order, of these `lengths`), each picked
    on the cluster by the partition holding it, gathered here with their positions as the index."""
    import dask
    import pandas as pd

    picks = [
        dask.delayed(_picked)(part, own)
        for part, own in zip(frame.to_delayed(), rows_per_partition(positions, lengths), strict=True)
        if len(own)
    ]
    if not picks:
        return frame._meta
    rows = pd.concat(dask.compute(*picks), ignore_index=True)  # the partitions share their categories (preprocess)
    rows.index = pd.Index(positions)
    return rows


def _picked(partition: "pd.DataFrame", positions: "np.ndarray") -> "pd.DataFrame":
    return partition.iloc[positions]
