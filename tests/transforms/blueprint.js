// A Firehose transform in the style of AWS's Node.js blueprint (async), for the runner tests.
// Same rule as blueprint.py: each record is JSON {"id": N, "action": "keep"|"drop"|"fail", ...};
// keep -> Ok with the object plus "processed": true (compact JSON + "\n") and partitionKeys
// {"action": "keep"}; drop -> Dropped; anything else -> ProcessingFailed with the original data.
'use strict';

console.log('Loading function');

function transform(record) {
  let payload = null;
  try {
    payload = JSON.parse(Buffer.from(record.data, 'base64').toString('utf8'));
  } catch (_) {
    payload = null;
  }
  const action = payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? payload.action : undefined;
  if (action === 'keep') {
    payload.processed = true;
    return {
      recordId: record.recordId,
      result: 'Ok',
      data: Buffer.from(JSON.stringify(payload) + '\n', 'utf8').toString('base64'),
      metadata: { partitionKeys: { action: 'keep' } },
    };
  }
  if (action === 'drop') {
    return { recordId: record.recordId, result: 'Dropped', data: '' };
  }
  return { recordId: record.recordId, result: 'ProcessingFailed', data: record.data };
}

exports.transform = transform;

exports.handler = async (event, context) => {
  if (context.awsRequestId !== event.invocationId) {
    throw new Error(`awsRequestId ${context.awsRequestId} != invocationId ${event.invocationId}`);
  }
  const remaining = context.getRemainingTimeInMillis();
  if (!(remaining > 0)) throw new Error(`no time left: ${remaining}`);
  console.log(`Processing ${event.records.length} records of ${event.invocationId} (${remaining} ms left)`);
  await new Promise((resolve) => setImmediate(resolve)); // really asynchronous
  return { records: event.records.map(transform) };
};
