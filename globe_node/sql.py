"""Statements of the busy paths: declared in SQLAlchemy Core, compiled once for SQLite,
run on the DB-API cursor of the writer's or the reader's connection.

A send or a receive runs about twenty statements.  Through ``Connection.execute`` a
statement built once still costs about 12 µs of Python before SQLite sees it (the
execution context, parameter processing, the result wrapper) and more under load, on a
thread that holds the GIL the event loop needs; the same statement on the ``sqlite3``
cursor costs about 1 µs.  :class:`Sql` keeps the declaration in Core (tables, columns
and types stay the single source of truth) and skips that layer where the connection is
the synchronous ``sqlite3`` one (:func:`globe_io.database.make_writer_engine`).  On any
other connection (an ORM session's, through ``AsyncSession.run_sync``) it runs the Core
statement as usual, so a shared step gives the same result on both paths.

What the DB-API does not do that Core would: result processing (a Boolean column reads
as 0 or 1; none of the columns read here is Boolean) and Python-side column defaults,
which :class:`Sql` supplies itself for inserts (scalar defaults only; a column with a
callable default must be given).  Expanding ``IN`` parameters are not supported.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.expression import Executable

__all__ = ["Sql"]

_DIALECT: Final = sqlite.dialect(paramstyle="named")


class Sql:
    """One statement, compiled once; run with a mapping of parameters."""

    __slots__ = ("_defaults", "_row", "stmt", "text")

    def __init__(self, stmt: Executable) -> None:
        query: Any = stmt
        self.stmt = query
        compiled = query.compile(dialect=_DIALECT)
        if any(b.expanding for b in compiled.binds.values()):
            raise ValueError("an expanding IN parameter cannot be compiled once")
        self.text = str(compiled)
        defaults: dict[str, Any] = dict(compiled.params)
        if isinstance(stmt, Insert):
            for column in stmt.table.columns:
                default: Any = column.default
                if default is not None and default.is_scalar and defaults.get(column.key) is None:
                    defaults[column.key] = default.arg
        self._defaults = defaults
        columns = getattr(stmt, "exported_columns", None)
        names = [c.key for c in columns] if columns is not None else []
        self._row: Any = collections.namedtuple("Row", names, rename=True) if names else None

    def _raw(self, c: Connection) -> Any:
        """The ``sqlite3`` cursor of ``c``, or None when it is not that driver's."""
        if c.dialect.driver != "pysqlite":
            return None
        return c.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**self._defaults, **params}

    def _execute(self, cur: Any, params: Mapping[str, Any] | None) -> None:
        try:
            cur.execute(self.text, self._params(params or {}))
        except sqlite3.Error as exc:
            raise _wrapped(self.text, exc) from exc

    def rows(self, c: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, as named tuples."""
        cur = self._raw(c)
        if cur is None:
            return list(c.execute(self.stmt, dict(params or {})).all())
        self._execute(cur, params)
        row = self._row
        assert row is not None, "a statement that returns no rows"  # noqa: S101
        return [row._make(r) for r in cur.fetchall()]

    def first(self, c: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        cur = self._raw(c)
        if cur is None:
            return c.execute(self.stmt, dict(params or {})).first()
        self._execute(cur, params)
        found = cur.fetchone()
        assert self._row is not None, "a statement that returns no rows"  # noqa: S101
        return None if found is None else self._row._make(found)

    def scalar(self, c: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        cur = self._raw(c)
        if cur is None:
            return c.execute(self.stmt, dict(params or {})).scalar()
        self._execute(cur, params)
        found = cur.fetchone()
        return None if found is None else found[0]

    def scalars(self, c: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The first column of every row."""
        cur = self._raw(c)
        if cur is None:
            return list(c.execute(self.stmt, dict(params or {})).scalars())
        self._execute(cur, params)
        return [r[0] for r in cur.fetchall()]

    def run(self, c: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run a change; the number of rows it touched."""
        cur = self._raw(c)
        if cur is None:
            return int(c.execute(self.stmt, dict(params or {})).rowcount or 0)
        self._execute(cur, params)
        return int(cur.rowcount)

    def many(self, c: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run a change once per parameter mapping."""
        if not params:
            return
        cur = self._raw(c)
        if cur is None:
            c.execute(self.stmt, [dict(p) for p in params])
            return
        try:
            cur.executemany(self.text, [self._params(p) for p in params])
        except sqlite3.Error as exc:
            raise _wrapped(self.text, exc) from exc


def _wrapped(text: str, exc: sqlite3.Error) -> StatementError:
    """The driver's error as SQLAlchemy raises it (``OperationalError``,
    ``IntegrityError`` ...), so that callers handle both paths alike; without the
    parameters, which may hold message bytes."""
    return DBAPIError.instance(text, None, exc, sqlite3.Error)
