"""``tickcast plot``: the recent series with its forecast and interval, the loss curve of the fit
that made it, and the realised errors and interval coverage of its past forecasts (the accuracy
ledger). Rendered with matplotlib's Agg backend (no display needed).

matplotlib is the ``plot`` extra (``pip install 'tickcast[plot]'``; the Docker image has it): it is
the largest dependency and nothing else draws, so it is imported here and only here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy.engine import Engine

from .accuracy import not_scored_yet, scored_forecasts
from .errors import TickcastError
from .queries import latest_forecasts, loss_history, recent_observations, resolve_series
from .stamps import as_datetime

MISSING = "tickcast plot needs matplotlib: pip install 'tickcast[plot]'"


def require_matplotlib() -> None:
    """Fail with one line, before any work, when the plot extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":  # matplotlib is there but broken: not a missing extra
            raise
        raise TickcastError(MISSING) from None


ZOOM_HORIZONS = 4  # the main panel shows this many horizons of the recent past ...
ZOOM_MIN_POINTS = 30  # ... and at least this many observations
PAST_ORIGINS = 12  # earlier forecasts drawn against what happened, the newest this many origins


def plot_series(engine: Engine, key: str, path: str, points: int | None = None) -> Path:
    """Draw ``key``'s recent observations (``points``, default four horizons), forecast, earlier
    forecasts against the actuals, full history and loss curve into the PNG ``path``."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise TickcastError(f"plot output must be a .png file, got {path!r}")
    if not out.parent.is_dir():
        raise TickcastError(f"no directory {str(out.parent)!r} for the plot: create it first")
    fig = draw_series(engine, key, points)
    try:
        fig.savefig(out, dpi=100)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out


def draw_series(engine: Engine, key: str, points: int | None = None):
    """The figure of ``tickcast plot`` (a matplotlib Figure; close it when done): the recent past,
    zoomed (``points`` observations; default ``ZOOM_HORIZONS`` horizons, at least
    ``ZOOM_MIN_POINTS``) with the forecast and earlier forecasts against what happened; the whole
    history small beside it; the loss curve with the early-stopping decision; the realised errors."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = resolve_series(engine, key)
    forecasts = [_on_the_clock(f) for f in latest_forecasts(engine, series.key)]
    losses = loss_history(engine, series.key)
    zoom = points or max(ZOOM_HORIZONS * len(forecasts), ZOOM_MIN_POINTS)
    everything = [(as_datetime(ts), value) for ts, value in recent_observations(engine, series.id, MAX_OVERVIEW_POINTS)]
    observed = everything[-zoom:]
    scored = [
        f
        for f in map(_on_the_clock, scored_forecasts(engine, series.id, limit=10 * zoom))
        if f["target_ts"] >= observed[0][0]
    ]

    fig = plt.figure(figsize=(11, 10), constrained_layout=True)
    grid = fig.add_gridspec(3, 4, height_ratios=[3, 2, 2])
    top, overview = fig.add_subplot(grid[0, :3]), fig.add_subplot(grid[0, 3])
    bottom, realised = fig.add_subplot(grid[1, :]), fig.add_subplot(grid[2, :])
    _draw_recent(top, series, observed, forecasts, scored)
    _draw_overview(overview, everything, observed, forecasts)
    _draw_losses(bottom, losses)
    if scored:
        draw_realised(realised, scored)
    else:
        realised.set_axis_off()
        realised.text(0.5, 0.5, not_scored_yet(engine, series), ha="center", va="center", wrap=True)
    return fig


def _on_the_clock(row: dict) -> dict:
    """A forecast row with its stamps as datetimes: an hourly series mixes dates (its midnights)
    and datetimes, which neither Python nor matplotlib compares."""
    return {k: as_datetime(v) if k.endswith("_ts") and v is not None else v for k, v in row.items()}


MAX_OVERVIEW_POINTS = 20_000  # the whole history of any daily series of the last decades


