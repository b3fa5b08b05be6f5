// A pass-through Firehose Lambda handler, for bench/transform.sh through the Node.js runner.
exports.handler = async (event) => ({
  records: event.records.map((r) => ({ recordId: r.recordId, result: "Ok", data: r.data })),
});
