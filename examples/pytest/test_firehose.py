"""Code that uses Amazon Data Firehose, tested against firehosed as a user would test it: the
stream is created through boto3 as against AWS, records are put, `flush` delivers what AWS
would deliver once its buffer fills, and the test reads what landed in the bucket."""
import gzip
import io
import json
import time
import unittest

import pytest

from firehosed.testing import Firehosed, FirehosedTestCase

ROLE = "arn:aws:iam::000000000000:role/firehose"


def create(firehose, name, **destination):
    """CreateDeliveryStream, then wait for ACTIVE as code written for AWS does."""
    firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
        **destination})
    for _ in range(200):
        status = firehose.describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"]["DeliveryStreamStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.01)
    raise AssertionError(f"{name} is {status}")


def put_all(firehose, name, docs):
    """PutRecordBatch in batches of 500 (AWS's limit), each record a JSON line."""
    for i in range(0, len(docs), 500):
        answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[
            {"Data": (json.dumps(d) + "\n").encode()} for d in docs[i:i + 500]])
        assert answer["FailedPutCount"] == 0


def test_gzip_objects_under_a_prefix(firehosed):
    firehose = firehosed.client()
    create(firehose, "orders", BucketARN="arn:aws:s3:::lake", Prefix="orders/",
           CompressionFormat="GZIP")
    docs = [{"order": i, "total": i * 1.5} for i in range(1000)]
    put_all(firehose, "orders", docs)

    keys = firehosed.flush("orders")

    assert len(keys) == 1 and keys[0].startswith("orders/") and keys[0].endswith(".gz")
    # The key is AWS's: prefix, UTC yyyy/MM/dd/HH/, stream-version-timestamp-uuid.
    assert keys[0].split("/")[5].startswith("orders-1-")
    objects = firehosed.objects("lake", prefix="orders/")
    lines = gzip.decompress(objects[keys[0]]).splitlines()
    assert [json.loads(x) for x in lines] == docs


@pytest.mark.firehosed(glue_tables={"sales.orders": [
    {"Name": "order", "Type": "bigint"}, {"Name": "region", "Type": "string"}]})
def test_parquet_conversion_with_a_glue_schema(firehosed):
    import pyarrow.parquet as pq

    firehose = firehosed.client()
    create(firehose, "to-parquet", BucketARN="arn:aws:s3:::lake", Prefix="parquet/",
           BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 60},
           DataFormatConversionConfiguration={
               "Enabled": True,
               "SchemaConfiguration": {"RoleARN": ROLE, "DatabaseName": "sales", "TableName": "orders"},
               "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
               "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}})
    put_all(firehose, "to-parquet", [{"order": i, "region": "eu"} for i in range(100)])

    [key] = firehosed.flush("to-parquet")

    assert key.endswith(".parquet")
    table = pq.read_table(io.BytesIO(firehosed.objects("lake")[key]))
    assert table.column("order").to_pylist() == list(range(100))
    assert set(table.column("region").to_pylist()) == {"eu"}


@pytest.mark.firehosed(lambdas={"upper-names": __file__.replace("test_firehose.py", "handlers.py:lambda_handler")})
def test_a_lambda_transform_runs_the_handler_file(firehosed):
    firehose = firehosed.client()
    create(firehose, "named", BucketARN="arn:aws:s3:::lake", ProcessingConfiguration={
        "Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [{
            "ParameterName": "LambdaArn",
            "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:upper-names"}]}]})
    put_all(firehose, "named", [{"name": "ada"}, {"name": "skipped", "skip": True}, {"name": "bob"}])

    firehosed.flush("named")

    [body] = firehosed.objects("lake").values()
    assert [json.loads(x)["name"] for x in body.splitlines()] == ["ADA", "BOB"]


def test_into_a_real_s3_server(moto_s3, bucket):
    with Firehosed(s3_endpoint_url=moto_s3) as fh:
        firehose = fh.client()
        create(firehose, "to-moto", BucketARN=f"arn:aws:s3:::{bucket}", Prefix="in-moto/")
        put_all(firehose, "to-moto", [{"n": i} for i in range(10)])
        [key] = fh.flush("to-moto")
        assert fh.objects(bucket)[key].count(b"\n") == 10


def test_streams_from_a_config_dict():
    config = {"delivery_streams": [{
        "name": "events", "source": {"direct_put": {}},
        "processing": {"append_delimiter_to_record": True},
        "destinations": [{"s3": {"bucket": "lake"}, "prefix": "events/", "compression": "GZIP",
                          "buffering": {"size_mib": 1, "interval_seconds": 60}}]}]}
    with Firehosed(config=config) as fh:
        assert fh.put("events", ['{"a": 1}', '{"a": 2}']) == 2
        fh.flush("events")
        assert list(fh.objects("lake", decompress=True).values()) == [b'{"a": 1}\n{"a": 2}\n']


def test_the_session_fixture_serves_streams_of_their_own_names(firehosed_session):
    # One daemon for the session (per xdist worker): each test names its own streams.
    firehose = firehosed_session.client()
    create(firehose, "session-orders", BucketARN="arn:aws:s3:::session-lake")
    firehose.put_record(DeliveryStreamName="session-orders", Record={"Data": b"kept\n"})
    [key] = firehosed_session.flush("session-orders")
    assert firehosed_session.objects("session-lake")[key] == b"kept\n"


class UnittestStyle(FirehosedTestCase):
    def test_put_and_flush(self):
        firehose = self.firehosed.client()
        create(firehose, "plain", BucketARN="arn:aws:s3:::lake")
        firehose.put_record(DeliveryStreamName="plain", Record={"Data": b"one\n"})
        self.assertEqual(len(self.firehosed.flush("plain")), 1)
        self.assertEqual(list(self.firehosed.objects("lake").values()), [b"one\n"])


if __name__ == "__main__":
    unittest.main()
