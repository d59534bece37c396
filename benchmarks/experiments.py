"""Remote and experiment figures for the default project on its sample data.

    python -m benchmarks.experiments

Prints: `dvc push --run-cache` and `dvc pull` (fresh clone) wall time and bytes against moto's S3
server on 127.0.0.1, then the wall time of a 4-run experiment queue at `-j 2` against the same four
runs one after another. Figures, not tests.
"""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]  # no type information; root-only (tests and benchmarks)
from moto.server import ThreadedMotoServer
from tools.bakery import bake_project, make_project

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
QUEUED_LEAVES = [4, 5, 6, 10]  # train.hist_gradient_boosting.max_leaf_nodes of each run
SEQUENTIAL_LEAVES = [8, 9, 11, 12]  # other values, so no run is a cache hit


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bucket_bytes(client: Any, bucket: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(item["Size"] for page in pages for item in page.get("Contents", []))


def folder_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    client = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    client.create_bucket(Bucket="bench")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            project = bake_project(root / "origin", dvc_remote="s3://bench/store", dvc_remote_endpoint_url=url)
            project.env.update(CREDENTIALS)
            project.dvc("repro")
            project.commit_all("Run")
            push = timed(lambda: project.dvc("push", "--run-cache"))
            pushed = bucket_bytes(client, "bench")
            (root / "clone").mkdir()
            project.git("clone", "--quiet", str(project.path), str(root / "clone" / project.slug))
            fresh = make_project(root / "clone" / project.slug, root / "clone")
            fresh.env.update(CREDENTIALS)
            pull = timed(lambda: fresh.dvc("pull"))
            pulled = folder_bytes(fresh.path / ".dvc" / "cache")

            def queue_run():
                for leaves in QUEUED_LEAVES:
                    project.dvc("exp", "run", "--queue", "-S", f"train.hist_gradient_boosting.max_leaf_nodes={leaves}")
                project.run_experiment_queue(tasks=len(QUEUED_LEAVES), jobs=2, timeout_seconds=1800)

            queued = timed(queue_run)
            sequential = timed(
                lambda: [
                    project.dvc("exp", "run", "-S", f"train.hist_gradient_boosting.max_leaf_nodes={leaves}")
                    for leaves in SEQUENTIAL_LEAVES
                ]
            )
    finally:
        server.stop()
    print(f"{'dvc push --run-cache (sample project)':<44} {push:6.2f} s  {pushed / 1e6:6.2f} MB")
    print(f"{'dvc pull, fresh clone':<44} {pull:6.2f} s  {pulled / 1e6:6.2f} MB")
    print(f"{'4 experiments queued, dvc queue start -j 2':<44} {queued:6.2f} s")
    print(f"{'4 experiments one after another':<44} {sequential:6.2f} s")
    print(f"{'queue -j 2 / sequential':<44} {queued / sequential:6.2f} x")


if __name__ == "__main__":
    main()
