"""Test support shared by the whole suite.

* :func:`eventually` (``tests.support.waiting``): wait for a condition, sync or
  async, with a deadline; the only way a test waits for something to happen.
* :func:`serve_app` / :func:`serve_runner` / :class:`ServerProcess`
  (``tests.support.servers``): servers bound to port 0, the port read back.
* :func:`run_cli` / :func:`run_cli_async` (``tests.support.cli``): a command
  line as a subprocess with a clean environment, a timeout and captured output.
* :class:`PgServer` / :func:`open_server` (``tests.support.postgres``): the
  PostgreSQL server for the session, the system one or a throwaway one
  (``$GLOBE_TEST_PG``); the ``pg_server`` fixture in ``tests/conftest.py``.
"""

from tests.support.cli import CliResult, cli_env, run_cli, run_cli_async
from tests.support.postgres import PgServer, PostgresUnavailable, open_server
from tests.support.servers import HUB_SERVING, Served, ServerProcess, serve_app, serve_runner
from tests.support.waiting import eventually, run_sync

__all__ = [
    "HUB_SERVING", "CliResult", "PgServer", "PostgresUnavailable", "Served", "ServerProcess",
    "cli_env", "eventually", "open_server", "run_cli", "run_cli_async", "run_sync",
    "serve_app", "serve_runner",
]  # fmt: skip
