"""An S3-compatible store for DVC remotes: moto's server on 127.0.0.1, started and stopped by the tests."""

import boto3  # type: ignore[import-untyped]  # no type information; root-only (tests and benchmarks)
from moto.server import ThreadedMotoServer

BUCKET = "pipeline-store"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


class S3Server:
    """moto's S3 server; restartable on the same port, as an outage and its end."""

    def __init__(self) -> None:
        self.port = 0
        self.server: ThreadedMotoServer | None = None

    def start(self) -> str:
        self.server = server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        return self.url

    def stop(self) -> None:
        assert self.server is not None, "stop() before start()"
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def started_s3() -> S3Server:
    """A running server with the bucket the tests' remotes use."""
    server = S3Server()
    server.start()
    credentials = {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", **credentials).create_bucket(Bucket=BUCKET)
    return server
