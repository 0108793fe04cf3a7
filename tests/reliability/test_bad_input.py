"""Bad input, generated: configs, command lines, series keys and CSV contents.

The promise under test (docs/architecture.md, "The command line"): bad input ends in a result or in one clear
line on stderr starting with ``tickcast: `` and a non-zero exit, never a traceback, and never loses
stored data. SQL-meaningful characters are inert: names are stored verbatim, keys are validated.

Everything is real: SQLite files in the test's tmp dir, the real CLI ``main`` (in-process, so
hypothesis can afford many examples; a few cases as real subprocesses), the real sources and ingest.
Nothing here touches the network: configs hold only ``csv:`` files and ``sample:`` series, and the
Yahoo/FRED URLs point at a closed port on 127.0.0.1 in case a generated config names one.

Budgets: each property runs a modest, derandomized number of examples by default and many more,
randomly, under ``--run-slow``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickcast.models import ForecasterConfig
from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.config import load_settings, settings_from_dict
from tickcast.service.db import open_database
from tickcast.service.errors import ConfigError, SourceError
from tickcast.service.frequencies import CODES as FREQUENCIES
from tickcast.service.keys import parse_key
from tickcast.service.run.ingest import ingest
from tickcast.service.run.validate import at_grain
from tickcast.service.settings import (
    ForecastSettings,
    ModelSettings,
    ScheduleSettings,
    SeriesSpec,
    Settings,
    SourceSettings,
)
from tickcast.service.sources import SOURCES as SOURCE_KINDS
from tickcast.service.sources.csvfile import CsvSource

from .conftest import seeded_subset

# Each property runs twice: a modest repeatable budget by default, a large random one under --run-slow.
BUDGET = [pytest.param(False, id="default"), pytest.param(True, id="thorough", marks=pytest.mark.slow)]


def budget(thorough: bool, default: int, slow: int | None = None):
    """Hypothesis settings: ``default`` derandomized examples (repeatable in CI), or ``slow``
    random ones under --run-slow."""
    return settings(
        max_examples=slow or default * 10 if thorough else default,
        deadline=None,
        derandomize=not thorough,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


TABLES = {"series", "observations", "runs", "fits", "loss_history", "forecasts", "run_lease", "alembic_version"}
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused at once


@pytest.fixture(autouse=True)
def _no_tickcast_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TICKCAST_"):
            monkeypatch.delenv(key)
    # belt and braces: should a generated config name a Yahoo or FRED series, it fails locally
    monkeypatch.setenv("TICKCAST_YAHOO_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("TICKCAST_FRED_URL", CLOSED_PORT_URL)


def one_error_line(err: str) -> str:
    """The stderr of a failed command: exactly one line, ``tickcast: ...``, no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").splitlines()
    errors = [line for line in lines if line.startswith("tickcast: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def table_names(db_path) -> set[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def observations(engine, key: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(schema.observations.c.ts, schema.observations.c.value)
                .join(schema.series, schema.series.c.id == schema.observations.c.series_id)
                .where(schema.series.c.key == key)
            ).all()
        )


# --- generated text -----------------------------------------------------------------------------

SQL_BITS = [
    "'",
    '"',
    ";",
    "--",
    "/*",
    "*/",
    "');",
    "DROP TABLE series;",
    "' OR '1'='1",
    "\\",
    "%",
    "_",
    "`",
    "\x00",
    "NULL",
    "../",
    "/etc/passwd",
    "$(id)",
    "\n",
    "\t",
    " ",
    "\u202e",
    "😀",
    "ß",
    "İ",
]

# Text as it can arrive on a command line: no NUL (the OS cannot pass one), no lone surrogates
# (those are checked through real subprocesses below, where Python decodes argv itself).
argv_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)
nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from(SQL_BITS), st.text(max_size=6)), max_size=6).map("".join),
)


# --- series keys ----------------------------------------------------------------------------------

DOCUMENTED = {  # the character sets the README and the source modules promise, restated independently
    "yahoo": re.compile(r"[A-Z0-9][A-Z0-9.\-^=]{0,19}|\^[A-Z0-9.\-=]{1,19}"),
    "fred": re.compile(r"[A-Z0-9_]{1,40}"),
    "csv": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    "sample": re.compile(r"sp500|nasdaq|wti|core-cpi"),
}

SOURCES = tuple(SOURCE_KINDS)  # the registered kinds' names: yahoo, fred, csv, sample

keys = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda src, sep, sym: f"{src}{sep}{sym}",
        st.sampled_from(list(SOURCES) + ["YAHOO", " csv", "Sample", "file", ""]),
        st.sampled_from([":", "::", " : ", "："]),
        nasty_text,
    ),
    st.builds(
        lambda src, sym: f"{src}:{sym}",
        st.sampled_from(SOURCES),
        st.from_regex(r"[A-Za-z0-9_.\-^=]{1,70}", fullmatch=True),
    ),
)


