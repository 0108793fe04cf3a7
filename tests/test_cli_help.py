"""What `tickcast --help` and `tickcast COMMAND --help` say: the help is part of the interface.

Every command is listed with its one-line description, every option with its metavar and its
help, the defaults the help states are the parser's defaults, and every example in a command's
help is a command line the parser accepts and sends to that command. The texts below are the
reviewed copy: a change to the help shows up here and is made on purpose.
"""

from __future__ import annotations

import re

import pytest

from tickcast.service import cli
from tickcast.service.cli import main

COMMON = [
    "[--db URL] [--config FILE] [-q]",
    "--db URL database URL (default: $TICKCAST_DB_URL, else sqlite:///<data_dir>/tickcast.db, where <data_dir> is "
    "$TICKCAST_DATA_DIR or the config's service.data_dir: the working directory by default)",
    "--config FILE config file (default: $TICKCAST_CONFIG, else the packaged tickcast.toml)",
    "-q, --quiet no progress output",
]
FORMAT = (
    "--format {table,csv,json} table (default, for people), csv or json (for programs: the stored numbers, unrounded)"
)

# command -> (description, usage after the common options, the help of each argument)
COMMANDS: dict[str, tuple[str, str, list[str]]] = {
    "init": ("create the database or upgrade it to the newest schema", "", []),
    "ingest": (
        "fetch new observations for the watchlist (or the given series)",
        "[--full] [KEY ...]",
        [
            "KEY series keys such as yahoo:SPY (default: all active)",
            "--full re-fetch the whole history of the given series and replace what is stored (picks up rows "
            "removed at the source and revisions older than sources.overlap_days)",
        ],
    ),
    "run": (
        "one full cycle now: ingest, train, backtest, forecast, store",
        "[KEY ...]",
        ["KEY only these series (default: all active)"],
    ),
    "serve": (
        "the scheduler daemon: a run on the configured cron schedule",
        "[--run-now]",
        ["--run-now start a run immediately, then follow the schedule"],
    ),
    "health": ("exit 0 only if the last completed run is recent enough", "", []),
    "forecasts": (
        "the latest forecasts (all series, or one)",
        "[--format {table,csv,json}] [KEY]",
        ["KEY only this series, e.g. sample:sp500 (default: all)", FORMAT],
    ),
    "accuracy": (
        "how past forecasts did against what happened: per series and step (or month, or model): MAE, RMSE, "
        "MAPE in percent, the naive forecast's MAE, skill, interval coverage, Winkler score",
        "[--by {step,month,model}] [--model NAME] [--format {table,csv,json}] [KEY]",
        [
            "KEY only this series, e.g. sample:sp500 (default: all)",
            "--by {step,month,model} one row per series and step (default), per series and target month, or per "
            "series and model (every model tickcast combines, scored on the same targets: which wins on your series)",
            "--model NAME the model whose forecasts are scored: published (the default: the forecast tickcast "
            "publishes), one it combines (rnn, ets, theta ...), or all",
            FORMAT,
        ],
    ),
    "history": (
        "the loss history of a series' latest fit",
        "[--format {table,csv,json}] KEY",
        ["KEY the series, e.g. sample:sp500", FORMAT],
    ),
    "plot": (
        "draw the recent series, its forecast and interval, and the loss curve",
        "-o FILE.png [--points POINTS] KEY",
        [
            "KEY the series, e.g. sample:sp500",
            "-o FILE.png, --output FILE.png the PNG to write (its folder must exist)",
            "--points POINTS how many recent observations the main panel zooms on (default: four horizons, at "
            "least 30; the whole history is drawn small beside it)",
        ],
    ),
    "backfill": (
        "the forecasts tickcast would have published at past origins, each from the data up to its origin only, "
        "stored marked as backfilled: the accuracy ledger, the plot and the canned queries score them at once",
        "(--origins N | --since DATE) [KEY ...]",
        [
            "KEY only these series (default: all active)",
            "--origins N the newest N origins, one horizon apart, per series",
            "--since DATE every origin since DATE (YYYY-MM-DD; YYYY-MM-DD HH:MM for hourly series), one horizon apart",
        ],
    ),
    "backup": (
        "a consistent copy of the SQLite database, also while the service runs (PostgreSQL: use pg_dump)",
        "FILE",
        ["FILE the new file to write (it must not exist); - for standard output"],
    ),
    "browse": (
        "browse the tables read-only in Datasette, with canned queries and charts (needs the browse extra)",
        "[--host HOST] [--port PORT] [--allow-sql] [--wait SECONDS]",
        [
            "--host HOST address to listen on (default 127.0.0.1)",
            "--port PORT port (default 8001)",
            "--allow-sql let visitors run SQL of their own, not only the canned queries (off by default: no "
            "authentication)",
            "--wait SECONDS wait this long for the database to be created (a container started beside the "
            "service); default 0: without a database, browse says so and exits 1",
        ],
    ),
}
EXAMPLES = {
    "init": ["init"],
    "ingest": ["ingest yahoo:AAPL fred:DGS10", "ingest --full yahoo:AAPL"],
    "run": ["run", "run sample:sp500"],
    "serve": ["serve --run-now"],
    "health": ["health"],
    "forecasts": ["forecasts yahoo:SPY --format csv"],
    "accuracy": ["accuracy sample:sp500 --by month --format csv", "accuracy --by model"],
    "history": ["history sample:sp500"],
    "plot": ["plot sample:sp500 -o sp500.png"],
    "backfill": ["backfill --origins 10", "backfill sample:sp500 --since 2018-01-01"],
    "backup": ["backup tickcast-copy.db", "backup -"],
    "browse": ["browse --port 8001"],
}


