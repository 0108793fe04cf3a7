"""Fixtures for the models tests: bundled sample data and synthetic series factories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tickcast.models import stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_stack_schedules():
    """A stack's schedule (which networks run at each step) is cached per process: each test
    computes its own, so what it checks never comes from an earlier test, or from the process it
    was forked from (mutation testing forks one per mutant)."""
    stack._cached_schedule.cache_clear()


def data_path(name: str) -> Path:
    """<repo>/service/data/<name>.csv.gz, else <repo>/../shared/data/<name>.csv.gz."""
    for path in (REPO / "service" / "data" / f"{name}.csv.gz", REPO.parent / "shared" / "data" / f"{name}.csv.gz"):
        if path.exists():
            return path
    # A missing file is a broken checkout, not a reason to quietly skip the real-data tests.
    pytest.fail(
        f"sample data {name}.csv.gz not found in {REPO / 'service' / 'data'} or {REPO.parent / 'shared' / 'data'}"
    )


def load_sample(name: str, column: str) -> np.ndarray:
    """A bundled series' values, oldest first, missing ('.') rows dropped."""
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(data_path(name), na_values=["."])
    df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y")
    return df.sort_values("Date")[column].dropna().to_numpy(dtype=np.float64)


@pytest.fixture(scope="session")
def sp500_close() -> np.ndarray:
    return load_sample("sp500", "Close")


@pytest.fixture(scope="session")
def wti() -> np.ndarray:
    return load_sample("wti", "DCOILWTICO")


@pytest.fixture
def make_series():
    """Factory for synthetic series: kind in {"ar1", "sine", "walk"}, seeded."""

    def make(kind: str, n: int, seed: int = 0, **kw) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if kind == "ar1":
            phi, sigma = kw.get("phi", 0.7), kw.get("sigma", 1.0)
            e = rng.normal(0.0, sigma, n + 100)
            y = np.zeros(n + 100)
            for t in range(1, n + 100):
                y[t] = phi * y[t - 1] + e[t]
            return y[100:] + kw.get("level", 0.0)
        if kind == "sine":
            t = np.arange(n)
            period, noise = kw.get("period", 12), kw.get("noise", 0.3)
            return kw.get("level", 10.0) + 3.0 * np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)
        if kind == "walk":
            return kw.get("level", 100.0) * np.exp(
                np.cumsum(rng.normal(kw.get("drift", 0.0), kw.get("sigma", 0.01), n))
            )
        raise ValueError(kind)

    return make