def assert_valid_or_malformed(raw: str) -> tuple[str, str] | None:
    try:
        source, symbol = parse_key(raw)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("malformed series key ") and "\n" not in message, message
        return None
    assert source in SOURCES
    assert DOCUMENTED[source].fullmatch(symbol), (raw, source, symbol)
    assert not set(symbol) & set("'\";/\\ \t\n%`*()$<>&|,:"), (raw, symbol)
    assert parse_key(f"{source}:{symbol}") == (source, symbol)  # the stored key parses to itself
    return source, symbol


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_keys_parse_to_documented_symbols_or_are_malformed(thorough, ledger):
    seen = [0, 0]

    @budget(thorough, 300)
    @given(keys)
    def check(raw):
        seen[0] += 1
        assert_valid_or_malformed(raw)
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: ticker", injected=seen[0], survived=seen[1])


@pytest.mark.parametrize(
    "key",
    [
        "yahoo:AAPL'; DROP TABLE series;--",
        "csv:Robert'); DROP TABLE series;--",
        'fred:DGS10"',
        "csv:../../etc/passwd",
        "csv:/etc/passwd",
        "csv:a/b",
        "csv:a\\b",
        "yahoo:SPY;rm -rf",
        "sample:sp500;",
        "fred:DGS10 OR 1=1",
        "csv:.hidden",
        "yahoo:A B",
        "csv:a\x00b",
        "yahoo:%27",
        "csv:name?x=1",
        "fred:",
        ":",
        "",
        "csv",
        "sql:select",
    ],
)
def test_keys_with_quotes_semicolons_or_paths_are_malformed(key, ledger):
    with pytest.raises(ConfigError, match="^malformed series key "):
        parse_key(key)
    ledger.record("bad input: ticker")


