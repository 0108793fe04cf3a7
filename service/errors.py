"""Errors that reach the user as one clear line (the CLI prints ``str(error)``)."""


class TickcastError(Exception):
    """Base for errors that mean bad input or an unavailable resource, not a bug."""


class ConfigError(TickcastError):
    """A missing, unknown or malformed setting; the message names the key."""


class SourceError(TickcastError):
    """A source could not deliver data; the message is the reason stored in `series.last_error`."""


class UnknownSeries(TickcastError):
    """A series key that is not in the watchlist."""


class DatabaseError(TickcastError):
    """The database cannot be opened, upgraded or written."""


class NoDatabase(DatabaseError):
    """A read command pointed at a database that does not exist (read commands never create one)."""


class SchemaError(DatabaseError):
    """The database's schema is not what the migrations made: an untrustworthy ``alembic_version``,
    or tables, columns or views missing that tickcast cannot recreate."""


def first_line(exc: BaseException, default: str = "") -> str:
    """The first line of an exception's message (SQLAlchemy's errors go on with the statement and
    its parameters; a user sees one line), or ``default`` when the message is empty."""
    return (str(exc).splitlines() or [""])[0] or default


def exception_line(exc: BaseException) -> str:
    """``TypeName: first line of the message``, or the type's name alone: an error in one line."""
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
