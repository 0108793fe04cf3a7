"""``tickcast plot``: the recent series with its forecast and interval, the loss curve of the fit
that made it, and the realised errors and interval coverage of its past forecasts (the accuracy
ledger). Rendered with matplotlib's Agg backend (no display needed).

matplotlib is the ``plot`` extra (``pip install 'tickcast[plot]'``; the Docker image has it): it is
the largest dependency and nothing else draws, so it is imported here and only here.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from .accuracy import not_scored_yet, scored_forecasts
from .errors import TickcastError
from .queries import latest_forecasts, loss_history, recent_observations, resolve_series

MISSING = "tickcast plot needs matplotlib: pip install 'tickcast[plot]'"


def require_matplotlib() -> None:
    """Fail with one line, before any work, when the plot extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":  # matplotlib is there but broken: not a missing extra
            raise
        raise TickcastError(MISSING) from None


def plot_series(engine: Engine, key: str, path: str, points: int = 250) -> Path:
    """Draw ``key``'s newest ``points`` observations, forecast and loss curve into the PNG ``path``."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise TickcastError(f"plot output must be a .png file, got {path!r}")
    fig = draw_series(engine, key, points)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out


def draw_series(engine: Engine, key: str, points: int = 250):
    """The figure of ``tickcast plot`` (a matplotlib Figure; close it when done)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = resolve_series(engine, key)
    forecasts = latest_forecasts(engine, series.key)
    losses = loss_history(engine, series.key)
    fit, history = losses.model_fit, losses.rows
    observed = recent_observations(engine, series.id, points)
    scored = [f for f in scored_forecasts(engine, series.id, limit=10 * points) if f["target_ts"] >= observed[0][0]]

    fig, (top, bottom, realised) = plt.subplots(
        3, 1, figsize=(10, 10), gridspec_kw={"height_ratios": [3, 2, 2]}, constrained_layout=True
    )
    dates, values = zip(*observed)
    top.plot(dates, values, color="#1f77b4", lw=1.2, label="observed")
    last = forecasts[0]
    targets = [f["target_ts"] for f in forecasts]
    top.plot(
        [last["last_ts"]] + targets,
        [last["last_value"]] + [f["forecast"] for f in forecasts],
        "o-",
        color="#d62728",
        ms=3,
        lw=1.2,
        label="forecast",
    )
    top.fill_between(
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
    top.set_title(title + skill)
    top.set_ylabel(series.field or "value")  # the column forecast: Adj Close, a FRED id, the CSV's value
    top.legend(loc="upper left")
    top.grid(alpha=0.3)

    epochs = [h["epoch"] for h in history]
    bottom.plot(epochs, [h["train_loss"] for h in history], "o-", ms=3, label="train loss")
    has_val = any(h["val_loss"] is not None for h in history)
    if has_val:
        bottom.plot(epochs, [h["val_loss"] for h in history], "s-", ms=3, label="validation loss")
    if fit.best_epoch is not None:
        # The weights kept are the best epoch's (early stopping), not the last one's.
        best = next((h for h in history if h["epoch"] == fit.best_epoch), None)
        bottom.axvline(
            fit.best_epoch, color="#2ca02c", ls="--", lw=1, label=f"best epoch {fit.best_epoch} (its weights are kept)"
        )
        if best is not None:
            loss = best["val_loss"] if has_val and best["val_loss"] is not None else best["train_loss"]
            bottom.plot([fit.best_epoch], [loss], "*", color="#2ca02c", ms=12)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("epoch (0 = before the first update)")
    loss_name = (fit.hyperparams or {}).get("loss", "mse")
    bottom.set_ylabel(f"{loss_name.upper()} (network units)")
    shared = (
        f"group {fit.group_key}'s shared fit {fit.id} (shared by {fit.n_series} series)"
        if losses.shared
        else f"fit {fit.id}"
    )
    bottom.set_title(f"{shared}: {fit.mode} {fit.cell}, {fit.epochs} epochs")
    bottom.legend()
    bottom.grid(alpha=0.3)
    if scored:
        draw_realised(realised, scored)
    else:
        realised.set_axis_off()
        realised.text(0.5, 0.5, not_scored_yet(engine, series), ha="center", va="center", wrap=True)
    return fig


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
