"""What a failure of the database (or of the disk under it) means to the caller: temporary.

A database that cannot be reached, is restarting, has no connection free, or cannot write
just now answers 503 `unavailable` with Retry-After (errors.Unavailable), so that clients retry
instead of treating it as a fault of the service (500). Anything not recognised here stays a
500. PostgreSQL is read by SQLSTATE, SQLite by its result code, the operating system by errno;
a connection lost mid-statement by SQLAlchemy's own judgement (`connection_invalidated`).
"""

from __future__ import annotations

import errno
import socket

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import errors

RETRY_SOON = 5  # seconds: a restart, a moment of overload

UNREACHABLE = "the database cannot be reached just now; retry in a few seconds"
TIMED_OUT = (
    "the request's query ran longer than this service allows and was stopped; nothing was "
    "stored: narrow the request (a shorter period, a smaller area) or retry later"
)
RETRY_LATER = 30  # seconds: a query stopped for running too long
DISK_FULL = (
    "the database's disk is full: nothing was stored, and what was stored before is kept; "
    "retry once an operator has freed space"
)
READ_ONLY = (
    "the database is read-only just now (its file or disk, or the server): nothing was "
    "stored, and what was stored before is kept; retry later"
)
DISK_ERROR = "the database's disk failed to read or write: nothing was stored; retry later"
RETRY_OPERATOR = 60  # seconds: waiting for an operator (space, permissions)
BUSY = "the database is busy; retry in a few seconds"
CANNOT_OPEN = "the database file cannot be opened just now; retry in a few seconds"

# PostgreSQL SQLSTATEs (Appendix A of its manual) by what they mean to the caller.
_PG_UNREACHABLE_CLASSES = ("08",)  # connection exception
_PG_UNREACHABLE = frozenset({"57P01", "57P02", "57P03"})  # shutdown, crash, starting up
_PG_TIMED_OUT = "57014"  # query_canceled: statement_timeout
_PG_DISK_FULL, _PG_READ_ONLY = "53100", "25006"  # disk_full, read_only_sql_transaction
_PG_BUSY = frozenset({"53300", "55P03", "40P01", "40001"})  # connections, lock, deadlock, serial

_SQLITE_WRITER_LOCK = "-writer"
_CANNOT_OPEN = (errno.ENOENT, errno.EACCES, errno.EPERM)

# SQLite primary result codes (sqlite3 exceptions' `sqlite_errorcode`, the low byte).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_INTERRUPT = 5, 6, 8, 9
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 13, 14


def unavailable(exc: BaseException) -> errors.Unavailable | None:
    """The 503 this failure is, or None when it is not a temporary one."""
    if isinstance(exc, errors.Unavailable):
        return exc
    if isinstance(exc, DisconnectionError | PoolTimeout):
        # The pool could not hand out a working connection in time: overloaded or down.
        return errors.Unavailable(BUSY if isinstance(exc, PoolTimeout) else UNREACHABLE)
    if isinstance(exc, DBAPIError):
        return _database(exc)
    if isinstance(exc, OSError):
        return _operating_system(exc)
    return None


def _database(exc: DBAPIError) -> errors.Unavailable | None:
    if exc.connection_invalidated:
        return errors.Unavailable(UNREACHABLE)
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith(_PG_UNREACHABLE_CLASSES) or sqlstate in _PG_UNREACHABLE:
            return errors.Unavailable(UNREACHABLE)
        if sqlstate in _PG_BUSY:
            return errors.Unavailable(BUSY)
        if sqlstate == _PG_TIMED_OUT:
            return errors.Unavailable(TIMED_OUT, RETRY_LATER)
        if sqlstate == _PG_DISK_FULL:
            return errors.Unavailable(DISK_FULL, RETRY_OPERATOR)
        if sqlstate == _PG_READ_ONLY:
            return errors.Unavailable(READ_ONLY, RETRY_OPERATOR)
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return errors.Unavailable(BUSY)
        if primary == _SQLITE_INTERRUPT:  # the statement ceiling (app/dbsqlite.py)
            return errors.Unavailable(TIMED_OUT, RETRY_LATER)
        if primary == _SQLITE_FULL:
            return errors.Unavailable(DISK_FULL, RETRY_OPERATOR)
        if primary == _SQLITE_READONLY:
            return errors.Unavailable(READ_ONLY, RETRY_OPERATOR)
        if primary == _SQLITE_IOERR:
            return errors.Unavailable(DISK_ERROR, RETRY_OPERATOR)
        if primary == _SQLITE_CANTOPEN:
            return errors.Unavailable(CANNOT_OPEN)
    return None


def _operating_system(exc: OSError) -> errors.Unavailable | None:
    """asyncpg raises the socket's own errors when it cannot connect; SQLite's writers open a
    lock file beside the database (app/dbsqlite.py), which fails as the database would."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return errors.Unavailable(UNREACHABLE)
    if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return errors.Unavailable(UNREACHABLE)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the database's or the photos' disk
        return errors.Unavailable(DISK_FULL, RETRY_OPERATOR)
    if exc.errno == errno.EROFS:
        return errors.Unavailable(READ_ONLY, RETRY_OPERATOR)
    if str(exc.filename or "").endswith(_SQLITE_WRITER_LOCK) and exc.errno in _CANNOT_OPEN:
        return errors.Unavailable(CANNOT_OPEN)
    return None
