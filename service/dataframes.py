"""The DataFrame API, in Nixtla's conventions (statsforecast, neuralforecast): ``tickcast.forecast``
and ``tickcast.cross_validation`` on a long frame of ``unique_id``, ``ds``, ``y``.

A thin layer above ``tickcast.models`` (which stays NumPy-only): it turns frames into arrays and
back, dates the forecasts (a pandas frequency, or the trading days of an exchange calendar such as
``"XNYS"``; data measured within a day, such as hourly, steps by its own spacing and has a daily
and a weekly season) and trains what the service publishes, the way the service decides it: each series
alone, or, for ``model.group_min_series`` or more series of one frequency that are not long, one
model across them and one each, the better on validation kept (``model.training = "auto"``).

    >>> import tickcast
    >>> tickcast.forecast(df, h=14, level=[80, 95])                  # doctest: +SKIP
       unique_id         ds   tickcast  tickcast-lo-80  tickcast-hi-80  tickcast-lo-95  tickcast-hi-95
    >>> tickcast.cross_validation(df, h=14, n_windows=3)             # doctest: +SKIP
       unique_id         ds     cutoff    y   tickcast  tickcast-lo-80 ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import mean, median
from typing import TYPE_CHECKING

import numpy as np

from tickcast.models import AutoForecaster
from tickcast.models.config import LIMITS

from .calendars import calendar_names, next_trading_days
from .errors import TickcastError
from .frequencies import FREQUENCIES, infer_frequency
from .frequencies import horizon as default_horizon
from .run import published
from .run.values import forecaster_params, relative_mae
from .settings import ModelSettings

if TYPE_CHECKING:
    import pandas as pd
    from pandas.tseries.offsets import BaseOffset

MODEL = "tickcast"  # the forecast's column, and the prefix of its interval columns
COLUMNS = ("unique_id", "ds", "y")
# The pandas frequencies of tickcast's frequency codes (a monthly series keeps month starts or ends).
PANDAS_FREQ = {"B": "B", "D": "D", "W": "W", "M": "MS", "Q": "QS", "A": "YS"}
# Data measured within a day (hourly, every 30 minutes ...): spaced by less than this, a series is
# stepped by its own spacing, with a daily and a weekly season (the week where it is long enough:
# AutoForecaster's choice per series), and forecast 48 steps ahead by default (M4's hourly horizon).
SUB_DAILY_GAP_SECONDS = 18 * 3600
SUB_DAILY_HORIZON = 48
DAY_SECONDS = 86400


class FrameError(TickcastError, ValueError):
    """A frame tickcast cannot forecast: the message names what was expected."""


@dataclass(frozen=True)
class _Series:
    uid: object
    dates: pd.DatetimeIndex
    y: np.ndarray
    code: str | None  # tickcast's frequency code (B, D, W, M, Q, A) when known
    offset: BaseOffset  # the pandas offset the future dates step by
    season: int | tuple[int, ...]  # the model's season length(s): its frequency's (0: detected per series)

    @property
    def group(self) -> str:
        """The series trained across with it: one frequency and season (the seed of their model)."""
        return f"{self.code or self.offset.freqstr}/{self.season}"

    @property
    def horizon(self) -> int:
        """The steps forecast unless ``h`` is given: its frequency's horizon (48 within a day)."""
        return SUB_DAILY_HORIZON if _sub_daily(self.offset) else default_horizon(self.code)


def forecast(
    df,
    h: int | None = None,
    freq: str | None = None,
    level: Sequence[float] = (80, 95),
    calendar: str | None = None,
    seed: int = 0,
    model: ModelSettings | None = None,
) -> pd.DataFrame:
    """Forecast every series of ``df`` ``h`` steps ahead (default: the horizon of its frequency: 5
    trading days, 14 days, 13 weeks, 18 months, 8 quarters, 6 years; 48 steps of data measured
    within a day, such as hourly) with intervals at ``level``
    (percent, as Nixtla's libraries take them, or fractions).

    ``df``: a long frame with ``unique_id``, ``ds`` (dates) and ``y``, or a Series with a
    DatetimeIndex. ``freq``: a pandas frequency (default: inferred per series). ``calendar``: an
    exchange calendar (``"XNYS"``, ``"XLON"``, ``"us-federal"`` ...) whose trading days are the
    future dates of daily series. Returns a long frame: ``unique_id``, ``ds``, ``tickcast`` and
    ``tickcast-lo-80``, ``tickcast-hi-80`` style columns."""
    series = _series(df, freq, calendar)
    levels = _levels(level)
    if h is not None:
        _positive("h", h)
    steps = {s.uid: h or s.horizon for s in series}
    models = _fit(series, model or ModelSettings(), seed, steps)
    return _frame(series, models, steps, levels, calendar)


