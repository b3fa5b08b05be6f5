"""firehosed: Amazon Data Firehose on a VM you own and inside test suites.

The wheel installs the `firehosed` binary on PATH (`python -m firehosed` runs it too) and the
helpers for test suites: `firehosed.testing.Firehosed` and the pytest fixtures `firehosed` and
`firehosed_session` (docs/testing.md).
"""

from .testing import Firehosed, FirehosedError, FirehosedTestCase, find_binary

__all__ = ["Firehosed", "FirehosedError", "FirehosedTestCase", "find_binary"]
