"""The ``tickcast`` command line. Thin: each command parses, calls one library function, prints.

Exit codes: 0 success; 1 an error (one line on stderr); 2 a usage error; 3 the job finished but
some series failed (their reasons are in the output and in the ``series`` table).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from typing import Sequence

import sqlalchemy as sa

from . import __version__
from .config import Settings, debug_enabled, load_settings
from .errors import TickcastError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tickcast: {message} (see 'tickcast --help')\n")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, args.db)


def _open(settings: Settings):
    from .db import open_database

    return open_database(settings.db_url)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- commands -----------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace) -> int:
    from .db import describe, make_engine, upgrade
    from .ingest import sync_series

    settings = _settings(args)
    engine = make_engine(settings.db_url)
    before, after = upgrade(engine)
    ids = sync_series(engine, settings)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    print(f"database {describe(engine)}: {state} revision {after} (head); {len(ids)} series configured")
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import ingest
    from .tables import render

    settings = _settings(args)
    engine = _open(settings)

    def progress(i: int, n: int, r) -> None:
        if n > 1:  # the reasons for failures follow the summary, one line each
            detail = f"{r.new_rows} new row(s)" if r.status == "ok" else "failed"
            _err(f"[{i}/{n}] {r.key}: {detail} ({r.seconds:.1f} s)")

    results = ingest(engine, settings, args.keys, progress=None if args.quiet else progress)
    rows = [dict(key=r.key, new_rows=r.new_rows, total_rows=r.total_rows, last_ts=r.last_ts,
                 status=r.status if r.status != "ok" or not r.note else f"ok ({r.note})")
            for r in results]
    print(render(rows, ["key", "new_rows", "total_rows", "last_ts", "status"]))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        _err(f"tickcast: {r.error}")
    if failed and len(failed) == len(results):
        return EXIT_ERROR
    return EXIT_PARTIAL if failed else EXIT_OK


# --- parser -------------------------------------------------------------------------------------

def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", metavar="URL", default=default,
                        help="database URL (default: $TICKCAST_DB_URL, else sqlite:///<data_dir>/tickcast.db)")
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="config file (default: $TICKCAST_CONFIG, else the packaged tickcast.toml)")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="no progress output")


def build_parser() -> Parser:
    parser = Parser(
        prog="tickcast",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Time-series forecasting service: ingest series, train a NumPy RNN per series, "
                    "store forecasts in SQL tables.",
        epilog=textwrap.dedent("""\
            examples:
              tickcast init                      create or upgrade the database
              tickcast ingest                    fetch every series in the watchlist
              tickcast ingest yahoo:SPY sample:sp500
              tickcast --db sqlite:///data/tc.db --config my.toml ingest
            """),
    )
    parser.add_argument("--version", action="version", version=f"tickcast {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func, help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(p, suppress=True)
        p.set_defaults(func=func)
        return p

    command("init", cmd_init, "create the database or upgrade it to the newest schema", "tickcast init")
    p = command("ingest", cmd_ingest, "fetch new observations for the watchlist (or the given series)",
                "tickcast ingest yahoo:AAPL fred:DGS10")
    p.add_argument("keys", nargs="*", metavar="KEY", help="series keys such as yahoo:SPY (default: all active)")
    return parser


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # yfinance logs what it also raises; its exceptions become our one-line reasons.
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return args.func(args)
    except TickcastError as exc:
        _err(f"tickcast: {exc}")
        return EXIT_ERROR
    except sa.exc.SQLAlchemyError as exc:
        if debug_enabled():
            raise
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        _err(f"tickcast: database error: {reason}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("tickcast: interrupted")
        return 130
    except OSError as exc:
        if debug_enabled():
            raise
        _err(f"tickcast: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_ERROR
    except Exception as exc:
        if debug_enabled():
            raise
        _err(f"tickcast: internal error: {type(exc).__name__}: {exc} (set TICKCAST_DEBUG=1 for the traceback)")
        return 70


if __name__ == "__main__":
    sys.exit(main())
