"""What tickcast quotes back (in `series.last_error` and `last_note`, which Datasette serves, and on
stderr) is cut short and carries no secret: a 5 MB cell is not copied whole, a password or token in a
source URL is masked, the first line of a file that is not a CSV (``path = "/etc/shadow"``) is not
repeated in full. `browse` runs only its canned queries unless told otherwise, and warns when it
listens beyond this machine. A CSV too large to parse in the memory available says so (not
"malformed CSV")."""

from __future__ import annotations

import json
import resource
import signal
import urllib.error
import urllib.request

import pandas as pd

from ..support.daemon import Daemon
from ..support.httpserver import FixtureServer, Reply
from ..support.pg import free_port
from ..support.tables import ROWS_PER_STEP
from .scenario import MEMORY_LIMIT, limited, run_tickcast, series_row, world, write_csv

BIG = 5 * 2**20


def test_a_5_mb_cell_is_quoted_short_in_the_note_and_on_stderr(tmp_path, ledger):
    dates = pd.bdate_range("2021-01-04", periods=60)
    write_csv(tmp_path / "cell.csv", dates, [str(10 + i % 7) for i in range(59)] + ["x" * BIG])
    (tmp_path / "header.csv").write_text("date," + "v" * BIG + "\n2021-01-04,1\n")
    env = world(tmp_path, ["cell", "header"])
    done = run_tickcast(env, "run")
    assert done.returncode == 3, done.stderr[:2000]
    assert max(len(line) for line in done.stdout.splitlines() + done.stderr.splitlines()) < 2000
    error, note = series_row(env, "csv:cell")
    assert error is None and len(note) < 300, note[:300]
    assert note.startswith("dropped 1 value(s) that are not numbers (e.g. 'xxxxxxxx") and "…'" in note
    error, _ = series_row(env, "csv:header")
    assert error == f"csv:header: column 'value' not found (columns: date, <{BIG} characters>)"
    ledger.record("quoting: a 5 MB cell and a 5 MB column name", injected=2, survived=2)


def test_a_password_or_token_in_a_source_url_never_lands_in_last_error(tmp_path, ledger):
    http = FixtureServer().start()
    http.route("/gone.csv", Reply(404, "not here", "text/plain"))
    closed = free_port()
    secret = tmp_path / "shadow"  # a file that is not a CSV, whose lines are secrets
    line = "root:$6$Ab3dEf9h$QfbVzpX1s8HhlvNd2sM5eLk7dOq0YwRjTqGm9zUu1kPx8cV5nB3aZ:19000:0:99999:7:::"
    secret.write_text(f"{line}\n" * 3)
    entries = (
        f'[[series]]\nkey = "csv:gone"\nurl = "http://alice:s3cret@127.0.0.1:{http.httpd.server_address[1]}'
        '/gone.csv?token=abc123"\n'
        f'[[series]]\nkey = "csv:down"\nurl = "http://bob:hunter2@127.0.0.1:{closed}/down.csv?api_key=xyz789"\n'
        f'[[series]]\nkey = "csv:shadow"\npath = "{secret}"\n'
    )
    try:
        env = world(tmp_path, [], extra=entries + "[sources]\nretries = 0\n")
        done = run_tickcast(env, "run")
    finally:
        http.stop()
    assert done.returncode == 1, done.stderr
    errors = {key: series_row(env, key)[0] for key in ("csv:gone", "csv:down", "csv:shadow")}
    for text in [*errors.values(), done.stderr, done.stdout]:
        for leaked in ("s3cret", "abc123", "hunter2", "xyz789", "QfbVzpX1s8Hh"):
            assert leaked not in text, (leaked, text)
    assert errors["csv:gone"].startswith("csv:gone: HTTP 404 from http://***@127.0.0.1:")
    assert errors["csv:gone"].endswith("/gone.csv?***")
    assert errors["csv:down"].startswith("csv:down: cannot connect to http://***@127.0.0.1:")
    assert "/down.csv?*** (connection refused)" in errors["csv:down"]
    assert errors["csv:shadow"] == f"csv:shadow: column 'date' not found (columns: <{len(line)} characters>)"
    ledger.record("quoting: secrets in URLs and file lines", injected=3, survived=3)


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def serve_browser(env: dict, *options: str) -> tuple[Daemon, str]:
    port = free_port()
    daemon = Daemon(["browse", "--port", str(port), *options], env)
    base = f"http://127.0.0.1:{port}/tickcast"
    daemon.wait_for("Uvicorn running on http://", timeout=120)
    return daemon, base


def test_browse_runs_only_its_canned_queries_unless_sql_is_allowed(tmp_path, ledger):
    write_csv(tmp_path / "a.csv", pd.bdate_range("2021-01-04", periods=60), [float(i % 9 + 5) for i in range(60)])
    env = world(tmp_path, ["a"])
    assert run_tickcast(env, "run", "-q").returncode == 0
    heavy = "{}.json?sql=select+length(randomblob(400000000))&_shape=array"
    daemon, base = serve_browser(env)
    try:
        assert fetch(heavy.format(base))[0] == 403  # it used to run, and send back 533 MB
        status, latest = fetch(f"{base}/latest.json?_shape=array")
        assert status == 200 and len(latest) == 5  # the canned queries work
    finally:
        daemon.proc.send_signal(signal.SIGINT)
        daemon.proc.wait(timeout=30)
    assert not any("no authentication" in line for line in daemon.lines)
    daemon, base = serve_browser(env, "--allow-sql", "--host", "0.0.0.0")
    try:
        status, rows = fetch(f"{base}.json?sql=select+count(*)+as+n+from+forecasts&_shape=array")
        assert (status, rows) == (200, [{"n": 5 * ROWS_PER_STEP}])  # every model's forecast at every level
    finally:
        daemon.proc.send_signal(signal.SIGINT)
        daemon.proc.wait(timeout=30)
    assert daemon.lines[0].startswith("tickcast: warning: browse listens on 0.0.0.0:") and (
        "Datasette has no authentication" in daemon.lines[0]
    )
    ledger.record("browse: ad-hoc SQL off by default, 0.0.0.0 warned about")


def test_a_csv_too_large_to_parse_says_out_of_memory(tmp_path, ledger):
    with open(tmp_path / "commas.csv", "w") as fh:  # one line of 30 million fields: the parser's tables blow up
        fh.write("date,value\n2021-01-04,1\n2021-01-05,2\n" + "," * 30_000_000 + "\n")
    env = world(tmp_path, ["commas"])
    done = run_tickcast(env, "ingest", preexec_fn=limited(resource.RLIMIT_AS, MEMORY_LIMIT, MEMORY_LIMIT))
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "tickcast: csv:commas: out of memory while parsing the CSV (a file too large for the memory available); "
        "nothing stored"
    ]
    ledger.record("resources: out of memory while parsing a CSV")
