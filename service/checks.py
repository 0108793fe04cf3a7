"""Checks shared by the config sections and the watchlist: types, numbers, file names. Each failure
is one ConfigError line naming the setting."""

from __future__ import annotations

import difflib
import math
from typing import Any, overload

from .errors import ConfigError


def unknown_setting(dotted: str, known, note: str = "") -> ConfigError:
    """The error for a key no section has: the known keys, ``note``, and the likeliest one meant
    (``dotted`` is ``section.key``, and the key is compared whole: a quoted TOML key may hold dots)."""
    key = dotted.partition(".")[2]
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown setting {dotted!r} (known: {', '.join(names)}{note}){hint}")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def check_type(dotted: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"setting {dotted!r} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


@overload
def file_name(dotted: str, value: str) -> str: ...
@overload
def file_name(dotted: str, value: None) -> None: ...
def file_name(dotted: str, value: str | None) -> str | None:
    """A path or URL: TOML can spell a NUL (\\u0000), which no file name or URL may hold."""
    if value is not None and "\x00" in value:
        raise ConfigError(f"setting {dotted!r} must not contain a NUL character, got {value!r}")
    return value


def positive(dotted: str, value: float | int | None, allow_zero: bool = False, most: float | None = None) -> None:
    # TOML has nan and inf: neither is a timeout, an age or a count (nan even passed "< 0" checks)
    if value is not None and not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        finite = "" if math.isfinite(value) else "a finite number "
        raise ConfigError(f"setting {dotted!r} must be {finite}{'>= 0' if allow_zero else '> 0'}, got {value!r}")
    # Upper bounds: a value past them is a typo (an hour-long timeout, a million retries), and it
    # would otherwise load fine and hang or exhaust memory much later.
    if value is not None and most is not None and value > most:
        raise ConfigError(f"setting {dotted!r} must be at most {most:g}, got {value!r}")