# --- configs --------------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value) -> str:
    """A value as inline TOML (inline tables and arrays), so any generated dict is one document."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(raw: dict) -> str:
    return "\n".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in raw.items()) + "\n"


KNOWN_KEYS = {
    "service": ["data_dir", "db_url", "workers", "busy_timeout_minutes"],
    "sources": [f.name for f in SourceSettings.__dataclass_fields__.values()],
    "schedule": [f.name for f in ScheduleSettings.__dataclass_fields__.values()],
    "model": [f.name for f in ModelSettings.__dataclass_fields__.values() if f.name != "forecaster"]
    + [name for name in ForecasterConfig().to_dict() if name not in ("horizon", "season_length")],
    "forecast": [f.name for f in ForecastSettings.__dataclass_fields__.values()],
}
SERIES_FIELDS = [
    "key",
    "name",
    "field",
    "frequency",
    "price",
    "active",
    "path",
    "url",
    "date_column",
    "value_column",
    "date_format",
    "season_length",
]
POSITIVE = {
    "sources": ["http_timeout", "backoff_seconds"],
    "schedule": ["misfire_grace_hours", "max_age_hours", "retry_minutes"],
    "model": ["full_retrain_days", "max_points", "group_min_series", "group_max_median_length"],
    "forecast": ["horizon", "min_length"],
}
# The model's knobs: what ForecasterConfig accepts (it checks them; the config only hands them on).
POSITIVE_KNOBS = ["hidden_size", "lr", "ensemble", "warm_windows", "max_windows", "max_window"]
NON_NEGATIVE = {"sources": ["overlap_days", "retries"], "schedule": ["start_retries"]}

scalars = st.one_of(
    st.integers(),
    st.integers(-3, 100),
    st.floats(),
    st.floats(0, 1),
    st.booleans(),
    nasty_text,
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0, -1, 2**63 - 1, -(2**63), 1e308]),
    st.sampled_from(
        [
            "rnn",
            "gru",
            "adam",
            "sgd",
            "norm",
            "value",
            "auto",
            "log",
            "linear",
            "mae",
            "mse",
            "series",
            "group",
            "UTC",
            "America/New_York",
            "Mars/Olympus",
            "30 17 * * mon-fri",
            "* * *",
            "2020-01-01",
            "2020-13-45",
            "http://127.0.0.1:9/x",
            "ftp://x",
            "B",
            "M",
            "X",
            "",
            ".",
        ]
    ),
    st.dates(),
)


def _containers(inner):
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3))


toml_values = st.recursive(scalars, _containers, max_leaves=8)
series_keys = st.one_of(
    st.sampled_from(
        [
            "csv:alpha",
            "csv:beta",
            "sample:sp500",
            "sample:wti",
            "yahoo:SPY",
            "fred:DGS10",
            "csv:Robert'); DROP TABLE series;--",
        ]
    ),
    keys,
)
series_entry = st.dictionaries(
    st.one_of(st.sampled_from(SERIES_FIELDS), nasty_text),
    st.one_of(
        toml_values,
        series_keys,
        st.sampled_from(["alpha.csv", "missing.csv", "/dev/null"]),
        st.sampled_from(FREQUENCIES),
    ),
    max_size=6,
).map(lambda d: d if "key" in d or not d else {"key": "csv:alpha", **d})
section = {
    name: st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS[name]), nasty_text), toml_values, max_size=4)
    for name in KNOWN_KEYS
}
configs = st.fixed_dictionaries(
    {},
    optional={
        **section,
        "watchlist": st.dictionaries(
            st.one_of(st.sampled_from(["yahoo", "fred", "sample", "csv"]), nasty_text),
            st.one_of(
                st.lists(st.one_of(st.sampled_from(["SPY", "sp500", "wti", "DGS10"]), nasty_text), max_size=3),
                toml_values,
            ),
            max_size=3,
        ),
        "series": st.one_of(st.lists(series_entry, max_size=3), toml_values),
    },
).flatmap(
    lambda d: (
        st.dictionaries(nasty_text, toml_values, max_size=1).map(lambda extra: {**d, **extra}) if not d else st.just(d)
    )
)


def all_names(raw) -> set[str]:
    """Every key and string value in a generated config: a ConfigError must name one of them."""
    names = set()
    if isinstance(raw, dict):
        for k, v in raw.items():
            names.add(k)
            names |= all_names(v)
    elif isinstance(raw, list):
        for v in raw:
            names |= all_names(v)
    elif isinstance(raw, str):
        names.add(raw)
    return names


def assert_settings_or_config_error(raw: dict, build) -> Settings | None:
    try:
        result = build()
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        named = [name for name in all_names(raw) if repr(name) in message or (name and repr(name)[1:-1] in message)]
        assert named or message.startswith(("malformed config", "cannot read config file")), message
        return None
    assert isinstance(result, Settings)
    for section_name, names in POSITIVE.items():
        for name in names:
            value = getattr(getattr(result, section_name), name)
            assert value is None or (math.isfinite(value) and value > 0), (section_name, name, value)
    for name in POSITIVE_KNOBS:
        value = getattr(result.model.forecaster, name)
        assert math.isfinite(value) and value > 0, (name, value)
    assert result.model.forecaster == ForecasterConfig(**result.model.forecaster.to_dict())
    for section_name, names in NON_NEGATIVE.items():
        for name in names:
            value = getattr(getattr(result, section_name), name)
            assert value is None or (math.isfinite(value) and value >= 0), (section_name, name, value)
    assert result.workers >= 1
    assert math.isfinite(result.busy_timeout_minutes) and result.busy_timeout_minutes > 0
    for spec in result.series:
        assert assert_valid_or_malformed(spec.key) == (spec.source, spec.symbol)
    return result


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_config_dicts_give_settings_or_one_config_error(thorough, tmp_path, ledger):
    seen = [0, 0]

    @budget(thorough, 150)
    @given(configs)
    def check(raw):
        seen[0] += 1
        assert_settings_or_config_error(
            raw, lambda: settings_from_dict(raw, origin="fuzz.toml", base_dir=tmp_path, env={})
        )
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: config", injected=seen[0], survived=seen[1])


@pytest.mark.parametrize("thorough", BUDGET)
def test_one_random_value_for_each_known_setting_is_accepted_or_named(thorough, tmp_path, ledger):
    """Every known key, one at a time, with a random value: either accepted (within its documented
    range) or a ConfigError that names that very key."""
    seen = [0, 0]
    choices = [(s, k) for s, names in KNOWN_KEYS.items() for k in names] + [("series", k) for k in SERIES_FIELDS]

    @budget(thorough, 150)
    @given(st.sampled_from(choices), toml_values)
    def check(where, value):
        seen[0] += 1
        section_name, key = where
        if section_name == "series":
            entry = {"key": "csv:alpha", "path": "alpha.csv", key: value}
            raw = {"series": [entry]}
        else:
            raw = {section_name: {key: value}}
        try:
            result = settings_from_dict(raw, origin="fuzz.toml", base_dir=tmp_path, env={})
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message
            assert key in message or (key == "key" and "malformed series key" in message), message
            if section_name != "series":
                assert section_name in message, message
        else:
            assert_settings_or_config_error(raw, lambda: result)
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: config", injected=seen[0], survived=seen[1])


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_toml_files_give_settings_or_one_config_error(thorough, tmp_path, ledger):
    """The file path: generated documents, some mangled into invalid TOML or invalid UTF-8."""
    seen = [0, 0]
    path = tmp_path / "fuzz.toml"
    mangle = st.one_of(
        st.just(lambda doc: doc.encode()),
        st.builds(
            lambda junk, at: lambda doc: (doc[:at] + junk + doc[at:]).encode(errors="surrogatepass"),
            st.text(max_size=5),
            st.integers(0, 200),
        ),
        st.builds(lambda junk: lambda doc: junk + doc.encode(), st.binary(max_size=6)),
    )

    @budget(thorough, 100)
    @given(configs, mangle)
    def check(raw, how):
        seen[0] += 1
        document = how(toml_document(raw))
        path.write_bytes(document)
        if document == toml_document(raw).encode():
            assert_settings_or_config_error(raw, lambda: load_settings(str(path), env={}))
        else:  # the junk can make a valid document with other keys ("11" -> "101"): the error names those
            try:
                result = load_settings(str(path), env={})
            except ConfigError as exc:
                assert str(exc) and "\n" not in str(exc), str(exc)
            else:
                assert_settings_or_config_error(raw, lambda: result)
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: config", injected=seen[0], survived=seen[1])


@pytest.fixture
def alpha_csv(tmp_path) -> Path:
    path = tmp_path / "alpha.csv"
    dates = pd.date_range("2020-01-01", periods=40, freq="D")
    path.write_text("date,value\n" + "".join(f"{d:%Y-%m-%d},{i + 1.5}\n" for i, d in enumerate(dates)))
    return path


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_configs_through_the_cli_end_in_one_line(thorough, tmp_path, alpha_csv, capsys, monkeypatch, ledger):
    """``tickcast --config FILE init`` with generated configs: exit 0, or exit 1 with one line. A
    config that loads is then used to ``ingest``: each failing series is one ``tickcast:`` line."""
    seen = [0, 0]
    path = tmp_path / "fuzz.toml"
    db = tmp_path / "cli.db"
    monkeypatch.setenv("TICKCAST_DATA_DIR", str(tmp_path / "data"))  # yfinance's cache stays in here

    @budget(thorough, 40, 300)
    @given(configs)
    def check(raw):
        seen[0] += 1
        path.write_text(toml_document(raw))
        capsys.readouterr()
        code = main(["--config", str(path), "--db", f"sqlite:///{db}", "-q", "init"])
        out, err = capsys.readouterr()
        if code == 0:
            assert "Traceback" not in err and not err.strip(), err
            sources = load_settings(str(path)).sources
            if sources.retries * sources.backoff_seconds < 1 and sources.http_timeout > 0.01:  # fails fast
                code = main(["--config", str(path), "--db", f"sqlite:///{db}", "-q", "ingest"])
                out, err = capsys.readouterr()
                assert code in (0, 1, 3), (code, err)
                assert "Traceback" not in err and "internal error" not in err, err
                assert all(line.startswith("tickcast: ") for line in err.splitlines()), err
        else:
            assert code == 1, (code, err)
            assert one_error_line(err).startswith("tickcast: ")
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: config", injected=seen[0], survived=seen[1])
    assert TABLES <= table_names(db)


@pytest.mark.parametrize(
    "toml,message",
    [
        ('[service]\ndata_dir = "a\\u0000b"\n', "setting 'service.data_dir' must not contain a NUL character"),
        ('[service]\ndb_url = "sqlite:///x\\u0000.db"\n', "setting 'service.db_url' must not contain a NUL"),
        ('[[series]]\nkey = "csv:x"\npath = "x\\u0000.csv"\n', "setting 'series[0].path' must not contain a NUL"),
        ("[service]\ndb_url = []\n", "setting 'service.db_url' must be a string"),  # even though --db is given
        ("[service]\nworkers = -1\n", "setting 'service.workers' must be >= 0"),
        ("[service]\ndata_dir = 7\n", "setting 'service.data_dir' must be a string"),
        ("[sources]\nhttp_timeout = nan\n", "setting 'sources.http_timeout' must be a finite number > 0"),
        ("[schedule]\nmax_age_hours = inf\n", "setting 'schedule.max_age_hours' must be a finite number > 0"),
        ('[service]\n"a\\nb" = 1\n', "unknown setting 'service.a\\nb'"),
        ('[service]\nexecutor = "dask"\n', 'service.executor = "dask" needs the scheduler\'s address'),
        (
            '[service]\nexecutor = "dask"\ndask_address = "tcp://a b:1"\n',
            "setting 'service.dask_address' must be a Dask",
        ),
    ],
)
def test_config_values_overridden_or_naming_files_are_still_checked(
    toml, message, tmp_path, capsys, monkeypatch, ledger
):
    monkeypatch.setenv("TICKCAST_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TICKCAST_WORKERS", "1")
    cfg = tmp_path / "t.toml"
    cfg.write_text(toml)
    assert main(["--config", str(cfg), "--db", f"sqlite:///{tmp_path / 't.db'}", "ingest"]) == 1
    assert one_error_line(capsys.readouterr().err).startswith(f"tickcast: {message}")
    ledger.record("bad input: config")


# --- SQL-meaningful text is inert ---------------------------------------------------------------


def test_sql_in_a_series_name_is_stored_verbatim(tmp_path, alpha_csv, capsys, ledger):
    name = "Robert'); DROP TABLE series;--"
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        f'[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\nname = {toml_string(name)}\n'
        f'date_column = "date"\nvalue_column = "value"\n'
    )
    db = tmp_path / "t.db"
    assert main(["--config", str(cfg), "--db", f"sqlite:///{db}", "-q", "ingest"]) == 0
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT name FROM series WHERE key = 'csv:alpha'").fetchone() == (name,)
        assert conn.execute("SELECT count(*) FROM observations").fetchone() == (40,)
    assert TABLES <= table_names(db)
    ledger.record("bad input: config")


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_names_and_columns_are_stored_verbatim(thorough, tmp_path, ledger):
    """Generated series names (SQL fragments, quotes, control characters, emoji) and CSV column
    names round-trip exactly, and every table still exists."""
    db = tmp_path / "names.db"
    engine = open_database(f"sqlite:///{db}")
    seen = [0, 0]

    @budget(thorough, 60)
    @given(
        nasty_text,
        nasty_text.filter(
            lambda c: c.strip() == c and c and "," not in c and '"' not in c and "\n" not in c and "\r" not in c
        ),
    )
    def check(name, column):
        seen[0] += 1
        path = tmp_path / "named.csv"
        path.write_text(f"date,{column}\n2021-03-01,1.5\n2021-03-02,2.5\n", encoding="utf-8")
        raw = {
            "series": [{"key": "csv:named", "path": str(path), "name": name, "value_column": column}],
            "service": {"data_dir": str(tmp_path)},
        }
        settings = settings_from_dict(raw, db_url=f"sqlite:///{db}", env={})
        [result] = ingest(engine, settings)
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT name FROM series WHERE key = 'csv:named'").fetchone() == (name,)
        if result.status == "ok":
            assert observations(engine, "csv:named")[date(2021, 3, 2)] == 2.5
        else:  # a column name pandas reads differently (e.g. one it strips): a clear reason, stored
            assert result.error.startswith("csv:named: ") and "\n" not in result.error
        assert TABLES <= table_names(db)
        seen[1] += 1

    try:
        check()
    finally:
        engine.dispose()
        ledger.record("bad input: config", injected=seen[0], survived=seen[1])


# --- CSV contents -------------------------------------------------------------------------------


def csv_cell():
    return st.one_of(
        st.dates(min_value=date(1, 1, 1)).map(str),
        st.dates(date(1990, 1, 1), date(2030, 1, 1)).map(lambda d: d.strftime("%m/%d/%Y")),
        st.dates(date(1990, 1, 1), date(2030, 1, 1)).map(lambda d: f"{d}T00:00:00"),
        st.builds(
            lambda d, h: f"{d}T09:30:00{h:+03d}:00", st.dates(date(2019, 1, 1), date(2021, 1, 1)), st.integers(-12, 14)
        ),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(
            [
                "",
                ".",
                "NaN",
                "nan",
                "inf",
                "-inf",
                "null",
                "N/A",
                "today",
                "now",
                "-1",
                "0",
                "1e400",
                "1,5",
                '"2020-01-01"',
                '"1,5"',
                '"',
                "'",
                "\\",
                "\x00",
                "\ufeff",
                "2020-02-30",
                "2020-01-01 25:00",
                "99999-01-01",
                "-0001-01-01",
                "0000-00-00",
                "1.2.3",
            ]
        ),
        st.text(max_size=8),
    )


csv_texts = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda header, rows, sep, eol: eol.join([sep.join(header)] + [sep.join(r) for r in rows]) + eol,
        st.one_of(
            st.just(["date", "value"]),
            st.just(["value", "date"]),
            st.lists(
                st.one_of(st.sampled_from(["date", "value", " date ", "Date", ""]), st.text(max_size=5)), max_size=4
            ),
        ),
        st.lists(st.lists(csv_cell(), min_size=0, max_size=4), max_size=25),
        st.sampled_from([",", ",", ";", "\t", ", "]),
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
)
csv_contents = st.one_of(
    csv_texts.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=300),
    csv_texts.map(lambda t: t.encode("utf-16")),
    csv_texts.map(lambda t: "\ufeff".encode() + t.encode("utf-8")),
)
date_formats = st.one_of(
    st.none(), st.sampled_from(["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%", "%Q", "%Y-%m-%d%z", "", "%s", "%Y"])
)


def assert_observation_frame(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["ts", "value"]
    assert pd.api.types.is_datetime64_dtype(frame["ts"]) and frame["value"].dtype == "float64"
    assert not frame["ts"].isna().any()
    assert (frame["ts"] >= pd.Timestamp("0001-01-01")).all()
    assert frame["ts"].is_monotonic_increasing  # in time order: the last row of an hour or a day is its last bar
    for hourly in (False, True):  # the times of day kept: validation brings them to the series' grain
        stamps = at_grain(frame.copy(), hourly)["ts"]
        assert (stamps == (stamps.dt.floor("h") if hourly else stamps.dt.normalize())).all()


@pytest.mark.parametrize("thorough", BUDGET)
def test_csv_source_returns_observations_or_a_source_error(thorough, tmp_path, ledger):
    seen = [0, 0]
    path = tmp_path / "fuzz.csv"

    @budget(thorough, 200)
    @given(csv_contents, date_formats, st.sampled_from([None, pd.Timestamp("2020-01-01")]))
    def check(content, date_format, since):
        seen[0] += 1
        path.write_bytes(content)
        spec = SeriesSpec(
            key="csv:fuzz",
            source="csv",
            symbol="fuzz",
            path=str(path),
            date_column="date",
            value_column="value",
            date_format=date_format,
        )
        try:
            frame = CsvSource(SourceSettings()).fetch(spec, since)
        except SourceError as exc:
            assert str(exc).startswith("csv:fuzz: ") and "\n" not in str(exc), str(exc)
        else:
            assert_observation_frame(frame)
            if since is not None:
                assert (frame["ts"] >= since).all()
        seen[1] += 1

    try:
        check()
    finally:
        ledger.record("bad input: CSV", injected=seen[0], survived=seen[1])


GOOD_CSV = "date,value\n" + "".join(f"2024-01-{d:02d},{100 + d}.25\n" for d in range(1, 31))


@pytest.mark.parametrize("thorough", BUDGET)
def test_bad_csv_through_ingest_is_recorded_and_keeps_stored_rows(thorough, tmp_path, ledger):
    """Seed the series from a good file, replace the file with generated content, ingest again:
    ingest never raises; a failure is stored in series.last_error; no stored row changes unless
    the new file really revises it, and none is ever deleted."""
    db = tmp_path / "csv.db"
    path = tmp_path / "fuzz.csv"
    engine = open_database(f"sqlite:///{db}")
    seen = [0, 0, 0]

    def settings_for(date_format):
        raw = {
            "series": [{"key": "csv:fuzz", "path": str(path), **({"date_format": date_format} if date_format else {})}],
            "service": {"data_dir": str(tmp_path)},
            "sources": {"overlap_days": 3},
        }
        return settings_from_dict(raw, db_url=f"sqlite:///{db}", env={})

    @budget(thorough, 100)
    @given(csv_contents, date_formats)
    def check(content, date_format):
        seen[0] += 1
        path.write_text(GOOD_CSV)
        [seeded] = ingest(engine, settings_for(None))
        assert seeded.status == "ok", seeded
        before = observations(engine, "csv:fuzz")
        last = max(before)
        path.write_bytes(content)
        [result] = ingest(engine, settings_for(date_format))  # must not raise
        after = observations(engine, "csv:fuzz")
        with engine.connect() as conn:
            last_error = conn.execute(
                sa.select(schema.series.c.last_error).where(schema.series.c.key == "csv:fuzz")
            ).scalar_one()
        lost = [ts for ts in before if ts not in after]
        seen[2] += len(lost)
        assert not lost, lost
        if result.status == "failed":
            assert result.error.startswith("csv:fuzz: ") and "\n" not in result.error
            assert last_error == result.error
            assert after == before
        else:
            assert result.status == "ok" and last_error is None
            since = pd.Timestamp(last) - pd.Timedelta(days=3)
            assert all(after[ts] == v for ts, v in before.items() if pd.Timestamp(ts) < since)
            assert all(math.isfinite(v) for v in after.values())
        seen[1] += 1

    try:
        check()
    finally:
        engine.dispose()
        ledger.record("bad input: CSV", injected=seen[0], survived=seen[1], rows_lost=seen[2])
    assert TABLES <= table_names(db)


# --- command lines ------------------------------------------------------------------------------

# serve and browse block (a daemon, a web server): never generated. Everything else runs for real.
COMMANDS = ["init", "ingest", "run", "health", "forecasts", "history", "plot"]
BLOCKING = {"serve", "browse"}
OPTIONS = [
    "--db",
    "--config",
    "-q",
    "--quiet",
    "--format",
    "-o",
    "--output",
    "--points",
    "--run-now",
    "--host",
    "--port",
    "--version",
    "-h",
    "--help",
    "--",
    "-",
    "--db=",
    "--config=",
    "--points=",
    "--format=json",
]
CLI_KEYS = [
    "csv:alpha",
    "csv:short",
    "sample:core-cpi",
    "sample:sp500",
    "yahoo:SPY",
    "CSV:alpha",
    " csv:alpha ",
    "csv:Robert'); DROP TABLE series;--",
    "fred:",
    "yahoo:???",
    "csv:../alpha",
]


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory):
    """A config with local series only and a database where a real run already trained them, so
    generated `run`s find everything up to date (fast) and `forecasts`/`history`/`plot` have data."""
    root = tmp_path_factory.mktemp("cli")
    dates = pd.date_range("2023-01-02", periods=60, freq="B")
    (root / "alpha.csv").write_text(
        "date,value\n" + "".join(f"{d:%Y-%m-%d},{100 + (i % 7) * 1.5 + i * 0.1}\n" for i, d in enumerate(dates))
    )
    (root / "short.csv").write_text("date,value\n" + "".join(f"2023-03-{d:02d},{d}\n" for d in range(1, 3)))
    (root / "bad.toml").write_text("[model]\nepochz = 3\n")
    cfg = root / "tickcast.toml"
    cfg.write_text(
        '[service]\nworkers = 1\n\n[watchlist]\nsample = ["core-cpi"]\n\n'
        '[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\n\n[[series]]\nkey = "csv:short"\npath = "short.csv"\n\n'
        "[model]\nepochs = 2\nhidden_size = 4\nmax_points = 120\n"
    )
    template = root / "template.db"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(["--config", str(cfg), "--db", f"sqlite:///{template}", "-q", "run"]) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    with closing(sqlite3.connect(template)) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # all in the main file
        assert conn.execute("SELECT count(*) FROM forecasts").fetchone()[0] > 0
        stored = conn.execute("SELECT count(*), sum(value) FROM observations").fetchone()
    return dict(root=root, cfg=cfg, template=template, stored=stored)


def _flat(parts) -> list[str]:
    return [token for part in parts for token in part]


def command_lines(world: dict):
    root = world["root"]
    safe_text = argv_text.filter(lambda t: t not in BLOCKING and "/" not in t and "://" not in t)
    db_values = st.one_of(
        st.sampled_from(
            [
                "{db}",
                "{db}",
                "not a url",
                "mysql://x/y",
                "sqlite:////proc/tickcast/x.db",
                f"sqlite:///{root}",
                f"sqlite:///{root}/alpha.csv",
                "",
            ]
        ),
        safe_text,
    )
    config_values = st.one_of(
        st.sampled_from(
            [
                str(world["cfg"]),
                "/nonexistent/tickcast.toml",
                str(root),
                str(root / "alpha.csv"),
                str(root / "bad.toml"),
            ]
        ),
        safe_text,
    )
    key_values = st.one_of(
        st.sampled_from(CLI_KEYS[:3]),
        st.sampled_from(CLI_KEYS),
        keys.filter(lambda k: "\x00" not in k and k not in BLOCKING).map(
            lambda k: k.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        ),
    )
    out_values = st.one_of(
        st.sampled_from(["out.png", "sub/dir/out.png", "out.txt", "", "x.PNG", ".png", "-"]), safe_text
    )
    points = st.one_of(st.sampled_from(["0", "-1", "1", "3", "250", "abc", "1e3", "99999999999999999999"]), safe_text)
    common = st.lists(
        st.one_of(
            st.tuples(st.just("--db"), db_values),
            st.tuples(st.just("--config"), config_values),
            st.just(("-q",)),
            st.just(("-q",)),
        ),
        max_size=2,
    ).map(_flat)
    junk = st.one_of(st.just([]), st.just([]), st.just([]), st.lists(safe_text, min_size=1, max_size=1))
    fmt = st.lists(
        st.tuples(st.just("--format"), st.sampled_from(["table", "csv", "json", "xml", ""])), max_size=1
    ).map(_flat)
    per_command = {
        "init": st.just([]),
        "ingest": st.lists(key_values, max_size=3),
        "run": st.lists(key_values, max_size=2),
        "health": st.just([]),
        "forecasts": st.builds(lambda k, f: k + f, st.lists(key_values, max_size=1), fmt),
        "history": st.builds(lambda k, f: k + f, st.lists(key_values, max_size=1), fmt),
        "plot": st.builds(
            lambda k, o, p: k + o + p,
            st.lists(key_values, max_size=1),
            st.lists(st.tuples(st.sampled_from(["-o", "--output"]), out_values), max_size=1).map(_flat),
            st.lists(st.tuples(st.just("--points"), points), max_size=1).map(_flat),
        ),
    }
    structured = st.sampled_from(COMMANDS).flatmap(
        lambda name: st.builds(
            lambda before, after, rest, junk, at: _insert(before + [name] + after + rest, junk, at),
            common,
            common,
            per_command[name],
            junk,
            st.integers(0, 8),
        )
    )
    tokens = st.one_of(
        st.sampled_from(COMMANDS + OPTIONS + CLI_KEYS + ["table", "json", "out.png", "0", "-1"]), safe_text
    )
    return st.one_of(structured, structured, structured, st.lists(tokens, max_size=6))


def _insert(argv: list[str], junk: list[str], at: int) -> list[str]:
    return argv[:at] + junk + argv[at:]


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 1


@pytest.mark.parametrize("thorough", BUDGET)
def test_random_command_lines_end_in_a_result_or_one_line(thorough, cli_world, tmp_path, monkeypatch, capsys, ledger):
    """Generated argv from the real command and option names, keys and random text, in-process:
    exit 0..3, no traceback, at most one ``tickcast:`` line (exactly one on failure), and the
    database stays whole with every stored row."""
    monkeypatch.chdir(tmp_path)  # plot's relative -o paths land here
    monkeypatch.setenv("TICKCAST_CONFIG", str(cli_world["cfg"]))
    seen = [0, 0, 0]
    counter = [0]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    @budget(thorough, 80, 600)
    @given(command_lines(cli_world))
    def check(argv):
        seen[0] += 1
        counter[0] += 1
        db = tmp_path / f"work-{counter[0]}.db"
        shutil.copyfile(cli_world["template"], db)
        url = f"sqlite:///{db}"
        os.environ["TICKCAST_DB_URL"] = url
        argv = [url if token == "{db}" else token for token in argv]
        capsys.readouterr()
        try:
            code = run_main(argv)
        finally:
            for signum, handler in handlers.items():  # `run` installs its stop handlers
                signal.signal(signum, handler)
        out, err = capsys.readouterr()
        assert code in (0, 1, 2, 3), (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        errors = [line for line in err.splitlines() if line.startswith("tickcast: ")]
        if code in (1, 2):
            assert one_error_line(err) == errors[0], (argv, err)
        elif code == 0:
            assert not errors, (argv, err)
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored = conn.execute("SELECT count(*), sum(value) FROM observations").fetchone()
        if stored != cli_world["stored"]:
            seen[2] += max(0, cli_world["stored"][0] - stored[0])
        assert stored == cli_world["stored"], (argv, stored)
        assert TABLES <= table_names(db)
        db.unlink()
        seen[1] += 1

    try:
        check()
    finally:
        os.environ.pop("TICKCAST_DB_URL", None)
        ledger.record("bad input: CLI", injected=seen[0], survived=seen[1], rows_lost=seen[2])


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["plot", "csv:alpha", "-o", "p.png", "--points", "0"], 2, "argument --points: expected a positive integer"),
        (["plot", "csv:alpha", "-o", "p.png", "--points", "-1"], 2, "argument --points: expected a positive integer"),
        (["plot", "csv:alpha", "-o", "p.png", "--points", "5"], 0, None),
        (["plot", "csv:alpha", "-o", "p.svg"], 1, "plot output must be a .png file"),
        (["plot", "csv:alpha", "-o", "alpha.csv/p.png"], 1, "tickcast: "),
        (["plot", "csv:short", "-o", "p.png"], 1, "no forecasts yet for csv:short"),
        (["plot", "sample:sp500", "-o", "p.png"], 1, "unknown series 'sample:sp500': not in the database"),
        (["history", "csv:alpha", "--format", "json"], 0, None),
        (["history", "csv:short"], 1, "no successful fit yet for csv:short"),
        (["history", "csv:Robert'); DROP TABLE series;--"], 1, "malformed series key"),
        (["forecasts", "--format", "csv"], 0, None),
        (["forecasts", "sample:core-cpi", "--format", "json"], 0, None),
        (["forecasts", "yahoo:SPY"], 1, "unknown series 'yahoo:SPY': not in the database"),
        (["health"], 0, None),
        (["init"], 0, None),
        (["ingest", "csv:alpha", "csv:alpha", "CSV:alpha"], 0, None),
        (["ingest", "sample:sp500"], 1, "unknown series 'sample:sp500': not in the watchlist"),
        (["run", "csv:short"], 0, None),
        (["run", "csv:alpha", "yahoo:SPY"], 1, "unknown series 'yahoo:SPY'"),
        (["--db", "sqlite:///alpha.csv", "forecasts"], 1, "file is not a database"),
        (["--db", "sqlite:////proc/tickcast/x.db", "init"], 1, "cannot create the database directory"),
        (["--config", "alpha.csv", "init"], 1, "malformed config"),
        (["--config", ".", "init"], 1, "cannot read config file"),
    ],
)
def test_each_command_with_edge_arguments(argv, code, message, cli_world, tmp_path, monkeypatch, capsys, ledger):
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(cli_world["root"] / "alpha.csv", tmp_path / "alpha.csv")
    db = tmp_path / "t.db"
    shutil.copyfile(cli_world["template"], db)
    monkeypatch.setenv("TICKCAST_CONFIG", str(cli_world["cfg"]))
    monkeypatch.setenv("TICKCAST_DB_URL", f"sqlite:///{db}")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        got = run_main(argv)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    out, err = capsys.readouterr()
    assert got == code, (got, err)
    if message is None:
        assert "tickcast: " not in err and out.strip()
    else:
        assert message in one_error_line(err), err
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*), sum(value) FROM observations").fetchone() == cli_world["stored"]
    ledger.record("bad input: CLI")


@pytest.mark.parametrize(
    "case",
    seeded_subset(
        [
            ([b"ingest", b"csv:\xff"], "tickcast: malformed series key 'csv:\\udcff'"),
            ([b"ingest", b"yahoo:\xc3\x28"], "tickcast: malformed series key"),
            ([b"--config", b"/nonexistent/\xff.toml", b"init"], "tickcast: config file not found: /nonexistent/"),
            ([b"forecasts", b"\xfe\xff"], "tickcast: malformed series key"),
            ([b"history", b"sample:sp500\xff"], "tickcast: malformed series key"),
            ([b"\xff"], "tickcast: argument COMMAND: invalid choice"),
            ([b"plot", b"csv:alpha", b"-o", b"out.png", b"--points", b"\xff"], "tickcast: argument --points"),
        ],
        2,
    ),
)
def test_undecodable_arguments_through_the_real_entry_point(case, cli_world, tmp_path, ledger):
    """Bytes that are not UTF-8 reach Python as lone surrogates; as a real process the error line
    is still one line (stderr escapes them) and the exit is non-zero."""
    argv, message = case
    db = tmp_path / "t.db"
    shutil.copyfile(cli_world["template"], db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update(TICKCAST_CONFIG=str(cli_world["cfg"]), TICKCAST_DB_URL=f"sqlite:///{db}")
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"tickcast"] + argv, capture_output=True, env=env, cwd=tmp_path, timeout=120
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode in (1, 2), err
    assert one_error_line(err).startswith(message), err
    ledger.record("bad input: CLI")


@pytest.mark.slow
def test_plot_to_an_undecodable_file_name(cli_world, tmp_path, ledger):
    db = tmp_path / "t.db"
    shutil.copyfile(cli_world["template"], db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update(TICKCAST_CONFIG=str(cli_world["cfg"]), TICKCAST_DB_URL=f"sqlite:///{db}")
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"tickcast", b"plot", b"csv:alpha", b"-o", b"\xff.png"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / os.fsdecode(b"\xff.png")).stat().st_size > 0
    ledger.record("bad input: CLI")