def cross_validation(
    df,
    h: int,
    n_windows: int = 1,
    step_size: int | None = None,
    freq: str | None = None,
    level: Sequence[float] = (80, 95),
    calendar: str | None = None,
    seed: int = 0,
    model: ModelSettings | None = None,
) -> pd.DataFrame:
    """Rolling-origin evaluation: ``n_windows`` cutoffs ``step_size`` (default ``h``) steps apart,
    the last ``h`` steps before the end of each series; at each cutoff every series is forecast
    from its data up to the cutoff only (no look-ahead), as ``forecast`` would. Returns
    ``forecast``'s columns plus ``cutoff`` (the last date used) and ``y`` (what happened)."""
    import pandas as pd

    _positive("h", h)
    _positive("n_windows", n_windows)
    step_size = h if step_size is None else step_size
    _positive("step_size", step_size)
    series = _series(df, freq, calendar)
    levels = _levels(level)
    frames = []
    for window in range(n_windows):
        back = h + (n_windows - 1 - window) * step_size  # observations after the cutoff
        cut = []
        for s in series:
            if s.y.size - back < 3:
                raise FrameError(
                    f"series {s.uid!r} has {s.y.size} observations: too few for {n_windows} window(s) of {h} "
                    f"steps {step_size} apart (each cutoff needs at least 3 observations before it)"
                )
            cut.append(replace(s, dates=s.dates[: s.y.size - back], y=s.y[: s.y.size - back]))
        steps = {s.uid: h for s in cut}
        models = _fit(cut, model or ModelSettings(), seed, steps)
        frame = _frame(cut, models, steps, levels, calendar)
        actual = {s.uid: dict(zip(s.dates, s.y)) for s in series}
        frame.insert(2, "cutoff", frame["unique_id"].map({s.uid: s.dates[-1] for s in cut}))
        frame.insert(3, "y", [actual[u].get(d, np.nan) for u, d in zip(frame["unique_id"], frame["ds"])])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- frames in, frames out -------------------------------------------------------------------------


def _series(df, freq: str | None, calendar: str | None) -> list[_Series]:
    import pandas as pd

    if calendar is not None and calendar not in calendar_names():
        raise FrameError(f"calendar must be an exchange calendar such as XNYS or XLON, or us-federal, got {calendar!r}")
    if isinstance(df, pd.Series):
        if not isinstance(df.index, pd.DatetimeIndex):
            raise FrameError("a Series to forecast needs a DatetimeIndex (its dates); or pass a frame with "
                             "columns unique_id, ds, y")  # fmt: skip
        df = pd.DataFrame({"unique_id": df.name if df.name is not None else "y", "ds": df.index, "y": df.to_numpy()})
    if not isinstance(df, pd.DataFrame):
        raise FrameError(f"expected a pandas DataFrame with columns unique_id, ds, y (or a Series), got {type(df)}")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise FrameError(
            f"the frame needs columns unique_id, ds, y (Nixtla's long format); missing: {', '.join(missing)} "
            f"(columns: {', '.join(map(str, df.columns)) or 'none'})"
        )
    try:
        ds = pd.to_datetime(df["ds"])
    except (ValueError, TypeError) as exc:
        raise FrameError(f"column ds must hold dates: {str(exc).splitlines()[0]}") from None
    y = pd.to_numeric(df["y"], errors="coerce")
    if y.isna().any():
        bad = df.loc[y.isna(), "y"].iloc[0]
        shown = "a missing value" if pd.isna(bad) else repr(bad)
        raise FrameError(f"column y must hold numbers, without gaps; got {shown} (drop or fill missing values first)")
    frame = pd.DataFrame({"unique_id": df["unique_id"].to_numpy(), "ds": ds.to_numpy(), "y": y.to_numpy(float)})
    out = []
    for uid, group in frame.groupby("unique_id", sort=False):
        group = group.sort_values("ds")
        if group["ds"].duplicated().any():
            raise FrameError(f"series {uid!r} has the date {group['ds'][group['ds'].duplicated()].iloc[0]} twice")
        if len(group) < 3:
            raise FrameError(f"series {uid!r} has {len(group)} observation(s): at least 3 are needed")
        dates = pd.DatetimeIndex(group["ds"])
        out.append(_Series(uid, dates, group["y"].to_numpy(float), *_frequency(dates, freq, calendar)))
    if not out:
        raise FrameError("the frame has no rows")
    return out


