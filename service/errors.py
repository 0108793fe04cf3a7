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


# Quoted input in a message is cut short: a 5 MB cell or a whole line of some file must not become
# a 10 MB error line, nor land whole in `series.last_error` (which Datasette serves).
QUOTE_LIMIT = 60
MESSAGE_LIMIT = 1000  # a stored or printed reason, whatever it quotes


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of ``value`` as text, cut to about ``limit`` characters: for quoting input."""
    text = str(value)
    return repr(cut(text, limit)) if len(text) > limit else repr(text)


def mask_url(url: str) -> str:
    """A URL fit to quote: its user name and password (``user:secret@``) and query string (``?token=``)
    replaced by ``***``. Text without a scheme (``scheme://``) is returned unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    path, query, _ = path.partition("#")[0].partition("?")
    if not slash and "?" in netloc:
        netloc, query, _ = netloc.partition("?")
    return f"{scheme}://{netloc}{slash}{path}" + ("?***" if query else "")
