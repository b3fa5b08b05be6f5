"""A firehosed daemon for a test: started on a free port with fresh state, stopped on exit.

    from firehosed.testing import Firehosed

    with Firehosed() as fh:
        firehose = fh.client()                 # boto3, endpoint_url=fh.endpoint_url
        firehose.create_delivery_stream(...)   # as against AWS
        firehose.put_record(...)
        keys = fh.flush("orders")              # deliver now (AWS would wait for its buffer)
        objects = fh.objects("lake", prefix="orders/", decompress=True)

API-created S3 destinations write under a temporary folder laid out as the bucket would be
(`api_s3_directory`), so no S3 server is needed; `s3_endpoint_url=` delivers into a real one
(moto's server, MinIO, s3s-fs) instead. `config=` adds streams defined as in a configuration
file: a dict, or the path of a YAML file. The whole guide: docs/testing.md.
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import weakref
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = ["Firehosed", "FirehosedError", "FirehosedTestCase", "find_binary", "lambda_runtime"]

# The runner that hosts an unmodified Firehose Lambda handler (docs/transform.md).
_RUNNER = Path(__file__).with_name("lambda_runner.py")

# Credentials for the AWS SDK inside the daemon when it talks to a local S3 server, and for the
# clients `client()` makes: a local endpoint checks none (set your own in the environment).
_TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}



class FirehosedError(AssertionError):
    """The daemon could not start, or a call to it failed; the message ends with its log."""


def find_binary() -> str:
    """The firehosed binary: $FIREHOSED_BINARY, the one this package installed, or PATH's."""
    explicit = os.environ.get("FIREHOSED_BINARY")
    if explicit:
        return explicit
    exe = "firehosed" + (".exe" if sys.platform == "win32" else "")
    candidates = [Path(sysconfig.get_path("scripts")) / exe]
    user = sysconfig.get_path("scripts", f"{os.name}_user")
    if user:
        candidates.append(Path(user) / exe)
    # A venv's bin folder when this package is installed there but another Python runs it.
    candidates.append(Path(sys.executable).parent / exe)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(exe)
    if found:
        return found
    raise FirehosedError(
        "the firehosed binary was not found: install the wheel (pip install firehosed), "
        "or set FIREHOSED_BINARY to its path"
    )


def lambda_runtime(handler: str, *, timeout_seconds: int = 60, concurrency: int = 1) -> Dict[str, Any]:
    """The `lambda_functions` / `processing.transform` entry that runs a Python Lambda handler
    with this interpreter: `handler` is "path/to/file.py:function" or "module.function"
    (importable from the current folder)."""
    if ":" in handler:
        file, function = handler.rsplit(":", 1)
        path = Path(file).resolve()
        module, folder = path.stem + "." + function, str(path.parent)
    else:
        module, folder = handler, os.getcwd()
    return {
        "subprocess": {
            "command": [sys.executable, str(_RUNNER), module],
            "working_directory": folder,
        },
        "timeout_seconds": timeout_seconds,
        "concurrency": concurrency,
    }


