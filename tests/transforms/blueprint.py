"""A Firehose transform in the style of AWS's Python blueprint, for the runner tests.

Each record is JSON {"id": N, "action": "keep"|"drop"|"fail", ...}:
  keep -> Ok, data = the object plus "processed": true, compact JSON + "\n",
          metadata.partitionKeys = {"action": "keep"}
  drop -> Dropped
  fail, another action, or data that is not a JSON object -> ProcessingFailed (original data)
"""
from __future__ import print_function

import base64
import json

print('Loading function')


def transform(record):
    try:
        payload = json.loads(base64.b64decode(record['data']).decode('utf-8'))
    except ValueError:
        payload = None
    action = payload.get('action') if isinstance(payload, dict) else None
    if action == 'keep':
        payload['processed'] = True
        data = json.dumps(payload, separators=(',', ':'), ensure_ascii=False) + '\n'
        return {
            'recordId': record['recordId'],
            'result': 'Ok',
            'data': base64.b64encode(data.encode('utf-8')).decode('utf-8'),
            'metadata': {'partitionKeys': {'action': 'keep'}},
        }
    if action == 'drop':
        return {'recordId': record['recordId'], 'result': 'Dropped', 'data': ''}
    return {'recordId': record['recordId'], 'result': 'ProcessingFailed', 'data': record['data']}


def lambda_handler(event, context):
    assert context.aws_request_id == event['invocationId'], (context.aws_request_id, event['invocationId'])
    remaining = context.get_remaining_time_in_millis()
    assert remaining > 0, remaining
    print('Processing {} records of {} ({} ms left)'.format(
        len(event['records']), event['invocationId'], remaining))
    # Like the old blueprint: a lazy map, which the runner turns into a list.
    return {'records': map(transform, event['records'])}
