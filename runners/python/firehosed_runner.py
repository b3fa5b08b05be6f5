#!/usr/bin/env python3
"""Hosts an unmodified Firehose data-transformation Lambda handler for firehosed.

    python3 firehosed_runner.py MODULE.FUNCTION      (e.g. handler.lambda_handler, pkg.mod.func)

Speaks the subprocess protocol of docs/transform.md: one request event per line on stdin, one
response per line on stdout (the handler's result, or {"errorMessage","errorType","stackTrace"}
when it raised). Anything the handler prints, logs, or lets a child process write goes to
stderr, hence to firehosed's log. Exits 0 at end of file on stdin, 2 when the handler cannot
be loaded. Python 3.9+, standard library only.
"""
import binascii
import decimal
import importlib
import io
import json
import logging
import os
import sys
import time
import traceback

_request_id = None  # the invocation in progress, for log lines


def _take_over_stdio():
    """Keep the original stdin/stdout for the protocol; give the handler stderr and /dev/null."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    proto_in = os.dup(0)  # non-inheritable: children of the handler never see the protocol
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
        line_buffering=True, write_through=True)
    sys.__stdout__ = sys.stdout
    return os.fdopen(proto_in, "rb", buffering=1 << 16), os.fdopen(proto_out, "wb", buffering=1 << 16)


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


def _setup_logging():
    # Like the Lambda runtime: a root handler, Lambda's line format, level left at WARNING.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S"))
    handler.formatter.converter = time.gmtime
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


class _LoadError(Exception):
    pass


def _load_handler(spec):
    if "." not in spec:
        raise _LoadError("bad handler %r: expected MODULE.FUNCTION, e.g. handler.lambda_handler" % spec)
    module_name, function_name = spec.rsplit(".", 1)
    module_name = module_name.replace("/", ".")  # Lambda also accepts dir/module.function
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _LoadError("module %r has no attribute %r" % (module_name, function_name))
    if not callable(handler):
        raise _LoadError("%s.%s is not callable" % (module_name, function_name))
    return handler


class LambdaContext(object):
    """The parts of the Lambda context object a Firehose transform may use."""

    def __init__(self, request_id, deadline, log_stream_name):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("FIREHOSED_FUNCTION_ARN", "")
        try:
            self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        except ValueError:
            self.memory_limit_in_mb = 128
        self.aws_request_id = request_id
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message):
        sys.stderr.write(str(message))
        sys.stderr.flush()

    def __repr__(self):
        return "LambdaContext(%r)" % {
            k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _json_default(obj):
    if isinstance(obj, decimal.Decimal):  # what the Lambda runtime does
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"), default=_json_default, allow_nan=False)


def _error_line(exc, error_type=None, message=None, skip_frames=0):
    tb = traceback.extract_tb(exc.__traceback__)[skip_frames:] if error_type is None else []
    return _dumps({
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(tb),
    })


def _log_exception(exc, prefix=""):
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    sys.stderr.write("[ERROR] %s%s: %s\n%s" % (prefix, type(exc).__name__, exc, "".join(lines)))
    sys.stderr.flush()


def _invoke(handler, line, timeout_ms, log_stream_name):
    global _request_id
    started = time.monotonic()
    _request_id = None
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        _log_exception(exc, "could not parse the request: ")
        return _error_line(exc, "Runtime.UnmarshalError", "Unable to unmarshal input: %s" % exc)
    request_id = event.get("invocationId", "") if isinstance(event, dict) else ""
    _request_id = request_id
    context = LambdaContext(request_id, started + timeout_ms / 1000.0, log_stream_name)
    try:
        result = handler(event, context)
        # Old blueprints answer {"records": map(...)}: materialize any iterable (in this try,
        # a lazy map raises here).
        if isinstance(result, dict):
            records = result.get("records")
            if records is not None and not isinstance(records, (list, dict, str, bytes)):
                result = dict(result, records=list(records))
    except Exception as exc:
        _log_exception(exc)
        return _error_line(exc, skip_frames=1)
    try:
        return _dumps(result)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        _log_exception(exc, "could not serialize the result: ")
        return _error_line(exc, "Runtime.MarshalError", "Unable to marshal response: %s" % exc)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: python3 firehosed_runner.py MODULE.FUNCTION\n")
        return 2
    proto_in, proto_out = _take_over_stdio()
    _setup_logging()
    os.environ.setdefault("_HANDLER", argv[1])
    if os.environ.get("AWS_REGION"):
        os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    sys.path.insert(0, os.getcwd())
    try:
        handler = _load_handler(argv[1])
    except Exception as exc:
        reason = str(exc) if isinstance(exc, _LoadError) else "%s: %s" % (type(exc).__name__, exc)
        if not isinstance(exc, _LoadError):
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write("firehosed_runner: cannot load handler %r (cwd %s): %s\n" % (
            argv[1], os.getcwd(), reason))
        sys.stderr.flush()
        return 2
    try:
        timeout_ms = int(os.environ.get("FIREHOSED_TIMEOUT_MS", "60000"))
    except ValueError:
        timeout_ms = 60000
    log_stream_name = "%s/[%s]%s" % (
        time.strftime("%Y/%m/%d", time.gmtime()),
        os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        binascii.hexlify(os.urandom(16)).decode())

    try:
        for line in proto_in:
            if not line.strip():
                continue
            answer = _invoke(handler, line, timeout_ms, log_stream_name)
            proto_out.write(answer.encode("utf-8") + b"\n")
            proto_out.flush()
    except BrokenPipeError:  # firehosed went away
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
