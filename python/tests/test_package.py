"""The package's promises, each proved from outside: the binary is on PATH and behind
`python -m firehosed`; a daemon is started fresh and stopped whatever the test does (a failing
test reports the daemon's log and leaves no process; a test runner killed with SIGKILL leaves
none either); API-created S3 destinations land under `<folder>/<bucket>/<key>` with the keys
the flush names; a configuration the daemon refuses is an error carrying its reason."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from firehosed.testing import Firehosed, FirehosedError

BIN = Path(sys.executable).parent / "firehosed"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_binary_is_installed_and_runs_as_a_module():
    assert BIN.is_file()
    version = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("firehosed ")
    module = subprocess.run([sys.executable, "-m", "firehosed", "--version"],
                            capture_output=True, text=True, check=True)
    assert module.stdout == version.stdout


def test_a_failing_test_reports_the_log_and_leaves_no_daemon(tmp_path):
    pid_file, dir_file = tmp_path / "pid", tmp_path / "dir"
    (tmp_path / "test_fails.py").write_text(textwrap.dedent(f"""
        def test_fails(firehosed):
            open({str(pid_file)!r}, "w").write(str(firehosed._process.pid))
            open({str(dir_file)!r}, "w").write(str(firehosed.state_dir.parent))
            assert False, "failing on purpose"
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    assert "firehosed log" in run.stdout and "ready listen=127.0.0.1:" in run.stdout, run.stdout
    # The fixture's teardown ran (a daemon merely killed would leave its folder).
    assert not Path(dir_file.read_text()).exists()
    assert wait_gone(int(pid_file.read_text()))


def test_a_killed_test_runner_leaves_no_daemon():
    runner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from firehosed.testing import Firehosed
        fh = Firehosed().start()
        print(fh._process.pid, flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    daemon = int(runner.stdout.readline())
    assert alive(daemon)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert wait_gone(daemon), f"daemon {daemon} outlived its test runner"


def test_each_daemon_is_fresh_and_its_folder_goes_with_it():
    with Firehosed() as a, Firehosed() as b:
        assert a.endpoint_url != b.endpoint_url
        assert a.state_dir != b.state_dir
        folder = a.state_dir.parent
        a.client().create_delivery_stream(DeliveryStreamName="only-in-a", ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::lake"})
        assert b.client().list_delivery_streams()["DeliveryStreamNames"] == []
    assert not folder.exists()
    assert not a.running and not b.running


def test_api_objects_are_laid_out_as_the_bucket_holds_them():
    with Firehosed() as fh:
        firehose = fh.client()
        firehose.create_delivery_stream(DeliveryStreamName="laid-out", ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::my-lake",
            "Prefix": "p/!{timestamp:yyyy}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}/"})
        while firehose.describe_delivery_stream(DeliveryStreamName="laid-out")[
                "DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
            time.sleep(0.01)
        firehose.put_record(DeliveryStreamName="laid-out", Record={"Data": b"x"})
        [key] = fh.flush("laid-out")
        assert (fh.s3_directory / "my-lake" / key).read_bytes() == b"x"
        assert fh.objects("my-lake") == {key: b"x"}
        assert fh.objects("my-lake", prefix="nothing/") == {}


def test_a_refused_configuration_is_an_error_with_the_reason():
    with pytest.raises(FirehosedError, match=r"delivery_streams\[0\].source: required key is missing"):
        Firehosed(config={"delivery_streams": [{"name": "x", "destinations": []}]}).start()
