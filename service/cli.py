"""The ``tickcast`` command line. Thin: each command parses, calls one library function, prints.

Exit codes: 0 success; 1 an error (one line on stderr); 2 a usage error; 3 the job finished but
some series failed (their reasons are in the output and in the ``series`` table); 70 an internal
error (a bug: one line, and the traceback with TICKCAST_DEBUG=1).

Imports are lazy: `tickcast --help` needs none of SQLAlchemy, pandas or NumPy, and `tickcast health`
(a container healthcheck, every few minutes) only SQLAlchemy and the config's checks.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Sequence

from tickcast import __version__

from .config import debug_enabled, load_settings
from .errors import MESSAGE_LIMIT, TickcastError, cut, exception_line, first_line
from .settings import Settings
from .status import FetchStatus, RunStatus, SeriesFit, Trigger
from .stopping import StopNow, stop_run_on_signals
from .tables import FORMATS, UNIT_FORMATS

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERNAL = 0, 1, 2, 3, 70


# User input quoted in an error (a path, an argument) may hold line breaks or other control
# characters; they are shown escaped so that the error stays one line.
_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029) if c != 0x09}


def one_line(message: str) -> str:
    return message.translate(_ESCAPES)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"tickcast: {one_line(message)} (see 'tickcast --help')\n")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, args.db)


def _open(settings: Settings):
    """The database of a write command: created or upgraded."""
    from .db import open_database

    return open_database(settings.db_url, busy_timeout=settings.busy_timeout)


def _open_existing(settings: Settings):
    """The database of a read command: never created; one line when there is none."""
    from .db import open_existing_database

    return open_existing_database(settings.db_url, busy_timeout=settings.busy_timeout)


def _err(message: str) -> None:
    print(cut(one_line(message), 2 * MESSAGE_LIMIT), file=sys.stderr, flush=True)


# --- commands -----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from .db import describe, make_engine, repair, upgrade
    from .run.ingest import sync_series

    settings = _settings(args)
    engine = make_engine(settings.db_url, busy_timeout=settings.busy_timeout)
    before, after = upgrade(engine)
    repaired = repair(engine)
    stored = sync_series(engine, settings.series)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    fixed = f"; schema drift repaired: {', '.join(repaired)}" if repaired else ""
    kept = len(stored) - len(settings.series)  # series no longer configured: inactive, their data kept
    others = f" ({kept} more no longer configured, their data kept)" if kept else ""
    print(
        f"database {describe(engine)}: {state} revision {after} (head){fixed}; "
        f"{len(settings.series)} series configured{others}"
    )
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from .run.ingest import ingest
    from .tables import render

    if args.full and not args.keys:
        _err("tickcast: --full replaces stored histories: name the series, e.g. tickcast ingest --full yahoo:AAPL")
        return EXIT_USAGE
    settings = _settings(args)
    engine = _open(settings)

    def progress(i: int, n: int, r) -> None:
        if n > 1:  # the reasons for failures follow the summary, one line each
            detail = f"{r.new_rows} new row(s)" if r.status == FetchStatus.OK else r.status
            _err(f"[{i}/{n}] {r.key}: {detail} ({r.seconds:.1f} s)")

    results = ingest(engine, settings, args.keys, progress=None if args.quiet else progress, full=args.full)
    rows = [
        dict(
            key=r.key,
            new_rows=r.new_rows,
            total_rows=r.total_rows,
            last_ts=r.last_ts,
            status=r.status if r.status != FetchStatus.OK or not r.note else f"{r.status} ({r.note})",
        )
        for r in results
    ]
    print(render(rows, ["key", "new_rows", "total_rows", "last_ts", "status"]))
    failed = [r for r in results if r.status == FetchStatus.FAILED]
    for r in failed:
        _err(f"tickcast: {r.error}")
    if failed and len(failed) == len(results):
        return EXIT_ERROR
    return EXIT_PARTIAL if failed else EXIT_OK


def _run_cycle(args: argparse.Namespace, engine, settings, **options):
    """One cycle for ``run`` or ``backfill``: progress on stderr unless --quiet, stopped by SIGTERM
    or SIGINT as the run's stop rules say."""
    import threading

    from .run.cycle import run_cycle

    stop = threading.Event()
    stop_run_on_signals(stop, lambda line: _err(f"tickcast: {line}"))
    progress = None if args.quiet else (lambda message, problem=False: _err(message))
    return run_cycle(engine, settings, progress=progress, stop=stop, **options)


