"""A fitted AutoForecaster's forecasts, intervals and reported attributes (the base class
``CombinedForecasts``): the members' forecasts combined per series with the learnt weights,
split-conformal intervals around them, every member's own forecasts and intervals, and the
attributes the service reads (the RNN member's history and scale among them).

It reads what ``AutoForecaster`` fitting sets: ``_ys`` (the series), ``_names`` (the members,
in order), ``members_``, ``_W``/``_avail`` (weights (S, M) and which members forecast each
series), ``_rnn_index`` (the series the RNN member forecasts, in its order), ``combination``,
``_conformal``, ``_ms``, ``backtests_`` and ``_cache`` (member forecasts by h).
"""

from __future__ import annotations

import numpy as np

from .challenger import check_steps
from .combine import combine_forecasts
from .conformal import Conformal, levels_of


class CombinedForecasts:
    """The forecasting half of AutoForecaster (see the module docstring)."""

    _ys: list[np.ndarray]
    _ms: list[int]
    _names: list[str]
    _W: np.ndarray
    _avail: np.ndarray
    _rnn_index: list[int]
    _conformal: list[Conformal]  # one per series
    _cache: dict
    members_: dict
    backtests_: list[dict]
    combination: str

    # ------------------------------------------------------------- forecasting
    def _check_fitted(self) -> None:
        if not self._ys:
            raise RuntimeError("AutoForecaster is not fitted; call fit(y) or fit_many(ys) first")

    def _one(self) -> int:
        self._check_fitted()
        if len(self._ys) != 1:
            raise ValueError(f"the model was fitted on {len(self._ys)} series: use predict_many(h)")
        return 0

    def _members_points(self, h: int) -> np.ndarray:
        """(S, M, h) every member's forecast (NaN where a member has none); computed once per h."""
        if h in self._cache:
            return self._cache[h]
        S = len(self._ys)
        P = np.full((S, len(self._names), h), np.nan)
        for j, name in enumerate(self._names):
            model = self.members_[name]
            if name == "rnn":  # a fitted RNN member forecasts the series _rnn_index names, in order
                for i, f in zip(self._rnn_index, model.predict_many(h)):
                    P[i, j] = f
            else:
                P[:, j] = np.array(model.predict_many(h))
        self._cache[h] = P
        return P

    def _live(self, P: np.ndarray, i: int) -> list[int]:
        return [j for j in range(len(self._names)) if self._avail[i, j] and np.all(np.isfinite(P[i, j]))]

    def _combined(self, h: int) -> np.ndarray:
        P = self._members_points(h)
        out = np.empty((len(self._ys), h))
        for i, y in enumerate(self._ys):
            live = [j for j in self._live(P, i) if self._W[i, j] > 0]
            f = combine_forecasts(P[i, live], self._W[i, live], self.combination) if live else np.full(h, y[-1])
            out[i] = np.where(np.isfinite(f), f, y[-1])
        return out

    def predict(self, h: int) -> np.ndarray:
        """The published point forecast (h,), units of y, always finite."""
        i = self._one()
        return self._combined(check_steps(h))[i]

    def predict_many(self, h: int) -> list[np.ndarray]:
        self._check_fitted()
        return list(self._combined(check_steps(h)))

    def predict_members(self, h: int) -> dict[str, np.ndarray]:
        """Every member's own forecast (h,) by name (the ones the combination used)."""
        return self.predict_members_many(h)[self._one()]

    def predict_members_many(self, h: int) -> list[dict[str, np.ndarray]]:
        self._check_fitted()
        P = self._members_points(check_steps(h))
        return [{self._names[j]: P[i, j].copy() for j in self._live(P, i)} for i in range(len(self._ys))]

    def predict_members_interval(self, h: int, level=0.8) -> dict:
        """Every member's own interval by name: ``(lower, upper)`` for one level, a list of them
        for a list of levels (the members of :meth:`predict_members`)."""
        return self.predict_members_interval_many(h, level)[self._one()]

    def predict_members_interval_many(self, h: int, level=0.8) -> list[dict]:
        """Per series, every member's own interval (from its own validation residuals) by name:
        ``(lower, upper)`` each (h,) for one level, a list of them for a list of levels."""
        self._check_fitted()
        h = check_steps(h)
        levels, single = levels_of(level)
        P = self._members_points(h)
        out: list[dict] = [{} for _ in self._ys]
        for j, name in enumerate(self._names):
            model = self.members_[name]
            if name == "rnn":
                per_level = [model.predict_interval_many(h, lv) for lv in levels]  # (levels, S_rnn)
                ivs = [[per_level[k][r] for k in range(len(levels))] for r in range(len(self._rnn_index))]
                rows = dict(zip(self._rnn_index, ivs))
            else:
                rows = dict(enumerate(model.predict_interval_many(h, levels)))
            for i, iv in rows.items():
                if j in self._live(P, i):
                    out[i][name] = iv[0] if single else iv
        return out

    def predict_interval(self, h: int, level=0.8):
        """``(lower, upper)`` each (h,) around ``predict(h)`` for one level; a list of them for a
        list of levels (e.g. [0.8, 0.95])."""
        i = self._one()
        return self._intervals(check_steps(h), level)[i]

    def predict_interval_many(self, h: int, level=0.8) -> list:
        self._check_fitted()
        return self._intervals(check_steps(h), level)

    def _intervals(self, h: int, level) -> list:
        levels, single = levels_of(level)
        points = self._combined(h)
        out = []
        for y, f, conformal in zip(self._ys, points, self._conformal):
            ivs = [conformal.interval(y, f, lv) for lv in levels]
            out.append(ivs[0] if single else ivs)
        return out

    # ------------------------------------------------- what the service reads
    @property
    def backtest_(self) -> dict:
        return self.backtests_[0]

    @property
    def weights_(self) -> list[dict[str, float]]:
        return [
            {nm: float(w) for nm, w, ok in zip(self._names, row, av) if ok} for row, av in zip(self._W, self._avail)
        ]

    @property
    def season_lengths_(self) -> list[int]:
        return self._ms

    @property
    def season_length_(self) -> int:
        return self._ms[0]

    @property
    def n_series_(self) -> int:
        return len(self._ys)

    @property
    def n_obs_(self) -> int:
        return int(self._ys[0].size)

    def _rnn_attr(self, name: str, default=None):
        self._check_fitted()
        rnn = self.members_.get("rnn")
        return getattr(rnn, name) if rnn is not None else default

    def _trained(self, key: str, name: str, default=None):
        record = getattr(self, "_rnn_record", None)
        if record is not None:
            self._check_fitted()
            return record[key]
        return self._rnn_attr(name, default)

    @property
    def history_(self) -> list[dict]:
        """The RNN member's loss history (its first ensemble member's; [] without an RNN member).
        A cold fit whose final RNN continued its validation model (a long series): that model's,
        the training from scratch; the fine-tune that followed is in ``members_["rnn"].history_``."""
        return self._trained("history", "history_", [])

    @property
    def best_epoch_(self) -> int | None:
        return self._trained("best_epoch", "best_epoch_")

    @property
    def n_epochs_(self) -> int | None:
        return self._trained("n_epochs", "n_epochs_")

    @property
    def transform_(self) -> str | None:
        return self._rnn_attr("transform_")

    @property
    def transforms_(self) -> list[str | None]:
        out: list[str | None] = [None] * len(self._ys)
        for i, t in zip(self._rnn_index, self._rnn_attr("transforms_", [])):
            out[i] = t
        return out


__all__ = ["CombinedForecasts"]