def _frequency(
    dates: pd.DatetimeIndex, freq: str | None, calendar: str | None
) -> tuple[str | None, BaseOffset, int | tuple[int, ...]]:
    """(tickcast's frequency code or None, the pandas offset of the future dates, the season)."""
    import pandas as pd
    from pandas.tseries.frequencies import to_offset

    if freq is not None:
        try:
            offset = to_offset(freq)
        except ValueError:
            raise FrameError(f"freq must be a pandas frequency such as D, B, W, MS, QS or h, got {freq!r}") from None
        if offset.n < 1:
            raise FrameError(f"freq must step forward in time, got {freq!r}")
        if _sub_daily(offset):
            return None, offset, _daily_seasons(offset)
        name = offset.rule_code.split("-")[0].rstrip("SE") or offset.rule_code
        known = {"B": "B", "C": "B", "D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "A", "A": "A"}
        code = known.get(name) if offset.n == 1 else None  # every ten days is not daily data
        return code, offset, _season(code)
    if calendar is None:
        recent = dates[-120:]
        gap = float(np.median((recent[1:] - recent[:-1]).total_seconds()))
        if gap < SUB_DAILY_GAP_SECONDS:  # hourly and the like: step by the spacing itself
            offset = to_offset(pd.Timedelta(seconds=round(gap)))
            return None, offset, _daily_seasons(offset)
    code = "B" if calendar is not None else infer_frequency(list(dates.date))
    if code is None:
        raise FrameError("cannot infer the frequency of a series from its dates: pass freq")
    pandas_freq = PANDAS_FREQ[code]
    if code in ("M", "Q", "A") and dates[-1].is_month_end:  # month ends stay month ends
        pandas_freq = pandas_freq.replace("S", "E")
    if code == "W":
        pandas_freq = f"W-{dates[-1].day_name()[:3].upper()}"
    return code, to_offset(pandas_freq), _season(code)


def _season(code: str | None) -> int | tuple[int, ...]:
    return FREQUENCIES[code].season_length if code in FREQUENCIES else 0


def _sub_daily(offset) -> bool:
    """A fixed step shorter than a day (an hour, 30 minutes ...)."""
    try:
        nanos = offset.nanos  # fixed steps only: pandas raises for months, business days ...
    except (AttributeError, ValueError):
        return False
    return 0 < nanos < SUB_DAILY_GAP_SECONDS * 10**9


def _daily_seasons(offset) -> int | tuple[int, ...]:
    """A day and a week of steps (24 and 168 for hourly data), those the model takes (a season of at
    most 400 steps: 15-minute data has the day only); 0 (detected per series) when a day is not a
    whole number of steps or longer than that."""
    per_day, rest = divmod(DAY_SECONDS * 10**9, offset.nanos)
    periods = tuple(p for p in (int(per_day), 7 * int(per_day)) if p <= LIMITS["season_length"])
    if rest or per_day < 2 or not periods:
        return 0
    return periods if len(periods) > 1 else periods[0]


def _levels(level: Sequence[float]) -> list[float]:
    """Coverage levels as percentages (80, 95): percent as Nixtla takes them, or fractions."""
    if isinstance(level, (int, float)):
        level = [level]
    try:
        values = [float(v) for v in level]
    except (TypeError, ValueError):
        raise FrameError(f"level must be coverages such as [80, 95] (or [0.8, 0.95]), got {level!r}") from None
    percents = [v * 100 if 0 < v < 1 else v for v in values]
    if not all(0 < v < 100 for v in percents):
        raise FrameError(f"level must be coverages between 0 and 100 (percent) or 0 and 1, got {list(level)!r}")
    return sorted(set(percents))


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FrameError(f"{name} must be a positive integer, got {value!r}")


def _future(s: _Series, steps: int, calendar: str | None) -> list:
    import pandas as pd

    if calendar is not None and s.code == "B":
        return [pd.Timestamp(d) for d in next_trading_days(s.dates[-1].date(), calendar, steps)]
    return list(pd.date_range(s.dates[-1], periods=steps + 1, freq=s.offset)[1:])


def _frame(series, models: dict, steps: dict, levels: list[float], calendar: str | None) -> pd.DataFrame:
    import pandas as pd

    rows: dict[str, list] = {"unique_id": [], "ds": [], MODEL: []}
    for lv in levels:
        rows[f"{MODEL}-lo-{lv:g}"], rows[f"{MODEL}-hi-{lv:g}"] = [], []
    fractions = tuple(lv / 100 for lv in levels)
    made: dict[int, list] = {}  # id(model) -> its Forecasts (a model across series is asked once)
    for s in series:
        fitted, index = models[s.uid]
        h = steps[s.uid]
        key = id(fitted)
        if key not in made:
            made[key] = published.forecasts(
                fitted, max(steps[t.uid] for t in series if models[t.uid][0] is fitted), fractions
            )
        forecast = made[key][index]
        rows["unique_id"] += [s.uid] * h
        rows["ds"] += _future(s, h, calendar)
        rows[MODEL] += forecast.point[:h]
        for lv, fraction in zip(levels, fractions):
            lower, upper = forecast.intervals[fraction]
            rows[f"{MODEL}-lo-{lv:g}"] += lower[:h]
            rows[f"{MODEL}-hi-{lv:g}"] += upper[:h]
    return pd.DataFrame(rows)


# --- what the service publishes ------------------------------------------------------------------------


def _fit(series: list[_Series], model: ModelSettings, seed: int, steps: dict) -> dict:
    """uid -> (the published forecaster fitted, the series' index in it): each series alone, or a
    group of one frequency across series when ``model.training`` asks for it and validation agrees.
    Each is seeded as the service seeds it (from the series' id, or the group's key)."""
    model = replace(model, forecaster=replace(model.forecaster, seed=seed))
    groups: dict[str, list[_Series]] = {}
    for s in series:
        groups.setdefault(s.group, []).append(s)
    out: dict = {}
    for group, members in groups.items():
        season = members[0].season
        together = None
        if _group_qualifies(model, members):
            h = max(steps[s.uid] for s in members)
            params = forecaster_params(model, group, season, h)
            together = published.forecaster(params, model.members).fit_many([s.y for s in members])
        alone = {}
        if together is None or model.training != "group":
            for s in members:
                params = forecaster_params(model, str(s.uid), season, steps[s.uid])
                alone[s.uid] = published.forecaster(params, model.members).fit(s.y)
        if together is not None and (not alone or _validates_better(together, [alone[s.uid] for s in members])):
            out.update({s.uid: (together, i) for i, s in enumerate(members)})
        else:
            out.update({uid: (m, 0) for uid, m in alone.items()})
    return out


def _group_qualifies(model: ModelSettings, members: list[_Series]) -> bool:
    if model.training == "series" or len(members) < model.group_min_series:
        return False
    return model.training == "group" or median(s.y.size for s in members) <= model.group_max_median_length


def _validates_better(together: AutoForecaster, alone: list[AutoForecaster]) -> bool:
    """``auto``'s rule (service/run/settle.py): the lower mean relative validation MAE wins; a tie
    keeps the per-series models."""
    pairs = [(relative_mae(g), relative_mae(a.backtests_[0])) for g, a in zip(together.backtests_, alone)]
    scored = [(g, a) for g, a in pairs if g is not None and a is not None]
    return bool(scored) and mean(g for g, _ in scored) < mean(a for _, a in scored)
