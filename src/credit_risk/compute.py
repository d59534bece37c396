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
    from distributed import Client

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
CONNECT_SECONDS = 20
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
                dashboard_address=None,
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


# --- Partitioned Parquet: the processed splits, as a folder of part.<n>.parquet files that DVC tracks
def read_partitions(path: Path, columns: list[str] | None = None) -> "dd.DataFrame":
    """A processed split as a Dask frame, one partition per file, in the files' order. The local engine's
    single file reads as one partition."""
    import dask.dataframe as dd

    from .core import require

    files = sorted(require(path).glob("part.*.parquet"), key=_part_number) if path.is_dir() else [path]
    return dd.read_parquet([str(file) for file in files], columns=columns, split_row_groups=False)


def write_partitions(frame: "dd.DataFrame", path: Path) -> None:
    """Each partition to `path`/part.<n>.parquet with the local engine's own writer, then the folder replaces
    whatever `path` held (file or folder) in one rename, so a failure leaves the earlier output whole."""
    staging = path.with_name(f".{path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        frame.map_partitions(_written, str(staging), meta=(None, "int64"), align_dataframes=False).compute()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = path.with_name(f".{path.name}.previous")
    if path.exists():
        path.rename(previous)
    staging.rename(path)
    if previous.is_dir():
        shutil.rmtree(previous)
    elif previous.exists():
        previous.unlink()


def _written(partition: "pd.DataFrame", folder: str, partition_info: dict[str, Any] | None = None) -> "pd.Series":
    import pandas as pd

    from .core import write_parquet

    number = partition_info["number"] if partition_info else 0
    write_parquet(partition.reset_index(drop=True), Path(folder) / PART_NAME.format(number))
    return pd.Series([len(partition)])


def _part_number(file: Path) -> int:
    return int(file.name.split(".")[1])


def rows_per_partition(chosen: "np.ndarray", lengths: list[int]) -> list["np.ndarray"]:
    """Sorted global row positions (of the partitions one after another) as each partition's own positions."""
    import numpy as np

    offsets = np.cumsum([0, *lengths])
    bounds = np.searchsorted(chosen, offsets)
    return [chosen[bounds[i] : bounds[i + 1]] - offsets[i] for i in range(len(lengths))]
