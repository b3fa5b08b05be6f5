"""Shared fixtures of the example suite: a moto S3 server, for the tests that deliver into a
real S3 server instead of the fixture's folder."""
import boto3
import pytest


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 on a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_s3, request):
    """A fresh bucket in the moto server, named after the test."""
    name = request.node.name.replace("_", "-")[:40].lower()
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name
