"""The fingerprints stored in ``fits.settings_hash`` and the parameters a fit is trained with
(service/run/values.py), restated from their definition: the first 16 hex digits of the SHA-256
of the JSON (keys sorted) of everything that shapes a fit. A stored fingerprint that no longer
matches trains the series cold, so a change of this format retrains every stored series: it is
made on purpose (models.persist.FORMAT_VERSION is part of it), never by accident."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from tickcast.models.persist import FORMAT_VERSION
from tickcast.service.run.values import forecaster_params, group_hash, series_hash


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _basis(settings, steps: int) -> dict:
    return {
        "max_points": settings.model.max_points,
        "levels": list(settings.forecast.levels),
        "models": list(settings.model.members),
        "horizon": steps,
        "min_length": settings.forecast.min_length,
        "format": FORMAT_VERSION,
    }


def test_a_series_and_a_group_fingerprint_as_defined(make_settings):
    settings = make_settings('[model]\nmax_points = 500\nmembers = ["rnn", "theta"]\n[forecast]\nmin_length = 40\n')
    params = forecaster_params(settings.model, "csv:a", 12, 6)
    assert series_hash(params, settings.model, settings.forecast, 6) == _digest(
        {"scope": "series", "model": params, "group": None, **_basis(settings, 6)}
    )
    assert series_hash(params, settings.model, settings.forecast, 6, "g") == _digest(
        {"scope": "series", "model": params, "group": "g", **_basis(settings, 6)}
    )
    assert group_hash(params, settings.model, settings.forecast, 7, ("csv:a", "csv:b")) == _digest(
        {"scope": "group", "model": params, "members": ["csv:a", "csv:b"], **_basis(settings, 7)}
    )


@pytest.mark.parametrize(
    ("season", "steps", "read_out"),
    [(12, 18, 0), (12, 19, 19), (12, 24, 24), (12, 5, 0), (4, 6, 0), (4, 9, 9), (1, 8, 0), (1, 9, 9), (0, 9, 9)],
)
def test_the_parameters_of_a_fit(make_settings, season, steps, read_out):
    """The season and a seed of the key's own; the read-out horizon only when the steps asked for
    exceed the model's own for the season (a season and a half, at least 8: 18 for 12, 8 for 4)."""
    settings = make_settings("[model]\nseed = 11\n")
    params = forecaster_params(settings.model, "yahoo:SPY", season, steps)
    assert params == {
        **settings.model.forecaster.to_dict(),
        "seed": (11 + zlib.crc32(b"yahoo:SPY")) % 2**31,
        "season_length": season,
        "horizon": read_out,
    }
    assert forecaster_params(settings.model, "yahoo:QQQ", season, steps)["seed"] != params["seed"]


def test_a_seed_stays_below_two_to_the_31(make_settings):
    """NumPy's legacy seeding and 32-bit consumers take it: the key's checksum is reduced."""
    settings = make_settings(f"[model]\nseed = {2**31 - 1}\n")
    seeds = {forecaster_params(settings.model, f"csv:s{i}", 1, 1)["seed"] for i in range(200)}
    assert all(0 <= s < 2**31 for s in seeds) and len(seeds) == 200
    assert max(seeds) > 2**30  # the whole range is used
