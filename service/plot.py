"""``tickcast plot``: the recent series with its forecast and interval, and the loss curve of the fit
that made it. Rendered with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from .errors import TickcastError
from .queries import latest_forecasts, loss_history, recent_observations, resolve_series


def plot_series(engine: Engine, key: str, path: str, points: int = 250) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = resolve_series(engine, key)
    forecasts = latest_forecasts(engine, series.key)
    fit, history = loss_history(engine, series.key)
    observed = recent_observations(engine, series.id, points)
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise TickcastError(f"plot output must be a .png file, got {path!r}")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [3, 2]},
                                      constrained_layout=True)
    dates, values = zip(*observed)
    top.plot(dates, values, color="#1f77b4", lw=1.2, label="observed")
    last = forecasts[0]
    targets = [f["target_ts"] for f in forecasts]
    top.plot([last["last_ts"]] + targets, [last["last_value"]] + [f["forecast"] for f in forecasts], "o-",
             color="#d62728", ms=3, lw=1.2, label="forecast")
    top.fill_between(targets, [f["lower"] for f in forecasts], [f["upper"] for f in forecasts], color="#d62728",
                     alpha=0.2, label=f"{last['level']:.0%} interval")
    skill = "" if last["skill"] is None else f" — backtest skill vs naive {last['skill']:+.1%}"
    top.set_title(f"{series.key} ({series.name}){skill}")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)

    epochs = [h["epoch"] for h in history]
    bottom.plot(epochs, [h["train_loss"] for h in history], "o-", ms=3, label="train loss")
    if any(h["val_loss"] is not None for h in history):
        bottom.plot(epochs, [h["val_loss"] for h in history], "s-", ms=3, label="validation loss")
    bottom.set_xlabel("epoch (0 = before the first update)")
    bottom.set_ylabel("MSE (scaled)")
    bottom.set_title(f"fit {fit.id}: {fit.mode} {fit.cell}, {fit.epochs} epochs")
    bottom.legend()
    bottom.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
