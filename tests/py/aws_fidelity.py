"""The control-plane scenario a test suite written against AWS runs, checked against AWS's
documented behaviour, for any Firehose endpoint (firehosed, moto's Firehose, LocalStack).

usage: aws_fidelity.py ENDPOINT BUCKET [LAMBDA_FUNCTION_NAME]

Prints JSON: {"checks": {name: {"ok": bool, "expected": ..., "got": ...}},
"model_violations": [...]} where every response body of every call is checked against the
output shape of botocore's service model (the pinned botocore: members the model lacks,
required members missing, wrong types, lengths, ranges, enum values).

Each check names the behaviour and where AWS documents it:
- API reference, CreateDeliveryStream / DescribeDeliveryStream / UpdateDestination /
  StartDeliveryStreamEncryption / TagDeliveryStream:
  https://docs.aws.amazon.com/firehose/latest/APIReference/
- Common errors (ValidationException and its message):
  https://docs.aws.amazon.com/firehose/latest/APIReference/CommonErrors.html
"""
import json
import re
import sys
import time

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, bucket = sys.argv[1], sys.argv[2]
function = sys.argv[3] if len(sys.argv) > 3 else "echo-event"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose-delivery"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose-lambda"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
BUCKET_ARN = "arn:aws:s3:::" + bucket
LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"

# Server-side checks only: botocore's own parameter validation would refuse some requests
# before they are sent.
fh = boto3.client(
    "firehose", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="test", aws_secret_access_key="test",
    config=Config(parameter_validation=False, retries={"max_attempts": 1}),
)
service = botocore.session.get_session().get_service_model("firehose")
violations = []


