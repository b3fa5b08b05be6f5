// Calls firehosed with the AWS SDK for JavaScript v3 (@aws-sdk/client-firehose from npm),
// unchanged but for the endpoint: it signs every request with SigV4. Prints what each call
// returned (or the error's name, message and HTTP status) as JSON for the Rust test.
// The server's CA comes from NODE_EXTRA_CA_CERTS.
//
// usage: node firehose_sdk.mjs ENDPOINT KEY_ID SECRET STREAM
import {
  FirehoseClient,
  PutRecordBatchCommand,
  PutRecordCommand,
  DescribeDeliveryStreamCommand,
  DeleteDeliveryStreamCommand,
} from "@aws-sdk/client-firehose";

const [endpoint, accessKeyId, secretAccessKey, stream] = process.argv.slice(2);
const client = new FirehoseClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId, secretAccessKey },
  maxAttempts: 1,
});

async function outcome(command) {
  try {
    const r = await client.send(command);
    return { ok: true, FailedPutCount: r.FailedPutCount ?? null, Status: r.DeliveryStreamDescription?.DeliveryStreamStatus ?? null };
  } catch (e) {
    return { code: e.name, message: e.message, status: e.$metadata?.httpStatusCode ?? null };
  }
}

const enc = new TextEncoder();
const records = Array.from({ length: 20 }, (_, i) => ({ Data: enc.encode(JSON.stringify({ js: i }) + "\n") }));
const out = {
  put: await outcome(new PutRecordCommand({ DeliveryStreamName: stream, Record: { Data: enc.encode('{"js":"one"}\n') } })),
  batch: await outcome(new PutRecordBatchCommand({ DeliveryStreamName: stream, Records: records })),
  describe: await outcome(new DescribeDeliveryStreamCommand({ DeliveryStreamName: stream })),
  delete: await outcome(new DeleteDeliveryStreamCommand({ DeliveryStreamName: stream })),
};
console.log(JSON.stringify(out));