def cmd_run(args: argparse.Namespace) -> int:
    from .queries import NothingStored, forecast_columns, latest_forecasts
    from .tables import render

    settings = _settings(args)
    engine = _open(settings)
    summary = _run_cycle(args, engine, settings, trigger=Trigger.MANUAL, keys=args.keys or None)
    failed = [o for o in summary.outcomes if o.failed]
    try:
        keys = {o.key for o in summary.outcomes}
        rows = [r for r in latest_forecasts(engine) if r["series_key"] in keys]
        print(render(rows, forecast_columns(rows), formatters=UNIT_FORMATS) if rows else "no forecasts yet")
    except NothingStored:
        print("no forecasts yet")
    counts = (
        f"{summary.count(lambda o: o.fit == SeriesFit.TRAINED)} trained, "
        f"{summary.count(lambda o: o.fit == SeriesFit.UP_TO_DATE)} up to date, "
        f"{summary.count(lambda o: o.fit == SeriesFit.SKIPPED and not o.failed)} skipped, {len(failed)} failed"
    )
    print(f"run {summary.run_id}: {summary.status} ({counts}) in {summary.seconds:.1f} s")
    for o in failed:
        _err(f"tickcast: {o.error}")
    if summary.stopped:
        _err(f"tickcast: run {summary.run_id} stopped early; finished series are stored, the next run does the rest")
        return EXIT_ERROR
    return {RunStatus.OK: EXIT_OK, RunStatus.PARTIAL: EXIT_PARTIAL}.get(summary.status, EXIT_ERROR)


def cmd_backfill(args: argparse.Namespace) -> int:
    from .run.backfill import Backfill
    from .stamps import canonical

    try:
        since = canonical(args.since) if args.since else None
    except ValueError:
        _err(
            f"tickcast: --since must be a date YYYY-MM-DD (or, for hourly series, YYYY-MM-DD HH:MM), got {args.since!r}"
        )
        return EXIT_USAGE
    request = Backfill(origins=args.origins, since=since)
    settings = _settings(args)
    summary = _run_cycle(args, _open(settings), settings, keys=args.keys, backfill=request)
    failed = [o for o in summary.outcomes if o.failed]
    trained = summary.count(lambda o: o.fit == SeriesFit.TRAINED)
    print(
        f"backfill run {summary.run_id}: {summary.status} ({trained} series backfilled, "
        f"{len(summary.outcomes) - trained - len(failed)} had nothing left to fill, {len(failed)} failed) "
        f"in {summary.seconds:.1f} s; see `tickcast accuracy`"
    )
    for o in failed:
        _err(f"tickcast: {o.error}")
    return {RunStatus.OK: EXIT_OK, RunStatus.PARTIAL: EXIT_PARTIAL}.get(summary.status, EXIT_ERROR)


def cmd_serve(args: argparse.Namespace) -> int:
    from .stopping import StopDuringStartup, stop_start_up_on_signals

    stop_start_up_on_signals()  # before the imports: SIGTERM stops serve at any point of its start-up
    logging.getLogger("tickcast").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        from .scheduler import serve

        return serve(_settings(args), run_now=args.run_now)
    except StopDuringStartup as stopped:
        logging.getLogger("tickcast.serve").info("received %s during start-up: stopped before serving", stopped)
        return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    from .queries import health

    settings = _settings(args)
    engine = _open_existing(settings)
    ok, message = health(engine, settings)
    (print if ok else _err)(message if ok else f"tickcast: {message}")
    return EXIT_OK if ok else EXIT_ERROR


def cmd_forecasts(args: argparse.Namespace) -> int:
    from .queries import forecast_columns, latest_forecasts
    from .tables import render

    engine = _open_existing(_settings(args))
    rows = latest_forecasts(engine, args.key)
    if args.format == "table":
        print(render(rows, forecast_columns(rows), formatters=UNIT_FORMATS))
    else:
        print(render(rows, [c for c in rows[0] if c != "levels"], args.format))
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from .queries import loss_history
    from .tables import render

    engine = _open_existing(_settings(args))
    history = loss_history(engine, args.key)
    if args.format == "table":
        print(history.describe(args.key))
    print(render(history.rows, ["epoch", "train_loss", "val_loss", "grad_norm", "clip_fraction"], args.format))
    return EXIT_OK