def check_shape(shape, value, path):
    """Appends to `violations` what in `value` the model's `shape` does not allow."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            violations.append(f"{path}: not a structure")
            return
        for name in value:
            if name not in shape.members:
                violations.append(f"{path}.{name}: not a member of {shape.name}")
        for name in shape.required_members:
            if value.get(name) is None:
                violations.append(f"{path}.{name}: required by {shape.name}, missing")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                check_shape(member, value[name], f"{path}.{name}")
        return
    meta = shape.metadata
    if t == "list":
        if not isinstance(value, list):
            violations.append(f"{path}: not a list")
            return
        length(meta, len(value), path)
        for i, item in enumerate(value):
            check_shape(shape.member, item, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            violations.append(f"{path}: not a map")
            return
        for k, item in value.items():
            check_shape(shape.key, k, f"{path}.<key>")
            check_shape(shape.value, item, f"{path}.{k}")
    elif t == "string":
        if not isinstance(value, str):
            violations.append(f"{path}: {value!r} is not a string")
            return
        length(meta, len(value), path)
        if "enum" in shape.metadata and value not in shape.metadata["enum"]:
            violations.append(f"{path}: {value!r} is not one of {shape.metadata['enum']}")
        pattern = meta.get("pattern")
        # Python's re has no \p{...}; those patterns are left to the server's own check.
        if pattern and "\\p{" not in pattern and not re.fullmatch(pattern, value):
            violations.append(f"{path}: {value!r} does not match {pattern}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not an integer")
            return
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            violations.append(f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}")
    elif t == "boolean":
        if not isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not a boolean")
    elif t == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            violations.append(f"{path}: {value!r} is not an epoch-seconds timestamp")


def length(meta, n, path):
    if "min" in meta and n < meta["min"] or "max" in meta and n > meta["max"]:
        violations.append(f"{path}: length {n} outside {meta.get('min')}..{meta.get('max')}")


def on_response(http_response, model, **_):
    if http_response.status_code != 200 or model.output_shape is None:
        return
    try:
        body = json.loads(http_response.content or b"{}")
    except ValueError:
        violations.append(f"{model.name}: the response is not JSON")
        return
    check_shape(model.output_shape, body, model.name)


fh.meta.events.register("after-call.firehose", on_response)

checks = {}


def record(name, expected, got):
    checks[name] = {"ok": expected == got, "expected": expected, "got": got}


def error_of(call):
    """(code, message) of the error `call` raises; ("OK", None) if it succeeds."""
    try:
        call()
        return ("OK", None)
    except ClientError as e:
        return (e.response["Error"]["Code"], e.response["Error"].get("Message"))


def describe(name):
    return fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]


def raw_describe(name):
    """The description as sent (botocore drops members its model lacks from parsed output)."""
    seen = {}

    def keep(http_response, **_):
        seen["body"] = json.loads(http_response.content)

    fh.meta.events.register("after-call.firehose.DescribeDeliveryStream", keep)
    try:
        fh.describe_delivery_stream(DeliveryStreamName=name)
    finally:
        fh.meta.events.unregister("after-call.firehose.DescribeDeliveryStream", keep)
    return seen["body"]["DeliveryStreamDescription"]


def wait_active(name):
    for _ in range(200):
        d = describe(name)
        if d["DeliveryStreamStatus"] != "CREATING":
            return d
        time.sleep(0.05)
    return d


def extended(**more):
    c = {"RoleARN": ROLE, "BucketARN": BUCKET_ARN,
         "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}}
    c.update(more)
    return c


def code(call):
    return error_of(call)[0]


# 1. The older S3DestinationConfiguration shape is accepted and described both ways.
record("S3DestinationConfiguration is accepted", ("OK", None), error_of(lambda: fh.create_delivery_stream(
    DeliveryStreamName="fid-s3", S3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": BUCKET_ARN, "Prefix": "old/",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}})))
d = wait_active("fid-s3") if "fid-s3" in fh.list_delivery_streams()["DeliveryStreamNames"] else {}
dest = (d.get("Destinations") or [{}])[0]
record("... described with S3DestinationDescription and ExtendedS3DestinationDescription",
       [True, True], ["S3DestinationDescription" in dest, "ExtendedS3DestinationDescription" in dest])
record("... its RoleARN echoed", ROLE, dest.get("S3DestinationDescription", {}).get("RoleARN"))
version = d.get("VersionId")
record("UpdateDestination with both S3DestinationUpdate and ExtendedS3DestinationUpdate",
       "InvalidArgumentException", code(lambda: fh.update_destination(
           DeliveryStreamName="fid-s3", CurrentDeliveryStreamVersionId=version or "1",
           DestinationId="destinationId-000000000001",
           S3DestinationUpdate={"Prefix": "a/"}, ExtendedS3DestinationUpdate={"Prefix": "b/"})))
record("... and the version stays", version, describe("fid-s3").get("VersionId") if d else None)
record("LastUpdateTimestamp absent on a stream never updated", False,
       "LastUpdateTimestamp" in raw_describe("fid-s3") if d else None)
record("CustomTimeZone absent when not given", False,
       "CustomTimeZone" in dest.get("ExtendedS3DestinationDescription", {"CustomTimeZone": 1}))
if d and d.get("DeliveryStreamStatus") == "ACTIVE":
    error_of(lambda: fh.update_destination(
        DeliveryStreamName="fid-s3", CurrentDeliveryStreamVersionId=version,
        DestinationId="destinationId-000000000001", S3DestinationUpdate={"Prefix": "new/"}))
    after = wait_active("fid-s3")
    record("S3DestinationUpdate applies, LastUpdateTimestamp appears",
           ["new/", True], [after["Destinations"][0]["S3DestinationDescription"].get("Prefix"),
                            "LastUpdateTimestamp" in after])

# 2. What was sent is echoed.
sse = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": KEY}
record("a fully specified stream is created", ("OK", None), error_of(lambda: fh.create_delivery_stream(
    DeliveryStreamName="fid-echo", DeliveryStreamEncryptionConfigurationInput=sse,
    ExtendedS3DestinationConfiguration=extended(
        Prefix="data/!{partitionKeyFromQuery:k}/", ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        DynamicPartitioningConfiguration={"Enabled": True, "RetryOptions": {"DurationInSeconds": 120}},
        DataFormatConversionConfiguration={"Enabled": False},
        CloudWatchLoggingOptions={"Enabled": True, "LogGroupName": "/aws/kinesisfirehose/fid",
                                  "LogStreamName": "DestinationDelivery"},
        ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "Lambda", "Parameters": [
                {"ParameterName": "RoleArn", "ParameterValue": OTHER_ROLE},
                {"ParameterName": "LambdaArn", "ParameterValue": LAMBDA}]}]}))))
names = fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]
d = wait_active("fid-echo") if "fid-echo" in names else {}
ext = (d.get("Destinations") or [{}])[0].get("ExtendedS3DestinationDescription", {})
record("RoleARN echoed", ROLE, ext.get("RoleARN"))
record("DeliveryStreamEncryptionConfigurationInput echoed",
       {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": KEY, "Status": "ENABLED"},
       {k: v for k, v in d.get("DeliveryStreamEncryptionConfiguration", {}).items()
        if k in ("KeyType", "KeyARN", "Status")})
record("DynamicPartitioningConfiguration echoed",
       {"Enabled": True, "RetryOptions": {"DurationInSeconds": 120}},
       ext.get("DynamicPartitioningConfiguration"))
record("DataFormatConversionConfiguration {Enabled: false} echoed", {"Enabled": False},
       ext.get("DataFormatConversionConfiguration"))
record("CloudWatchLoggingOptions echoed",
       {"Enabled": True, "LogGroupName": "/aws/kinesisfirehose/fid", "LogStreamName": "DestinationDelivery"},
       ext.get("CloudWatchLoggingOptions"))
lam = [p for p in ext.get("ProcessingConfiguration", {}).get("Processors", []) if p["Type"] == "Lambda"]
params = lam[0]["Parameters"] if lam else []
record("Lambda processor parameters in AWS's order, defaults filled in",
       ["LambdaArn", "NumberOfRetries", "RoleArn", "BufferSizeInMBs", "BufferIntervalInSeconds"],
       [p["ParameterName"] for p in params])
record("... the Lambda RoleArn echoed", OTHER_ROLE,
       next((p["ParameterValue"] for p in params if p["ParameterName"] == "RoleArn"), None))

# 3. Validation in AWS's order and words.
for op, call in [
    ("StartDeliveryStreamEncryption", lambda: fh.start_delivery_stream_encryption(
        DeliveryStreamName="fid-missing", DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})),
    ("StopDeliveryStreamEncryption", lambda: fh.stop_delivery_stream_encryption(DeliveryStreamName="fid-missing")),
    ("TagDeliveryStream", lambda: fh.tag_delivery_stream(DeliveryStreamName="fid-missing", Tags=[{"Key": "a"}])),
    ("UpdateDestination", lambda: fh.update_destination(
        DeliveryStreamName="fid-missing", CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001", ExtendedS3DestinationUpdate={"Prefix": "x/"})),
]:
    record(f"{op} on an unknown stream", "ResourceNotFoundException", code(call))
record("KinesisStreamSourceConfiguration on a DirectPut stream",
       ("InvalidArgumentException",
        "KinesisSourceStreamConfig is only applicable for KinesisStreamAsSource stream type"),
       error_of(lambda: fh.create_delivery_stream(
           DeliveryStreamName="fid-kin", DeliveryStreamType="DirectPut",
           KinesisStreamSourceConfiguration={
               "KinesisStreamARN": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/src", "RoleARN": ROLE},
           ExtendedS3DestinationConfiguration=extended())))
record("a BucketARN outside the model's pattern",
       ("ValidationException",
        "1 validation error detected: Value 'lake' at 'extendedS3DestinationConfiguration.bucketARN' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
        "arn:.*:s3:::[\\w\\.\\-]{1,255}"),
       error_of(lambda: fh.create_delivery_stream(
           DeliveryStreamName="fid-bad", ExtendedS3DestinationConfiguration=extended(BucketARN="lake"))))
record("two broken constraints are counted in one message",
       ("ValidationException", True),
       (lambda c: (c[0], (c[1] or "").startswith("2 validation errors detected: ")))(error_of(
           lambda: fh.create_delivery_stream(
               DeliveryStreamName="fid-bad", ExtendedS3DestinationConfiguration=extended(
                   BucketARN="lake", BufferingHints={"SizeInMBs": 500, "IntervalInSeconds": 60})))))
record("a tag key beginning with aws:", "ValidationException", code(
    lambda: fh.tag_delivery_stream(DeliveryStreamName="fid-echo", Tags=[{"Key": "aws:team", "Value": "x"}])))
record("51 tags in one CreateDeliveryStream", "ValidationException", code(
    lambda: fh.create_delivery_stream(
        DeliveryStreamName="fid-tags", ExtendedS3DestinationConfiguration=extended(),
        Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])))
record("an empty stream name", ("ValidationException", True), (lambda c: (
    c[0], (c[1] or "").startswith("2 validation errors detected: Value '' at 'deliveryStreamName'")))(
    error_of(lambda: fh.describe_delivery_stream(DeliveryStreamName=""))))


# 7. Start/StopDeliveryStreamEncryption move the status as AWS describes.
def statuses(name, until):
    seen = []
    for _ in range(100):
        s = describe(name).get("DeliveryStreamEncryptionConfiguration", {}).get("Status")
        if not seen or seen[-1] != s:
            seen.append(s)
        if s == until:
            break
        time.sleep(0.05)
    return seen


if "fid-s3" in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"]:
    got = code(lambda: fh.start_delivery_stream_encryption(
        DeliveryStreamName="fid-s3",
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"}))
    # What a poller sees: the moving status (unless the machine stalls past it), then the
    # settled one; never anything else.
    seen = statuses("fid-s3", "ENABLED")
    record("StartDeliveryStreamEncryption: ENABLING, then ENABLED",
           ["OK", "ENABLED", True], [got, seen[-1], seen in (["ENABLING", "ENABLED"], ["ENABLED"])])
    record("... and PutRecord then answers Encrypted: true", True, fh.put_record(
        DeliveryStreamName="fid-s3", Record={"Data": b"x"}).get("Encrypted"))
    got = code(lambda: fh.stop_delivery_stream_encryption(DeliveryStreamName="fid-s3"))
    seen = statuses("fid-s3", "DISABLED")
    record("StopDeliveryStreamEncryption: DISABLING, then DISABLED",
           ["OK", "DISABLED", True], [got, seen[-1], seen in (["DISABLING", "DISABLED"], ["DISABLED"])])
record("a customer managed key without its KeyARN", "InvalidArgumentException", code(
    lambda: fh.start_delivery_stream_encryption(
        DeliveryStreamName="fid-echo",
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"})))

# 8. What suites written against AWS trip on elsewhere (moto's and LocalStack's suites, replayed).
# A missing bucket is a delivery failure on AWS, retried while the records wait ("Handle data
# delivery failures", developer guide): the stream itself is ACTIVE. The caller creates the
# bucket afterwards and checks that the record arrives.
LATER = "arn:aws:s3:::" + bucket + "-later"
record("a stream whose bucket does not exist yet is created", ("OK", None), error_of(
    lambda: fh.create_delivery_stream(
        DeliveryStreamName="fid-later", ExtendedS3DestinationConfiguration=extended(
            BucketARN=LATER, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60}))))
d = wait_active("fid-later") if "fid-later" in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"] else {}
record("... is ACTIVE, with no FailureDescription", ["ACTIVE", False],
       [d.get("DeliveryStreamStatus"), "FailureDescription" in d])
record("... takes PutRecord", "OK", code(lambda: fh.put_record(
    DeliveryStreamName="fid-later", Record={"Data": b'{"waits": true}\n'})))
record("... and StartDeliveryStreamEncryption", "OK", code(lambda: fh.start_delivery_stream_encryption(
    DeliveryStreamName="fid-later",
    DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})))
statuses("fid-later", "ENABLED")
record("... and StopDeliveryStreamEncryption", "OK", code(
    lambda: fh.stop_delivery_stream_encryption(DeliveryStreamName="fid-later")))

# A Lambda processor sent without its RoleArn is described with the destination's RoleARN
# (LocalStack's snapshot, recorded against AWS); an HTTP endpoint sent without a RoleARN with
# its backup's, the one role such a request carries.
lambda_only = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
    {"ParameterName": "LambdaArn", "ParameterValue": LAMBDA}]}]}
error_of(lambda: fh.create_delivery_stream(
    DeliveryStreamName="fid-role", ExtendedS3DestinationConfiguration=extended(
        ProcessingConfiguration=lambda_only)))
d = wait_active("fid-role") if "fid-role" in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"] else {}
ext = (d.get("Destinations") or [{}])[0].get("ExtendedS3DestinationDescription", {})
params = [p for pr in ext.get("ProcessingConfiguration", {}).get("Processors", []) for p in pr["Parameters"]]
record("a Lambda processor without RoleArn is described with the destination's RoleARN", ROLE,
       next((p["ParameterValue"] for p in params if p["ParameterName"] == "RoleArn"), None))
error_of(lambda: fh.create_delivery_stream(
    DeliveryStreamName="fid-http", HttpEndpointDestinationConfiguration={
        "EndpointConfiguration": {"Url": "https://127.0.0.1:9/ingest", "Name": "sink"},
        "ProcessingConfiguration": lambda_only,
        "S3Configuration": {"RoleARN": OTHER_ROLE, "BucketARN": BUCKET_ARN}}))
d = wait_active("fid-http") if "fid-http" in fh.list_delivery_streams(Limit=100)["DeliveryStreamNames"] else {}
http = (d.get("Destinations") or [{}])[0].get("HttpEndpointDestinationDescription", {})
params = [p for pr in http.get("ProcessingConfiguration", {}).get("Processors", []) for p in pr["Parameters"]]
record("an HTTP endpoint without RoleARN: its backup's role, for it and its Lambda", [OTHER_ROLE, OTHER_ROLE],
       [http.get("RoleARN"), next((p["ParameterValue"] for p in params if p["ParameterName"] == "RoleArn"), None)])
record("CreateDeliveryStream without a destination",
       ("InvalidArgumentException", "Exactly one destination configuration is supported for a Firehose"),
       error_of(lambda: fh.create_delivery_stream(DeliveryStreamName="fid-none")))

for name in ("fid-s3", "fid-echo", "fid-role", "fid-http"):
    error_of(lambda: fh.delete_delivery_stream(DeliveryStreamName=name))

print(json.dumps({"checks": checks, "model_violations": violations}, indent=1, default=str))
