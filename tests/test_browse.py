"""`tickcast browse` as a user meets it: a database made by a real small run, under a file name
other than tickcast.db, served by the real command on 127.0.0.1, and every page (the index, the
tables, each canned query, the charts) loaded in a real headless Chromium that must log no console
error. Also: no database, no browser (one line, exit 1, nothing created)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tickcast.service.browse import datasette_name, install_hint, metadata_for

from .support.browser import chromium, severe_console_messages
from .support.cli import run_cli, tickcast_executable
from .support.pg import free_port
from .support.small_model import FAST_MODEL
from .support.web import fetch_json

KEY = "sample:sp500"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`tickcast browse` over tc.db, made by one small run of two sample series (daily and monthly)."""
    tmp = tmp_path_factory.mktemp("browse")
    config = tmp / "c.toml"
    config.write_text('[watchlist]\nsample = ["sp500", "core-cpi"]\n' + FAST_MODEL)
    db = f"sqlite:///{tmp / 'tc.db'}"
    done = run_cli("--config", str(config), "--db", db, "run", "-q")
    assert done.returncode == 0, done.stderr
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    with open(tmp / "browse.log", "w") as log:
        proc = subprocess.Popen(
            [*tickcast_executable(), "--config", str(config), "--db", db, "browse", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        fetch_json(f"{base}/-/versions.json", timeout=60)
        yield base, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_metadata_applies_whatever_the_file_is_called(served):
    base, _ = served
    database = fetch_json(f"{base}/tc.json")
    hidden = {t["name"] for t in database["tables"] if t["hidden"]}
    assert hidden == {"alembic_version", "run_lease"}
    queries = {q["name"] for q in database["queries"]}
    assert {"latest", "loss_curve", "series_forecast", "fits_summary", "accuracy"} <= queries
    tables = fetch_json(f"{base}/-/metadata.json")["databases"]
    assert set(tables) == {"tc"} and tables["tc"]["tables"]["fits"]["description"]
    assert metadata_for(datasette_name("/x/tc.db"))["databases"].keys() == {"tc"}


def test_canned_queries_round_for_display(served):
    base, _ = served
    curve = fetch_json(f"{base}/tc/loss_curve.json?key={KEY}&_shape=array")
    assert [r["epoch"] for r in curve][:2] == [0, 1]
    for row in curve:
        for column in ("train_loss", "val_loss"):
            value = row[column]
            assert value is None or value == float(f"{value:.4g}"), (column, value)
    fits = fetch_json(f"{base}/tc/fits_summary.json?_shape=array")
    assert {r["series"] for r in fits} == {KEY, "sample:core-cpi"}
    assert not {"hyperparams", "weights"} & set(fits[0])
    history = fetch_json(f"{base}/tc/series_forecast.json?key={KEY}&_shape=array")
    ahead = [r for r in history if r["forecast"] is not None]
    assert len(ahead) == 5 and all(r["lower"] <= r["forecast"] <= r["upper"] for r in ahead)
    assert len(history) - len(ahead) == 30  # four horizons of history, at least 30
    # the weights stay downloadable
    (fit,) = fetch_json(f"{base}/tc/fits.json?_shape=array&id=1&_col=id")
    assert status(f"{base}/tc/fits/{fit['id']}.blob?_blob_column=weights") == 200


def test_every_page_in_a_real_browser(served, tmp_path):
    base, _ = served
    database = fetch_json(f"{base}/tc.json")
    pages = ["/", "/tc"]
    pages += [f"/tc/{t['name']}" for t in database["tables"] if not t["hidden"]]
    pages += [f"/tc/{v['name']}" for v in database["views"]]
    for query in database["queries"]:
        params = f"?key={urllib.parse.quote(KEY)}" if ":key" in query["sql"] else ""
        pages.append(f"/tc/{query['name']}{params}")
    charts = {
        f"/tc/series_forecast.chart?key={KEY}": {"band", "actual", "forecast"},
        "/tc/loss_curve.chart?key=sample:core-cpi": {"train-loss", "val-loss"},
        "/tc/loss_history.chart?fit_id=1": {"train-loss", "val-loss"},  # a table filtered to one fit
    }
    pages += list(charts)
    pages.append("/tc/loss_curve.chart")  # no key: a page that says so, not an error
    pages.append("/tc/loss_history?fit_id=1")  # one fit's losses: chartable, unlike the whole table
    for page in pages:
        assert status(base + page) == 200, page

    driver = chromium(tmp_path / "profile")
    try:
        driver.set_page_load_timeout(60)
        errors = {}
        for page in pages:
            driver.get(base + page)
            assert "Error" not in driver.title, (page, driver.title)
            messages = severe_console_messages(driver)
            if messages:
                errors[page] = messages
            if page in charts:
                svg = driver.find_element("css selector", "svg.tickcast-chart")
                drawn = {
                    p.get_attribute("class"): p.get_attribute("d")
                    for p in svg.find_elements("css selector", "path")
                    if p.get_attribute("class")
                }
                assert charts[page] <= set(drawn), (page, drawn)
                assert all(d.count("L") >= 2 for d in drawn.values()), drawn  # lines, not dots
                assert svg.size["width"] > 300 and svg.size["height"] > 150
            links = [a.get_attribute("href") or "" for a in driver.find_elements("css selector", "a")]
            charted = page.startswith(("/tc/loss_curve?", "/tc/series_forecast?", "/tc/loss_history?"))
            assert any(".chart?" in href for href in links) == charted, page  # "This data as ... chart"
        assert not errors, json.dumps(errors, indent=1)
    finally:
        driver.quit()


def test_without_a_database_browse_refuses_like_the_read_commands(tmp_path):
    env = {"TICKCAST_DATA_DIR": str(tmp_path)}
    refused = run_cli("browse", "--port", str(free_port()), env=env, cwd=tmp_path)
    read = run_cli("forecasts", env=env, cwd=tmp_path)
    assert refused.returncode == read.returncode == 1
    assert refused.stderr == read.stderr and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"tickcast: no database at {tmp_path / 'tickcast.db'}: run 'tickcast init'")
    assert list(tmp_path.iterdir()) == []


def test_browse_waits_for_a_database_when_told(tmp_path):
    env = {"TICKCAST_DATA_DIR": str(tmp_path)}
    t0 = time.monotonic()
    refused = run_cli("browse", "--port", str(free_port()), "--wait", "2", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and time.monotonic() - t0 >= 2
    lines = refused.stderr.splitlines()
    assert lines[0].endswith("first; waiting up to 2 s for it") and lines[1].startswith("tickcast: no database at")


def test_the_install_hint_names_this_checkouts_pip():
    hint = install_hint()
    assert hint.startswith(str(os.path.join(os.path.dirname(sys.executable), "pip")))
    assert "-e " in hint and "[browse]" in hint and "make run" in hint
