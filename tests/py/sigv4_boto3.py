"""Calls firehosed with boto3, signing with SigV4 as boto3 always does, and prints what each call
returned (or the AWS error code, message and HTTP status boto3 parsed) as JSON for the Rust test.

usage: sigv4_boto3.py scenario ENDPOINT CA
       sigv4_boto3.py put ENDPOINT CA KEY_ID SECRET STREAM COUNT
       sigv4_boto3.py certs DIR NAME        (a test CA, once, and a server certificate NAME for
                                             localhost and 127.0.0.1 signed by it)

CA is the PEM file of the CA that signed the server's certificate, or "-" for plain HTTP.
The keys are the ones tests/e2e/security.rs writes into the credentials file.
"""
import datetime
import json
import ssl
import sys
import urllib.request

import boto3
import botocore.auth
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

PRODUCER = ("AKIDPRODUCER", "producer-secret")
ADMIN = ("AKIDADMIN", "admin-secret")
NOBODY = ("AKIDNOBODY", "nobody-secret")


def client(endpoint, ca, key, config=None):
    return boto3.client(
        "firehose",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        verify=None if ca == "-" else ca,
        config=config or Config(retries={"max_attempts": 1}),
    )


def outcome(call):
    try:
        r = call()
        return {"ok": True, "FailedPutCount": r.get("FailedPutCount")}
    except ClientError as e:
        return {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"]["Message"],
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }


def raw(endpoint, ca, headers):
    """A request with exactly these headers (no signing): the AWS error it gets."""
    req = urllib.request.Request(endpoint + "/", data=b"{}", method="POST", headers=headers)
    ctx = ssl.create_default_context(cafile=ca) if ca != "-" else None
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return {"status": r.status}
    except urllib.error.HTTPError as e:
        body = json.loads(e.read())
        return {"status": e.code, "code": body.get("__type"), "message": body.get("message")}


def scenario(endpoint, ca):
    producer = client(endpoint, ca, PRODUCER)
    admin = client(endpoint, ca, ADMIN)
    one = {"Data": b'{"by":"producer"}\n'}
    out = {
        "producer_put": outcome(lambda: producer.put_record(DeliveryStreamName="logs-a", Record=one)),
        "producer_batch": outcome(
            lambda: producer.put_record_batch(DeliveryStreamName="logs-a", Records=[one] * 10)
        ),
        "producer_put_other": outcome(
            lambda: producer.put_record(DeliveryStreamName="other", Record=one)
        ),
        "producer_delete": outcome(
            lambda: producer.delete_delivery_stream(DeliveryStreamName="logs-a")
        ),
        "producer_list": outcome(lambda: producer.list_delivery_streams()),
        "admin_list": outcome(lambda: admin.list_delivery_streams()),
        "admin_create": outcome(
            lambda: admin.create_delivery_stream(
                DeliveryStreamName="logs-new",
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "BucketARN": "arn:aws:s3:::no-such-bucket",
                    "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                },
            )
        ),
        "admin_delete_new": outcome(
            lambda: admin.delete_delivery_stream(DeliveryStreamName="logs-new")
        ),
        "admin_delete_denied": outcome(
            lambda: admin.delete_delivery_stream(DeliveryStreamName="logs-keep")
        ),
        "nobody_put": outcome(
            lambda: client(endpoint, ca, NOBODY).put_record(DeliveryStreamName="logs-a", Record=one)
        ),
        "unknown_key": outcome(
            lambda: client(endpoint, ca, ("AKIDUNKNOWN", "x")).list_delivery_streams()
        ),
        "wrong_secret": outcome(
            lambda: client(endpoint, ca, (ADMIN[0], "not-the-secret")).list_delivery_streams()
        ),
        "unsigned": outcome(
            lambda: client(
                endpoint, ca, ADMIN, Config(signature_version=UNSIGNED, retries={"max_attempts": 1})
            ).list_delivery_streams()
        ),
    }
    # botocore's signing clock ten minutes behind: outside AWS's five-minute window.
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=10)
    try:
        out["expired"] = outcome(lambda: admin.list_delivery_streams())
    finally:
        botocore.auth.get_current_datetime = real
    target = {"X-Amz-Target": "Firehose_20150804.ListDeliveryStreams",
              "Content-Type": "application/x-amz-json-1.1"}
    out["malformed"] = raw(endpoint, ca, {**target, "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDADMIN"})
    out["other_algorithm"] = raw(endpoint, ca, {**target, "Authorization": "AWS AKIDADMIN:abc"})
    print(json.dumps(out))


def put(endpoint, ca, key_id, secret, stream, count):
    fh = client(endpoint, ca, (key_id, secret))
    records = [{"Data": json.dumps({"i": i}).encode() + b"\n"} for i in range(int(count))]
    print(json.dumps(outcome(lambda: fh.put_record_batch(DeliveryStreamName=stream, Records=records))))


def certs(directory, name):
    """A CA (made once in DIRECTORY) and a certificate NAME.crt/NAME.key it signs."""
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM
    ca_key_path = os.path.join(directory, "ca.key")
    if not os.path.exists(ca_key_path):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "firehosed test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        with open(ca_key_path, "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        with open(os.path.join(directory, "ca.pem"), "wb") as f:
            f.write(ca.public_bytes(pem))
    with open(ca_key_path, "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(directory, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with open(os.path.join(directory, name + ".key"), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(os.path.join(directory, name + ".crt"), "wb") as f:
        f.write(cert.public_bytes(pem))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"scenario": scenario, "put": put, "certs": certs}[mode](*args)
