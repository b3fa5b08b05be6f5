// A Node.js test of code that uses Firehose, against firehosed started by the test itself: the
// AWS SDK v3's Firehose client with its endpoint pointed at the daemon (docs/testing.md).
// usage: node firehose.test.mjs            (firehosed on PATH, or FIREHOSED_BINARY; the
//                                           @aws-sdk/client-firehose package resolvable)
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import {
  FirehoseClient, CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, PutRecordBatchCommand,
} from "@aws-sdk/client-firehose";

const dir = mkdtempSync(join(tmpdir(), "firehosed-node-"));
writeFileSync(join(dir, "firehosed.yaml"),
  `api_s3_directory: ${join(dir, "s3")}\nrelax_aws_limits: true\ndelivery_streams: []\n`);
const daemon = spawn(process.env.FIREHOSED_BINARY || "firehosed",
  ["run", "--config", join(dir, "firehosed.yaml"), "--listen", "127.0.0.1:0", "--state-dir", join(dir, "state")],
  { stdio: ["ignore", "pipe", "inherit"] });
try {
  // Its one stdout line, once it serves: "firehosed listening on http://127.0.0.1:PORT".
  const endpoint = await new Promise((resolve, reject) => {
    daemon.once("exit", (code) => reject(new Error(`firehosed exited (${code})`)));
    createInterface({ input: daemon.stdout }).once("line",
      (line) => resolve(line.trim().replace("firehosed listening on ", "")));
  });
  const firehose = new FirehoseClient({
    endpoint, region: "us-east-1", credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  });
  await firehose.send(new CreateDeliveryStreamCommand({
    DeliveryStreamName: "orders",
    ExtendedS3DestinationConfiguration: {
      RoleARN: "arn:aws:iam::000000000000:role/r", BucketARN: "arn:aws:s3:::lake", Prefix: "orders/",
    },
  }));
  for (;;) {
    const d = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: "orders" }));
    if (d.DeliveryStreamDescription.DeliveryStreamStatus === "ACTIVE") break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const records = [1, 2, 3].map((id) => ({ Data: Buffer.from(JSON.stringify({ id }) + "\n") }));
  const put = await firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: "orders", Records: records }));
  assert.equal(put.FailedPutCount, 0);

  const flushed = await fetch(`${endpoint}/v1/streams/orders/flush`, { method: "POST" });
  const { keys } = await flushed.json();
  assert.equal(keys.length, 1);
  assert.ok(keys[0].startsWith("orders/"), keys[0]);
  assert.equal(readFileSync(join(dir, "s3", "lake", keys[0]), "utf8"), '{"id":1}\n{"id":2}\n{"id":3}\n');
  assert.deepEqual(readdirSync(join(dir, "s3")), ["lake"]);
  console.log(`ok: ${keys[0]}`);
} finally {
  if (daemon.exitCode === null && daemon.signalCode === null) {
    const exited = new Promise((r) => daemon.once("exit", r));
    daemon.kill("SIGTERM");
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
}