def flat(text: str) -> str:
    return " ".join(text.split())


def help_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per help: the texts compare without line breaks


def examples(help_text: str) -> list[str]:
    """The command lines an epilog shows, without the program name: examples are set apart by three
    or more spaces, `(or: ...)` or a shell around them (`docker compose exec -T tickcast tickcast ...`)."""
    found = []
    for line in help_text.split("example", 1)[1].splitlines()[1:]:
        for part in re.split(r"\s{3,}", line.strip()):
            for m in re.finditer(r"(?<![\w.-])tickcast((?: (?!tickcast(?:\s|$))[^\s()>]+)+)", part):
                found.append(m.group(1).strip())
    return found


def test_the_overview_lists_every_command_with_its_description(capsys):
    out = help_of(["--help"], capsys)
    assert out.startswith("usage: tickcast [-h] [--version] [--db URL] [--config FILE] [-q] COMMAND ...\n")
    assert (
        "Time-series forecasting service: ingest series, train a NumPy RNN and statistical challengers per series "
        "or across series, store their combined forecast (and each model's) in SQL tables." in out
    )
    listed = [line.split(None, 1) for line in out.split("COMMAND\n", 1)[1].split("\n\n")[0].splitlines()]
    assert [(name, flat(text)) for name, text in listed] == [(n, d) for n, (d, _, _) in COMMANDS.items()]
    for text in COMMON[1:]:
        assert text in flat(out)
    assert "--version show program's version number and exit" in flat(out)
    assert out.rstrip().endswith(
        "examples:\n"
        "  tickcast run                       ingest, train and forecast every series now\n"
        "  tickcast forecasts                 the latest forecasts as a table\n"
        "  tickcast serve                     run daily on the configured schedule\n"
        "  tickcast ingest yahoo:SPY sample:sp500\n"
        "  tickcast --db sqlite:///data/tc.db --config my.toml run"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_says_what_it_does_its_options_and_an_example(command, capsys):
    description, usage, arguments = COMMANDS[command]
    out = help_of([command, "--help"], capsys)
    first, rest = out.split("\n\n", 1)
    assert flat(first) == flat(f"usage: tickcast {command} [-h] {COMMON[0]} {usage}")
    assert rest.startswith(description + "\n\n")
    for text in [*COMMON[1:], *arguments]:
        assert text in flat(rest), text
    assert "\nexample:\n  tickcast " in out
    assert examples(out) == EXAMPLES[command]
    if command == "backup":  # the example for a container, flags and all
        assert "(in Docker: docker compose exec -T tickcast tickcast backup - > tickcast.db)" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_is_a_command_line_the_parser_sends_to_its_command(command, capsys):
    for example in examples(help_of([command, "--help"], capsys)):
        args = cli.build_parser().parse_args(example.split())
        assert args.command == command and args.func is getattr(cli, f"cmd_{command}")
    overview = help_of(["--help"], capsys).split("examples:\n", 1)[1]
    for line in overview.splitlines():
        argv = re.split(r"\s{3,}", line.strip())[0].split()[1:]
        assert cli.build_parser().parse_args(argv).func is getattr(cli, f"cmd_{argv[-1 if '--db' in argv else 0]}")


def test_the_defaults_the_help_states_are_the_parsers():
    parse = cli.build_parser().parse_args
    browse = parse(["browse"])
    assert (browse.host, browse.port, browse.allow_sql, browse.wait) == ("127.0.0.1", 8001, False, 0)
    assert browse.quiet is False
    assert (browse.db, browse.config) == (None, None)
    for command in ("forecasts", "accuracy"):
        assert parse([command]).format == "table" and parse([command]).key is None
    assert parse(["history", "k"]).format == "table"
    accuracy = parse(["accuracy"])
    assert (accuracy.by, accuracy.model) == ("step", None)
    assert parse(["plot", "k", "-o", "x.png"]).points is None
    assert parse(["ingest"]).keys == [] and parse(["ingest"]).full is False
    assert parse(["run"]).keys == [] and parse(["serve"]).run_now is False
    assert parse(["backfill", "--since", "2020-01-01"]).origins is None
    assert parse(["backfill", "--origins", "3"]).since is None


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_common_options_go_before_or_after_the_command(where):
    options = ["--db", "sqlite:///x.db", "--config", "c.toml", "-q"]
    argv = [*options, "health"] if where == "before" else ["health", *options]
    args = cli.build_parser().parse_args(argv)
    assert (args.db, args.config, args.quiet) == ("sqlite:///x.db", "c.toml", True)
    args = cli.build_parser().parse_args(["--db", "sqlite:///a.db", "health", "--db", "sqlite:///b.db"])
    assert args.db == "sqlite:///b.db"  # after the command wins


def test_version(capsys):
    from tickcast import __version__

    assert help_of(["--version"], capsys) == f"tickcast {__version__}\n"


def test_a_port_is_a_number(capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:  # (a database that is not there: nothing is ever served)
        main(["--db", f"sqlite:///{tmp_path / 'none.db'}", "browse", "--port", "web"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "tickcast: argument --port: invalid int value: 'web' (see 'tickcast --help')\n"
    assert cli.build_parser().parse_args(["browse", "--port", "8123"]).port == 8123
