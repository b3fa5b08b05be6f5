"""The pytest plugin (entry point `pytest11`): fixtures `firehosed` (a fresh daemon per test) and
`firehosed_session` (one per session, or per worker under pytest-xdist: each worker starts its
own, on its own port and folder).

Where S3 destinations deliver: a temporary folder by default (no S3 server needed); an S3 server
with `--firehosed-s3-endpoint-url URL` (or $FIREHOSED_S3_ENDPOINT_URL) for the whole run, or
`@pytest.mark.firehosed(s3_endpoint_url=..., config=..., lambdas=...)` for one test (any
keyword of `Firehosed`). A failing test that used either fixture gets the daemon's log as a
section of its report. Needs pytest 7 or later.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator

import pytest

from .testing import Firehosed

_LOGS_KEY = pytest.StashKey[Firehosed]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("firehosed")
    group.addoption(
        "--firehosed-s3-endpoint-url",
        default=os.environ.get("FIREHOSED_S3_ENDPOINT_URL"),
        help="S3 server the firehosed fixtures deliver into (default: a temporary folder)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "firehosed(**options): keyword arguments of firehosed.testing.Firehosed for this test's fixture",
    )


def _options(request: pytest.FixtureRequest) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    url = request.config.getoption("--firehosed-s3-endpoint-url")
    if url:
        options["s3_endpoint_url"] = url
    marker = request.node.get_closest_marker("firehosed")
    if marker is not None and request.scope == "function":
        options.update(marker.kwargs)
    return options


@pytest.fixture
def firehosed(request: pytest.FixtureRequest) -> Iterator[Firehosed]:
    """A firehosed daemon for this test: fresh state, stopped (and its folder removed) after."""
    fh = Firehosed(**_options(request)).start()
    request.node.stash[_LOGS_KEY] = fh
    try:
        yield fh
    finally:
        fh.stop()


@pytest.fixture(scope="session")
def firehosed_session(request: pytest.FixtureRequest) -> Iterator[Firehosed]:
    """One firehosed daemon for the session (per xdist worker); streams persist between tests,
    so give each test its own stream names."""
    fh = Firehosed(**_options(request)).start()
    try:
        yield fh
    finally:
        fh.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    fh = item.stash.get(_LOGS_KEY, None)
    if fh is None:
        fh = getattr(item, "funcargs", {}).get("firehosed_session")
    if fh is not None and report.failed:
        report.sections.append(("firehosed log", fh.logs()))
