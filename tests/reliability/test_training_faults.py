"""Training that goes wrong: an absurd learning rate, a series with a huge jump. Each fit is either
clipped into something finite or recorded as diverged; no NaN or infinity reaches any table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from .scenario import query, run_tickcast

FLOAT_COLUMNS = {
    "observations": ["value"],
    "fits": [
        "train_loss",
        "val_loss",
        "mae",
        "rmse",
        "smape",
        "mase",
        "naive_mae",
        "naive_rmse",
        "naive_smape",
        "naive_mase",
        "skill",
        "seconds",
    ],
    "loss_history": ["train_loss", "val_loss", "grad_norm", "clip_fraction"],
    "forecasts": ["value", "lower", "upper", "level"],
}


def non_finite_cells(env) -> list:
    bad = []
    for table, columns in FLOAT_COLUMNS.items():
        for column in columns:
            # SQLite keeps inf as a REAL (and NaN as NULL): check every value read back
            for (value,) in query(env, f"SELECT {column} FROM {table}"):
                if value is not None and not math.isfinite(value):
                    bad.append((table, column, value))
    return bad


def world(tmp_path, model: str) -> dict:
    rng = np.random.default_rng(9)
    dates = pd.bdate_range("2020-01-01", periods=400)
    jump = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    jump[250:] *= 1e6  # a redenomination-sized jump
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": jump}).to_csv(tmp_path / "jump.csv", index=False)
    spike = np.sin(np.arange(400) / 7)
    spike[300] = 1e9
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": spike}).to_csv(tmp_path / "spike.csv", index=False)
    (tmp_path / "tickcast.toml").write_text(f"""
[service]
workers = 1
[watchlist]
sample = ["sp500"]
[[series]]
key = "csv:jump"
path = "jump.csv"
price = true
[[series]]
key = "csv:spike"
path = "spike.csv"
[model]
hidden_size = 8
epochs = 5
ensemble = 1
max_points = 400
{model}
""")
    return {"TICKCAST_CONFIG": str(tmp_path / "tickcast.toml"), "TICKCAST_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize(
    "model,label",
    [
        ("", "huge jumps, default settings"),
        ("lr = 1000000.0", "absurd learning rate"),
        ('lr = 1000000.0\nclip_mode = "value"', "absurd learning rate, element-wise clipping"),
        ('lr = 50.0\noptimizer = "sgd"\nclip = 0.0', "absurd learning rate, no clipping"),
    ],
)
def test_no_nan_or_infinity_reaches_any_table(tmp_path, model, label, ledger):
    env = world(tmp_path, model)
    done = run_tickcast(env, "run", "-q")
    assert done.returncode in (0, 1, 3), done.stderr
    assert "Traceback" not in done.stderr
    fits = query(env, "SELECT s.key, f.status, f.error FROM fits f JOIN series s ON s.id = f.series_id")
    assert len(fits) == 3
    for _key, status, error in fits:
        assert status in ("ok", "failed")
        if status == "failed":  # reported, with the reason, on the fit and on stderr
            assert error.startswith("TrainingDiverged") and f"tickcast: {error}" in done.stderr
    assert non_finite_cells(env) == []
    failed = sum(status == "failed" for _, status, _ in fits)
    (status,) = query(env, "SELECT status FROM runs")[0]
    assert status == ("ok" if failed == 0 else "failed" if failed == 3 else "partial")
    ledger.record(f"training: {label}", injected=3, survived=3)
