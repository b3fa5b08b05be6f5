"""A handler module for the runner that always raises: every invocation is a Lambda.FunctionError."""


def lambda_handler(event, context):
    print('about to fail invocation', context.aws_request_id)
    raise ValueError("boom")
