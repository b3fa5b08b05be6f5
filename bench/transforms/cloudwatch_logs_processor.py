"""What users ran before Firehose had CloudWatch Logs decompression: a Lambda transform in the
style of AWS's "kinesis-firehose-cloudwatch-logs-processor" blueprint. Each record is a GZIP
CloudWatch Logs document; CONTROL_MESSAGE is dropped, DATA_MESSAGE becomes its log events'
messages joined by newlines (one output record per input record, as the blueprint returns).
"""
import base64
import gzip
import json


def transform(record):
    doc = json.loads(gzip.decompress(base64.b64decode(record['data'])))
    if doc['messageType'] != 'DATA_MESSAGE':
        return {'recordId': record['recordId'], 'result': 'Dropped'}
    joined = ''.join(e['message'] + '\n' for e in doc['logEvents'])
    return {
        'recordId': record['recordId'],
        'result': 'Ok',
        'data': base64.b64encode(joined.encode('utf-8')).decode('utf-8'),
    }


def lambda_handler(event, context):
    return {'records': [transform(r) for r in event['records']]}