def _draw_recent(ax, series, observed: list[tuple], forecasts: list[dict], scored: list[dict]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    dates, values = zip(*observed)
    ax.plot(dates, values, color="#1f77b4", lw=1.2, label="observed")
    origins: dict = {}
    for f in scored:  # earlier forecasts, grouped by the origin they were made from
        origins.setdefault(f["origin_ts"], []).append(f)
    for i, origin in enumerate(sorted(origins)[-PAST_ORIGINS:]):
        rows = sorted(origins[origin], key=lambda f: f["step"])
        ax.plot(
            [origin] + [f["target_ts"] for f in rows],
            [rows[0]["naive_forecast"]] + [f["forecast"] for f in rows],
            "-",
            color="#7f7f7f",
            lw=0.8,
            alpha=0.6,
            label="earlier forecasts" if i == 0 else None,
        )
    last = forecasts[0]
    targets = [f["target_ts"] for f in forecasts]
    ax.plot(
        [last["last_ts"]] + targets,
        [last["last_value"]] + [f["forecast"] for f in forecasts],
        "o-",
        color="#d62728",
        ms=3,
        lw=1.2,
        label="forecast",
    )
    ax.fill_between(
        targets,
        [f["lower"] for f in forecasts],
        [f["upper"] for f in forecasts],
        color="#d62728",
        alpha=0.2,
        label=f"{last['level']:.0%} interval",
    )
    # The name often carries its own brackets ("S&P 500 index (sample)"): the key goes after a dash.
    title = series.key if not series.name or series.name == series.symbol else f"{series.name} — {series.key}"
    skill = "" if last["skill"] is None else f"; backtest skill {last['skill']:+.3f} (1 - MAE / naive MAE)"
    ax.set_title(title + skill, fontsize="medium")
    ax.set_ylabel(series.field or "value")  # the column forecast: Adj Close, a FRED id, the CSV's value
    locator = AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def _draw_overview(ax, everything: list[tuple], observed: list[tuple], forecasts: list[dict]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    dates, values = zip(*everything)
    ax.plot(dates, values, color="#1f77b4", lw=0.6)
    ax.plot([f["target_ts"] for f in forecasts], [f["forecast"] for f in forecasts], color="#d62728", lw=1.2)
    ax.axvspan(observed[0][0], forecasts[-1]["target_ts"], color="#ff7f0e", alpha=0.15, label="shown left")
    ax.set_title(f"whole history ({len(everything):,} points)", fontsize="x-small")
    locator = AutoDateLocator(maxticks=4)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize="x-small")
    ax.legend(loc="upper left", fontsize="x-small")
    ax.grid(alpha=0.3)


def early_stopping_note(fit) -> str:
    """Why the fit kept the epoch it kept: the early-stopping rule of the model (models/README.md),
    with this fit's settings."""
    params = (fit.hyperparams or {}).get("rnn", fit.hyperparams or {})  # the RNN's settings
    min_delta, significance = params.get("min_delta", 0.01), params.get("significance", 2.0)
    series = fit.n_series or 1
    bars = f"{min_delta:.1%} of the loss and {significance:g} standard errors"
    if series > 1:
        bars += f", both divided by sqrt({series}) for {series} series"
    return (
        f"kept epoch {fit.best_epoch}: no later epoch lowered the validation loss by {bars} "
        "(smaller dips are noise); then refit on all the data for that many epochs"
    )


def _draw_losses(ax, losses) -> None:
    from matplotlib.ticker import MaxNLocator

    fit, history = losses.model_fit, losses.rows
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", ms=3, label="train loss")
    has_val = any(h["val_loss"] is not None for h in history)
    if has_val:
        ax.plot(epochs, [h["val_loss"] for h in history], "s-", ms=3, label="validation loss")
    if fit.best_epoch is not None:
        # The weights kept are the best epoch's (early stopping), not the last one's.
        best = next((h for h in history if h["epoch"] == fit.best_epoch), None)
        ax.axvline(fit.best_epoch, color="#2ca02c", ls="--", lw=1, label=f"best epoch {fit.best_epoch} (kept)")
        if best is not None:
            loss = best["val_loss"] if has_val and best["val_loss"] is not None else best["train_loss"]
            ax.plot([fit.best_epoch], [loss], "*", color="#2ca02c", ms=12)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0 = before the first update)")
    loss_name = (fit.hyperparams or {}).get("rnn", fit.hyperparams or {}).get("loss", "mae")
    ax.set_ylabel(f"{loss_name.upper()} (network units)")
    shared = (
        f"group {fit.group_key}'s shared fit {fit.id} (shared by {fit.n_series} series)"
        if losses.shared
        else f"fit {fit.id}"
    )
    why = (
        "\n" + "\n".join(textwrap.wrap(early_stopping_note(fit), 130)) if has_val and fit.best_epoch is not None else ""
    )
    ax.set_title(f"{shared}: {fit.mode} {fit.cell}, {fit.epochs} epochs{why}", fontsize="medium")
    ax.legend()
    ax.grid(alpha=0.3)


def draw_realised(ax, scored: list[dict]) -> None:
    """Realised errors (actual - forecast) by target date, each with its interval around zero (misses
    marked), and on a second axis the rolling coverage against the nominal level."""
    import numpy as np
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    targets = [f["target_ts"] for f in scored]
    errors = np.array([f["error"] for f in scored])
    inside = np.array([f["inside"] for f in scored]) == 1
    below = np.array([f["forecast"] - f["lower"] for f in scored])
    above = np.array([f["upper"] - f["forecast"] for f in scored])
    ax.vlines(targets, -below, above, color="#d62728", alpha=0.25, lw=3, label="interval around the forecast")
    ax.plot([t for t, i in zip(targets, inside) if i], errors[inside], "o", color="#1f77b4", ms=3, label="inside")
    ax.plot([t for t, i in zip(targets, inside) if not i], errors[~inside], "x", color="#d62728", ms=5, label="outside")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("actual - forecast")
    locator = AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    n, level = len(scored), scored[-1]["level"]
    mae = float(np.mean(np.abs(errors)))
    naive = float(np.mean([f["naive_abs_error"] for f in scored]))
    skill = f", skill {1 - mae / naive:+.3f}" if naive > 0 else ""
    ax.set_title(
        f"realised: {n} scored forecast(s), MAE {mae:.4g} vs naive {naive:.4g}{skill}; "
        f"coverage {inside.mean():.3f} of the {level:.2f} interval"
    )
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    window = min(50, n)
    rolling = np.convolve(inside.astype(float), np.ones(window) / window, mode="valid")
    coverage = ax.twinx()
    coverage.plot(targets[window - 1 :], rolling, color="#2ca02c", lw=1.2, label=f"coverage, last {window}")
    coverage.axhline(level, color="#2ca02c", ls="--", lw=1, label=f"nominal {level:.2f}")
    coverage.set_ylim(0, 1.05)
    coverage.set_ylabel("coverage (fraction)")
    coverage.legend(loc="upper right", fontsize="small")