def cmd_accuracy(args: argparse.Namespace) -> int:
    from .accuracy import BY, accuracy
    from .queries import NothingStored
    from .tables import render

    engine = _open_existing(_settings(args))
    try:
        rows, columns = accuracy(engine, args.key, by=args.by, model=args.model)
    except NothingStored as exc:
        if args.format == "table":
            raise
        # A pipeline reading csv or json gets a document it can parse (no rows yet); the reason on stderr.
        _err(f"tickcast: {exc}")
        rows, columns = [], BY[args.by]
    print(render(rows, columns, args.format, formatters=UNIT_FORMATS))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_series, require_matplotlib

    settings = _settings(args)
    require_matplotlib()
    path = plot_series(_open_existing(settings), args.key, args.output, points=args.points)
    print(f"wrote {path}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import backup_sqlite

    result = backup_sqlite(_settings(args).db_url, args.file)
    runs = "" if result.runs is None else f", {result.runs} run(s)"
    where = "standard output" if result.destination == "-" else result.destination
    if args.quiet:
        return EXIT_OK
    # With "-" the copy itself is on stdout: the summary goes to stderr.
    print(
        f"backed up {result.source} to {where} ({result.size_bytes / 1e6:.1f} MB{runs})",
        file=sys.stderr if result.destination == "-" else sys.stdout,
    )
    return EXIT_OK


def cmd_browse(args: argparse.Namespace) -> int:
    import json
    import os
    import tempfile

    from .browse import datasette_launch, exposure_warning

    def say(line: str) -> None:
        if not args.quiet:
            _err(f"tickcast: {line}")

    launch = datasette_launch(_settings(args), args.host, args.port, allow_sql=args.allow_sql, wait=args.wait, say=say)
    warning = exposure_warning(args.host, args.port)
    if warning:
        _err(f"tickcast: warning: {warning}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Datasette reads its metadata from stdin (--metadata -): an unlinked temporary file, nothing left behind.
    with tempfile.TemporaryFile("w+b") as metadata:
        metadata.write(json.dumps(launch.metadata).encode())
        metadata.seek(0)
        os.dup2(metadata.fileno(), 0)
    os.execv(launch.argv[0], launch.argv)
    return EXIT_OK  # pragma: no cover (execv does not return)


# --- parser -------------------------------------------------------------------------------------


FORMAT_HELP = "table (default, for people), csv or json (for programs: the stored numbers, unrounded)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--db",
        metavar="URL",
        default=default,
        help="database URL (default: $TICKCAST_DB_URL, else sqlite:///<data_dir>/tickcast.db, where <data_dir> is "
        "$TICKCAST_DATA_DIR or the config's service.data_dir: the working directory by default)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: $TICKCAST_CONFIG, else the packaged tickcast.toml)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="no progress output",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="tickcast",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Time-series forecasting service: ingest series, train a NumPy RNN and statistical "
        "challengers per series or across series, store their combined forecast (and each model's) in SQL tables.",
        epilog=textwrap.dedent("""\
            examples:
              tickcast run                       ingest, train and forecast every series now
              tickcast forecasts                 the latest forecasts as a table
              tickcast serve                     run daily on the configured schedule
              tickcast ingest yahoo:SPY sample:sp500
              tickcast --db sqlite:///data/tc.db --config my.toml run
            """),
    )
    parser.add_argument("--version", action="version", version=f"tickcast {__version__}")
    _add_common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func, help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p, suppress=True)
        p.set_defaults(func=func)
        return p

    command("init", cmd_init, "create the database or upgrade it to the newest schema", "tickcast init")
    p = command(
        "ingest",
        cmd_ingest,
        "fetch new observations for the watchlist (or the given series)",
        "tickcast ingest yahoo:AAPL fred:DGS10     (or: tickcast ingest --full yahoo:AAPL)",
    )
    p.add_argument("keys", nargs="*", metavar="KEY", help="series keys such as yahoo:SPY (default: all active)")
    p.add_argument(
        "--full",
        action="store_true",
        help="re-fetch the whole history of the given series and replace what is stored (picks up "
        "rows removed at the source and revisions older than sources.overlap_days)",
    )
    p = command(
        "run",
        cmd_run,
        "one full cycle now: ingest, train, backtest, forecast, store",
        "tickcast run            (or: tickcast run sample:sp500)",
    )
    p.add_argument("keys", nargs="*", metavar="KEY", help="only these series (default: all active)")
    p = command(
        "serve", cmd_serve, "the scheduler daemon: a run on the configured cron schedule", "tickcast serve --run-now"
    )
    p.add_argument("--run-now", action="store_true", help="start a run immediately, then follow the schedule")
    command("health", cmd_health, "exit 0 only if the last completed run is recent enough", "tickcast health")
    p = command(
        "forecasts",
        cmd_forecasts,
        "the latest forecasts (all series, or one)",
        "tickcast forecasts yahoo:SPY --format csv",
    )
    p.add_argument("key", nargs="?", metavar="KEY", help="only this series, e.g. sample:sp500 (default: all)")
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p = command(
        "accuracy",
        cmd_accuracy,
        "how past forecasts did against what happened: per series and step "
        "(or month, or model): MAE, RMSE, MAPE in percent, the naive forecast's MAE, skill, interval coverage, Winkler "
        "score",
        "tickcast accuracy sample:sp500 --by month --format csv    tickcast accuracy --by model",
    )
    p.add_argument("key", nargs="?", metavar="KEY", help="only this series, e.g. sample:sp500 (default: all)")
    p.add_argument(
        "--by",
        choices=("step", "month", "model"),
        default="step",
        help="one row per series and step (default), per series and target month, or per series and model "
        "(every model tickcast combines, scored on the same targets: which wins on your series)",
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        default=None,
        help="the model whose forecasts are scored: published (the default: the forecast tickcast publishes), "
        "one it combines (rnn, ets, theta ...), or all",
    )
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p = command("history", cmd_history, "the loss history of a series' latest fit", "tickcast history sample:sp500")
    p.add_argument("key", metavar="KEY", help="the series, e.g. sample:sp500")
    p.add_argument("--format", choices=FORMATS, default="table", help=FORMAT_HELP)
    p = command(
        "plot",
        cmd_plot,
        "draw the recent series, its forecast and interval, and the loss curve",
        "tickcast plot sample:sp500 -o sp500.png",
    )
    p.add_argument("key", metavar="KEY", help="the series, e.g. sample:sp500")
    p.add_argument("-o", "--output", metavar="FILE.png", required=True, help="the PNG to write (its folder must exist)")
    p.add_argument(
        "--points",
        type=_positive_int,
        default=None,
        help="how many recent observations the main panel zooms on (default: four horizons, at least 30; "
        "the whole history is drawn small beside it)",
    )
    p = command(
        "backfill",
        cmd_backfill,
        "the forecasts tickcast would have published at past origins, each from the data up to its origin only, "
        "stored marked as backfilled: the accuracy ledger, the plot and the canned queries score them at once",
        "tickcast backfill --origins 10    tickcast backfill sample:sp500 --since 2018-01-01",
    )
    p.add_argument("keys", nargs="*", metavar="KEY", help="only these series (default: all active)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--origins", type=_positive_int, metavar="N", help="the newest N origins, one horizon apart, per series"
    )
    when.add_argument(
        "--since",
        metavar="DATE",
        help="every origin since DATE (YYYY-MM-DD; YYYY-MM-DD HH:MM for hourly series), one horizon apart",
    )
    p = command(
        "backup",
        cmd_backup,
        "a consistent copy of the SQLite database, also while the service runs (PostgreSQL: use pg_dump)",
        "tickcast backup tickcast-copy.db    (in Docker: docker compose exec -T tickcast "
        "tickcast backup - > tickcast.db)",
    )
    p.add_argument("file", metavar="FILE", help="the new file to write (it must not exist); - for standard output")
    p = command(
        "browse",
        cmd_browse,
        "browse the tables read-only in Datasette, with canned queries and charts (needs the browse extra)",
        "tickcast browse --port 8001",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    p.add_argument(
        "--allow-sql",
        action="store_true",
        help="let visitors run SQL of their own, not only the canned queries (off by default: no authentication)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for the database to be created (a container started beside the service); "
        "default 0: without a database, browse says so and exits 1",
    )
    return parser


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
    )
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
    except KeyboardInterrupt:
        _err("tickcast: interrupted")
        return 130
    except StopNow as exc:  # a stop signal that could not wait (the run is closed as failed, with it)
        _err(f"tickcast: {exc}")
        return EXIT_ERROR
    except MemoryError:  # not a bug: the data outgrew the memory (a series alone fails with its own reason)
        _err("tickcast: out of memory (lower model.max_points or service.workers, or allow more memory)")
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `tickcast forecasts | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if debug_enabled():
            raise
        if _is_database_error(exc):
            reason = first_line(getattr(exc, "orig", None) or exc)
            _err(f"tickcast: database error: {reason}")
            return EXIT_ERROR
        if isinstance(exc, OSError):
            _err(f"tickcast: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
            return EXIT_ERROR
        _err(f"tickcast: internal error: {exception_line(exc)[:200]} (set TICKCAST_DEBUG=1 for the traceback)")
        return EXIT_INTERNAL


def _is_database_error(exc: BaseException) -> bool:
    sqlalchemy = sys.modules.get("sqlalchemy")  # not imported yet: it cannot be one of its errors
    return sqlalchemy is not None and isinstance(exc, sqlalchemy.exc.SQLAlchemyError)


if __name__ == "__main__":
    sys.exit(main())
