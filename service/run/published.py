"""The forecaster tickcast publishes, as the train stage uses it: ``tickcast.models.AutoForecaster``,
the RNN combined with statistical challengers (``model.members``), built from the RNN's settings
(``forecaster_params``), fitted cold or warm, per series or across a group's series, and read back
as plain data: the RNN's loss history, and for each series the published forecast, its intervals
at every level, each combined model's own forecast and how they were combined.
"""

from __future__ import annotations

import numpy as np

from tickcast.models import AutoForecaster, RNNForecaster

from .values import Forecast, Intervals, ModelForecast

AUTO_MAGIC = b"tickcast-auto\n"  # the first bytes of an AutoForecaster's blob (models/auto.py)


def forecaster(params: dict, members: tuple[str, ...]) -> AutoForecaster:
    """An AutoForecaster of ``members`` whose RNN has ``params`` (``forecaster_params``: the seed and
    the season are the combination's, the rest the RNN's)."""
    rnn = {k: v for k, v in params.items() if k not in ("season_length", "seed")}
    return AutoForecaster(season_length=params["season_length"], seed=params["seed"], members=members, rnn=rnn)


def load(blob: bytes) -> AutoForecaster:
    """A stored model to continue. A fit stored before tickcast published combinations holds an
    RNNForecaster alone: it cannot be continued as a combination (ValueError: trained cold)."""
    if not bytes(blob[: len(AUTO_MAGIC)]) == AUTO_MAGIC:
        RNNForecaster.from_bytes(blob)  # a corrupt blob says so; a sound one is only from before
        raise ValueError("the stored model is an RNN alone, from before the published combination")
    return AutoForecaster.from_bytes(blob)


def fit(model: AutoForecaster, values, previous: AutoForecaster | None, across: bool) -> AutoForecaster:
    """``model`` fitted on one series (``values``: an array) or across several (a list), cold or
    continuing ``previous``."""
    method = model.fit_many if across else model.fit
    return method(values, warm_start=previous)


def history(model: AutoForecaster) -> list[dict]:
    """The RNN's loss history (epoch 0 = before the first update; a long series' cold fit: its
    validation model's training, which its final model continued); none without an RNN member."""
    return list(model.history_)


def epochs(model: AutoForecaster) -> tuple[int | None, int | None, str | None]:
    """(epochs run, best epoch, the first series' scale) of the RNN member (as ``history``; all
    None without one)."""
    return model.n_epochs_, model.best_epoch_, model.transform_


def forecasts(model: AutoForecaster, horizon: int, levels: tuple[float, ...]) -> list[Forecast]:
    """One Forecast per series the model was fitted on, in their order (plain lists, finite)."""
    points = model.predict_many(horizon)
    intervals = model.predict_interval_many(horizon, level=list(levels))
    members = model.predict_members_many(horizon)
    member_intervals = model.predict_members_interval_many(horizon, level=list(levels))
    transforms = model.transforms_  # each series' scale in the RNN (None where it does not forecast it)
    out = []
    for i, point in enumerate(points):
        own = {
            name: ModelForecast(_floats(p), _intervals(levels, member_intervals[i][name]))
            for name, p in members[i].items()
            if name in member_intervals[i]
        }
        out.append(
            Forecast(
                backtest=dict(model.backtests_[i]),
                point=_floats(point),
                intervals=_intervals(levels, intervals[i]),
                transform=transforms[i],
                members=own,
                combination={"weights": model.weights_[i], "rule": model.chosen_[i]},
            )
        )
    return out


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64)]


def _intervals(levels: tuple[float, ...], by_level: list) -> Intervals:
    """level -> (lower, upper) from a list of (lower, upper), one per level in order."""
    return {float(lv): (_floats(lo), _floats(hi)) for lv, (lo, hi) in zip(levels, by_level)}