class Firehosed:
    """One firehosed daemon on 127.0.0.1, its port chosen by the daemon (no race), its state in
    a fresh temporary folder, AWS's buffer minimums relaxed (`relax_aws_limits`).

    config: streams as a configuration file defines them: a dict (keys as in the file:
        `delivery_streams`, `lambda_functions`, ...; its `s3` destinations write into the same
        folder as API-created ones unless `s3_endpoint_url` is given) or the path of a YAML file
        (used as it is; only `listen` and `state_dir` are replaced).
    s3_endpoint_url: deliver API-created and file S3 destinations into this S3 server instead of
        the temporary folder (the buckets must exist there, as on AWS).
    lambdas: Lambda function name -> "file.py:function": what a CreateDeliveryStream's Lambda
        processor runs (by the function name in its LambdaArn).
    glue_tables: "database.table" -> Glue columns ([{"Name": "id", "Type": "bigint"}, ...]): the
        tables a CreateDeliveryStream's DataFormatConversionConfiguration reads its schema from.
    stop_timeout: seconds the drain may take on exit before the daemon is killed.
    """

    def __init__(
        self,
        config: Union[None, str, os.PathLike, Mapping[str, Any]] = None,
        *,
        s3_endpoint_url: Optional[str] = None,
        lambdas: Optional[Mapping[str, str]] = None,
        glue_tables: Optional[Mapping[str, List[Mapping[str, str]]]] = None,
        region: str = "us-east-1",
        binary: Optional[str] = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._config = config
        self._lambdas = dict(lambdas or {})
        self._glue_tables = dict(glue_tables or {})
        self._binary = binary
        self._env = dict(env or {})
        self._process: Optional[subprocess.Popen] = None
        self._dir: Optional[Path] = None
        self._log = None
        self._api_dir: Optional[Path] = None
        self._finalizer: Optional[weakref.finalize] = None
        self.endpoint_url: Optional[str] = None

    # -- life ----------------------------------------------------------------------------------

    def __enter__(self) -> "Firehosed":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def state_dir(self) -> Path:
        return self._folder() / "state"

    @property
    def s3_directory(self) -> Optional[Path]:
        """Where API-created S3 destinations write (`<dir>/<bucket>/<key>`); None with an S3
        server or a YAML file's configuration."""
        if self.s3_endpoint_url is not None or self._is_file_config():
            return None
        return self._api_dir or self._folder() / "s3"

    def start(self) -> "Firehosed":
        if self.running:
            return self
        self.stop()  # what a daemon that died left behind
        try:
            self._dir = Path(tempfile.mkdtemp(prefix="firehosed-"))
            config_path = self._write_config()
            self._log = open(self._dir / "firehosed.log", "w+b")
            command = [
                self._binary or find_binary(), "run", "--config", str(config_path),
                "--listen", "127.0.0.1:0", "--state-dir", str(self.state_dir),
            ]
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
                env=self._environment(),
            )
            # Stopped at the latest when this object is collected or the interpreter exits.
            self._finalizer = weakref.finalize(self, _cleanup, self._process, self._dir, self._log)
            deadline = time.monotonic() + self.start_timeout
            self.endpoint_url = self._wait_listening(deadline)
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Drains (SIGTERM: buffers delivered), kills after `stop_timeout`, removes the state."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if self._log is not None:
                self._kept_log = self.logs()
            if self._finalizer is not None:
                self._finalizer()  # kills what is left, closes the log, removes the folder
                self._finalizer = None
            else:  # a start that failed before the process ran
                if self._log is not None:
                    self._log.close()
                if self._dir is not None:
                    shutil.rmtree(self._dir, ignore_errors=True)
            self._log, self._dir = None, None

    def logs(self) -> str:
        """What the daemon logged so far (kept after `stop`)."""
        if self._log is None:
            return getattr(self, "_kept_log", "")
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # -- calls ---------------------------------------------------------------------------------

    def client(self, service: str = "firehose", **kwargs: Any) -> Any:
        """A boto3 client of the daemon (`firehose`), or with `service="s3"`, of the S3 server
        given as `s3_endpoint_url`."""
        import boto3  # optional dependency: only for those who call this

        endpoint = self.endpoint_url if service == "firehose" else self.s3_endpoint_url
        options: Dict[str, Any] = {"endpoint_url": endpoint, "region_name": self.region}
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            # The local endpoints check none; keys set in the environment are used as they are.
            options["aws_access_key_id"] = _TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"]
            options["aws_secret_access_key"] = _TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        options.update(kwargs)
        return boto3.client(service, **options)

    def flush(self, name: str, timeout: float = 60.0) -> List[str]:
        """Delivers everything buffered for stream `name` now; returns the keys written. Where a
        test against AWS would wait out the buffering interval. The daemon answers once the
        objects are written: a destination that cannot be written (a bucket missing from the S3
        server) keeps it waiting, and after `timeout` seconds this raises with the log."""
        body = self._call("POST", f"/v1/streams/{name}/flush", timeout=timeout)
        return list(json.loads(body)["keys"])

    def put(self, name: str, lines: List[Union[str, bytes]]) -> int:
        """Plain ingest: each line one record (its newline removed); returns how many were taken."""
        data = b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines)
        return int(json.loads(self._call("POST", f"/v1/streams/{name}/records", data))["accepted"])

    def objects(self, bucket: str, prefix: str = "", *, decompress: bool = False) -> Dict[str, bytes]:
        """{key: bytes} of what is in `bucket` under `prefix`, in key order; `decompress`
        undoes GZIP (`.gz`) and ZIP (`.zip`) objects."""
        if self.s3_endpoint_url is not None:
            found = self._s3_objects(bucket, prefix)
        else:
            found = self._folder_objects(bucket, prefix)
        if decompress:
            found = {k: _decompressed(k, v) for k, v in found.items()}
        return dict(sorted(found.items()))

    # -- internals -----------------------------------------------------------------------------

    def _folder(self) -> Path:
        if self._dir is None:
            raise FirehosedError("the daemon is not started: use `with Firehosed() as fh:` or start()")
        return self._dir

    def _is_file_config(self) -> bool:
        return self._config is not None and not isinstance(self._config, Mapping)

    def _write_config(self) -> Path:
        if self._is_file_config():
            return Path(os.fspath(self._config)).resolve()  # type: ignore[arg-type]
        config: Dict[str, Any] = json.loads(json.dumps(dict(self._config or {}), default=os.fspath))
        config.setdefault("delivery_streams", [])
        config.setdefault("relax_aws_limits", True)
        aws = config.setdefault("aws", {})
        aws.setdefault("region", self.region)
        if self.s3_endpoint_url is not None:
            aws.setdefault("endpoint_url", self.s3_endpoint_url)
            aws.setdefault("force_path_style", True)
        else:
            config.setdefault("api_s3_directory", str(self._folder() / "s3"))
            self._api_dir = Path(config["api_s3_directory"]).resolve()
            self._s3_into_folder(config)
        functions = config.setdefault("lambda_functions", {})
        for name, handler in self._lambdas.items():
            functions[name] = lambda_runtime(handler)
        if not functions:
            del config["lambda_functions"]
        if self._glue_tables:
            config.setdefault("glue_catalog_dir", str(self._write_glue_tables()))
        path = self._folder() / "firehosed.yaml"
        path.write_text(json.dumps(config, indent=1, default=os.fspath))  # JSON is YAML
        return path

    def _s3_into_folder(self, config: Dict[str, Any]) -> None:
        """The dict's streams' `s3` destinations (no endpoint of their own) write into the same
        folder as API-created ones: `objects(bucket)` reads both, and no S3 server is needed.
        Backups of HTTP endpoint and Iceberg destinations keep their buckets."""
        for stream in config.get("delivery_streams") or []:
            for d in stream.get("destinations") or []:
                s3 = d.get("s3")
                if isinstance(s3, Mapping) and "endpoint_url" not in s3 and "bucket" in s3:
                    del d["s3"]
                    d["directory"] = str(self.s3_directory / s3["bucket"])

    def _write_glue_tables(self) -> Path:
        """`<dir>/<database>/<table>.json` in Glue's layout (`glue_catalog_dir`)."""
        root = self._folder() / "glue"
        for name, columns in self._glue_tables.items():
            database, _, table = name.partition(".")
            if not table:
                raise ValueError(f"glue_tables: {name!r} is not database.table")
            (root / database).mkdir(parents=True, exist_ok=True)
            layout = {"Table": {"Name": table, "StorageDescriptor": {"Columns": list(columns)}}}
            (root / database / f"{table}.json").write_text(json.dumps(layout))
        return root

    def _environment(self) -> Dict[str, str]:
        env = dict(os.environ)
        for k, v in _TEST_CREDENTIALS.items():
            env.setdefault(k, v)
        env.setdefault("AWS_REGION", self.region)
        # No instance metadata on a test machine: do not wait for it.
        env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        # The daemon dies with this process's thread that starts it (Linux's PR_SET_PDEATHSIG,
        # set by the daemon itself: nothing runs between fork and exec here).
        env["FIREHOSED_PARENT_PID"] = str(os.getpid())
        if self.s3_endpoint_url is not None and self._is_file_config():
            env.setdefault("AWS_ENDPOINT_URL_S3", self.s3_endpoint_url)
        env.update(self._env)
        return env

    def _wait_listening(self, deadline: float) -> str:
        """The address from the daemon's one stdout line, `firehosed listening on URL`."""
        assert self._process is not None and self._process.stdout is not None
        lines: "queue.Queue[bytes]" = queue.Queue()
        stdout = self._process.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=0.005).decode().strip()
                break
            except queue.Empty:
                if self._process.poll() is not None:
                    self._fail(f"firehosed exited with status {self._process.returncode} at start")
                if time.monotonic() > deadline:
                    self._fail(f"firehosed did not start within {self.start_timeout} s")
        marker = "firehosed listening on "
        if not line.startswith(marker):
            self._fail(f"firehosed did not start (stdout: {line!r})")
        return line[len(marker):]

    def _wait_ready(self, deadline: float) -> None:
        """/readyz answers 200 once every stream runs (set right after the line above)."""
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                self._fail(f"firehosed exited with status {self._process.returncode} at start")
            try:
                with urllib.request.urlopen(self.endpoint_url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self._fail("firehosed did not become ready")
            time.sleep(0.002)

    def _call(self, method: str, path: str, body: bytes = b"", timeout: float = 60.0) -> bytes:
        if not self.running:
            self._fail("the daemon is not running")
        request = urllib.request.Request(self.endpoint_url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            self._fail(f"{method} {path}: {e.code} {e.read().decode('utf-8', 'replace')}")
        except (urllib.error.URLError, OSError) as e:
            why = getattr(e, "reason", e)
            self._fail(f"{method} {path}: {why} (within {timeout} s; is a destination failing?)")
        raise AssertionError("unreachable")

    def _fail(self, message: str) -> None:
        raise FirehosedError(f"{message}\n--- firehosed log ---\n{self.logs()[-20000:]}")

    def _folder_objects(self, bucket: str, prefix: str) -> Dict[str, bytes]:
        root = self._objects_root(bucket)
        found: Dict[str, bytes] = {}
        if not root.is_dir():
            return found
        for path in root.rglob("*"):
            # Hidden files are the destination's own, mid-write (a key never makes one here).
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(root).as_posix()
                if key.startswith(prefix):
                    found[key] = path.read_bytes()
        return found

    def _objects_root(self, bucket: str) -> Path:
        if self.s3_directory is not None:
            return self.s3_directory / bucket
        raise FirehosedError(
            "objects(): this daemon runs a YAML file's configuration; read its destinations "
            "yourself, or give `s3_endpoint_url`"
        )

    def _s3_objects(self, bucket: str, prefix: str) -> Dict[str, bytes]:
        s3 = self.client("s3")
        found: Dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                found[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return found


def _decompressed(key: str, data: bytes) -> bytes:
    if key.endswith(".gz"):
        return gzip.decompress(data)
    if key.endswith(".zip"):
        import io

        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return b"".join(z.read(n) for n in z.namelist())
    return data


def _cleanup(process: subprocess.Popen, folder: Path, log: Any) -> None:
    """Whatever `stop` left (or everything, for a Firehosed nobody stopped): the process
    killed and reaped, the log closed, the folder removed."""
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout:
        process.stdout.close()
    log.close()
    shutil.rmtree(folder, ignore_errors=True)


class FirehosedTestCase(unittest.TestCase):
    """unittest: a fresh daemon per test as `self.firehosed` (set `firehosed_options` on the
    class for `Firehosed(**firehosed_options)`)."""

    firehosed_options: Mapping[str, Any] = {}
    firehosed: Firehosed

    def setUp(self) -> None:
        super().setUp()
        self.firehosed = Firehosed(**dict(self.firehosed_options)).start()
        self.addCleanup(self.firehosed.stop)
