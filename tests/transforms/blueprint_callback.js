// blueprint.js in the callback style: exports.handler = (event, context, callback) => ...
'use strict';

const { transform } = require('./blueprint');

exports.handler = (event, context, callback) => {
  if (context.awsRequestId !== event.invocationId) {
    callback(new Error(`awsRequestId ${context.awsRequestId} != invocationId ${event.invocationId}`));
    return;
  }
  const remaining = context.getRemainingTimeInMillis();
  console.log(`Processing ${event.records.length} records of ${event.invocationId} (${remaining} ms left)`);
  setTimeout(() => callback(null, { records: event.records.map(transform) }), 1);
};
