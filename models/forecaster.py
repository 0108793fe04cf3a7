"""RNNForecaster: fit a recurrent network to one series and forecast its next values.

Pipeline: y -> signal z (log returns, differences or levels) -> standardised s (training-part
statistics) -> windows of length T -> GRU/Elman cell + linear read-out -> next s. Forecasts
feed their own predictions back and are mapped back to the units of y step by step.
"""
from __future__ import annotations

import numpy as np

from . import metrics, persist
from .cells import make_cell
from .config import ForecasterConfig
from .data import MIN_LENGTH, as_series, effective_window, make_windows, split_sizes
from .errors import SeriesTooShort
from .intervals import half_widths, residual_quantiles
from .params import allocate, flatten
from .train import TrainSettings, predict_scaled, train
from .transforms import Transform, choose_transform, fit_transform, signal

# Multi-step residuals for the intervals come from at most this many of the newest
# validation origins: each origin costs a window-long forward pass per step.
INTERVAL_ORIGINS = 150
# Scaled forecasts are clipped to this multiple of the largest training target: a saturated
# or badly trained network then still yields forecasts of a size the series has shown.
S_MAX_FACTOR = 1.5


class RNNForecaster:
    """A one-series forecaster; settings as keyword arguments (see ForecasterConfig).

    Fitted attributes (trailing underscore): ``history_`` (list of dicts per epoch, 0 = before
    the first update), ``backtest_`` (one-step scores on the validation part vs the naive
    forecast), ``transform_``, ``window_``, ``n_epochs_``, ``best_epoch_``, ``n_obs_``,
    ``warm_started_``.
    """

    def __init__(self, *, config: ForecasterConfig | None = None, **settings):
        base = config.to_dict() if config is not None else {}
        self.config = ForecasterConfig.from_dict({**base, **settings})
        self._flat = None

    def get_params(self) -> dict:
        """The settings as a JSON-able dict (``RNNForecaster(**m.get_params())`` clones it)."""
        return self.config.to_dict()

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != getattr(ForecasterConfig, k)}
        return f"RNNForecaster({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ fitting
    def fit(self, y, warm_start: "RNNForecaster | None" = None, epochs: int | None = None):
        """Fit on y (1-D, oldest first, finite); returns self.

        ``warm_start``: a fitted model with the same cell, hidden size and window; its weights
        are fine-tuned on the newest ``warm_windows`` training windows of y for ``epochs``
        (default ``warm_epochs``) at ``lr * warm_lr_scale``. Its transform and standardisation
        statistics are kept frozen so the weights keep their meaning; refit from scratch now
        and then to refresh them. ``epochs`` overrides the configured number for either kind.
        """
        cfg = self.config
        if epochs is not None and (int(epochs) != epochs or epochs < 0):
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        y = as_series(y)
        if warm_start is not None:
            tf, T = self._check_warm_start(warm_start, y)
            z = signal(y, tf.name)
        else:
            name = choose_transform(y, cfg.transform)
            z = signal(y, name)
            T = effective_window(cfg.window, z.size)
        N = z.size - T
        if N < 4:
            raise SeriesTooShort(f"series has {y.size} points; a window of {T} needs at least "
                                 f"{T + 4 + (y.size - z.size)}")
        n_train, n_val = split_sizes(N, cfg.val_fraction)
        if warm_start is None:
            tf = fit_transform(name, z[:n_train + T])
        X, Y = make_windows(tf.scale(z), T)                          # (N, T, 1), (N,)
        cell = make_cell(cfg.cell, 1, cfg.hidden_size, 1)
        flat, params = allocate(cell.shapes)
        rng = np.random.default_rng(cfg.seed)
        if warm_start is not None:
            flat[:] = warm_start._flat
            first = max(0, n_train - cfg.warm_windows)
            n_epochs, lr = cfg.warm_epochs if epochs is None else epochs, cfg.lr * cfg.warm_lr_scale
        else:
            flat[:] = flatten(cell.init_params(rng, cfg.out_scale), cell.shapes)
            # Start the read-out at the mean target: the first loss is then the targets'
            # variance instead of variance + mean^2 + noise from a random Why ("hockey stick").
            params["by"][:] = Y[:n_train].mean()
            first = 0
            n_epochs, lr = cfg.epochs if epochs is None else epochs, cfg.lr
        settings = TrainSettings(int(n_epochs), cfg.batch_size, lr, cfg.optimizer, cfg.clip,
                                 cfg.clip_mode, cfg.patience, cfg.min_delta, cfg.max_backoffs)
        X_val, Y_val = (X[n_train:], Y[n_train:]) if n_val else (None, None)
        history, best_epoch, epochs_run = train(cell, flat, params, X[first:n_train],
                                                Y[first:n_train], X_val, Y_val, settings, rng)
        self._cell, self._flat, self._params, self._transform = cell, flat, params, tf
        self.window_, self.transform_, self.n_obs_ = T, tf.name, int(y.size)
        self.history_, self.best_epoch_, self.n_epochs_ = history, int(best_epoch), int(epochs_run)
        self.warm_started_ = warm_start is not None
        self._s_max = S_MAX_FACTOR * float(np.max(np.abs(Y[:n_train])))
        self._y_tail = y[y.size - T - tf.lag:].copy()
        self._score_validation(y, X, n_train, n_val)
        cell.release()
        return self

    def _check_warm_start(self, prev: "RNNForecaster", y: np.ndarray) -> tuple[Transform, int]:
        if not isinstance(prev, RNNForecaster) or prev._flat is None:
            raise ValueError("warm_start must be a fitted RNNForecaster")
        ours, theirs = self.config.architecture(), prev.config.architecture()
        if ours != theirs:
            diff = {k: (theirs[k], ours[k]) for k in ours if ours[k] != theirs[k]}
            raise ValueError(f"warm_start model differs in {diff} (theirs, ours)")
        if self.config.transform not in ("auto", prev.transform_):
            raise ValueError(f"warm_start model uses transform {prev.transform_!r}, "
                             f"this one asks for {self.config.transform!r}")
        if prev.transform_ == "log_return" and np.any(y <= 0):
            raise ValueError("warm start: the model uses log returns but y has values <= 0")
        return prev._transform, prev.window_

    def _score_validation(self, y: np.ndarray, X: np.ndarray, n_train: int, n_val: int) -> None:
        """backtest_ (one-step, validation part, units of y) and the interval residuals."""
        tf, T, N = self._transform, self.window_, X.shape[0]
        last = np.arange(N) + T + tf.lag - 1          # y index of each window's last point
        scale = metrics.naive_scale(y[:last[n_train - 1] + 2])
        if n_val:
            val = np.arange(n_train, N)
            s_hat = self._clip(predict_scaled(self._cell, self._params, X[val]))   # (n_val,)
            pred = tf.next_value(y[last[val]], s_hat)
            self.backtest_ = _scores(y[last[val] + 1], pred, y[last[val]], scale)
        else:
            self.backtest_ = _scores(None, None, None, scale)
        # Residual origins: the newest validation windows, or the newest windows of all when
        # the validation part is too small to say anything (in-sample, so optimistic).
        origins = np.arange(max(n_train if n_val >= 5 else 0, N - INTERVAL_ORIGINS), N)
        K = self.config.horizon
        paths = self._paths(X[origins, :, 0], y[last[origins]], K)      # (n_o, K)
        idx = last[origins][:, None] + np.arange(1, K + 1)               # (n_o, K) y indices
        known = idx < y.size
        E = np.full(paths.shape, np.nan)
        E[known] = np.abs(tf.residual(y[idx[known]], paths[known]))
        self._Q, self._counts = residual_quantiles(E)

    # -------------------------------------------------------------- forecasting
    def predict(self, h: int, y=None) -> np.ndarray:
        """Point forecasts for the next ``h`` steps (h,), units of y, always finite.

        ``y``: forecast after this series instead of the one seen in fit (same units and
        spacing; only its last window is used, the weights and statistics stay as fitted).
        """
        tail = self._tail(y)
        ctx = self._transform.scale(signal(tail, self._transform.name))[None, :]   # (1, T)
        return self._paths(ctx, tail[-1:], self._steps(h))[0]

    def predict_interval(self, h: int, level: float = 0.8, y=None) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``, each (h,), around ``predict(h, y)``: split-conformal intervals from
        the k-step validation residuals (multiplicative for log returns), units of y."""
        point = self.predict(h, y)
        q = half_widths(self._Q, self._counts, point.size, float(level))
        lower, upper = self._transform.widen(point, q)
        return np.minimum(lower, point), np.maximum(upper, point)

    def _steps(self, h) -> int:
        if int(h) != h or h < 1:
            raise ValueError(f"h must be a positive integer, got {h!r}")
        return int(h)

    def _tail(self, y) -> np.ndarray:
        if self._flat is None:
            raise RuntimeError("RNNForecaster is not fitted; call fit(y) first")
        if y is None:
            return self._y_tail
        need = self.window_ + self._transform.lag
        y = as_series(y, min_length=need, why=f"to forecast (its window of {self.window_} "
                                                f"plus {self._transform.lag})")
        if self._transform.name == "log_return" and np.any(y[-need:] <= 0):
            raise ValueError("the model uses log returns but y has values <= 0")
        return y[-need:]

    def _clip(self, s: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(s, nan=0.0), -self._s_max, self._s_max)

    def _paths(self, ctx: np.ndarray, y_last: np.ndarray, h: int) -> np.ndarray:
        """Recursive forecasts: contexts (B, T) of scaled signal and last values (B,) -> (B, h)."""
        B, T = ctx.shape
        S = np.empty((B, T + h))
        S[:, :T] = ctx
        out = np.empty((B, h))
        y_prev = np.asarray(y_last, dtype=np.float64).copy()
        for k in range(h):
            S[:, T + k] = self._clip(predict_scaled(self._cell, self._params, S[:, k:k + T, None]))
            y_next = self._transform.next_value(y_prev, S[:, T + k])
            # Cannot happen with finite weights and clipped signals; keeps the promise anyway.
            out[:, k] = y_prev = np.where(np.isfinite(y_next), y_next, y_prev)
        return out

    # -------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The fitted model (config, transform statistics, weights, residual quantiles, tail of
        the series, history, backtest) as bytes; see models.persist."""
        self._tail(None)
        meta = {"config": self.config.to_dict(), "transform": self._transform.to_dict(),
                "window": self.window_, "n_obs": self.n_obs_, "history": self.history_,
                "backtest": self.backtest_, "best_epoch": self.best_epoch_,
                "n_epochs": self.n_epochs_, "warm_started": self.warm_started_,
                "s_max": self._s_max}
        arrays = {"weights": self._flat, "y_tail": self._y_tail, "residual_quantiles": self._Q,
                  "residual_counts": self._counts}
        return persist.pack(meta, arrays)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "RNNForecaster":
        """Inverse of :meth:`to_bytes`: forecasts are bitwise identical."""
        meta, arrays = persist.unpack(blob)
        m = cls(**meta["config"])
        m._cell = make_cell(m.config.cell, 1, m.config.hidden_size, 1)
        m._flat, m._params = allocate(m._cell.shapes)
        if arrays["weights"].shape != m._flat.shape:
            raise ValueError("model blob's weights do not match its configuration")
        m._flat[:] = arrays["weights"]
        m._transform = Transform(**meta["transform"])
        m.transform_, m.window_, m.n_obs_ = m._transform.name, int(meta["window"]), meta["n_obs"]
        m.history_, m.backtest_ = meta["history"], meta["backtest"]
        m.best_epoch_, m.n_epochs_ = meta["best_epoch"], meta["n_epochs"]
        m.warm_started_, m._s_max = meta["warm_started"], float(meta["s_max"])
        m._y_tail, m._Q = arrays["y_tail"], arrays["residual_quantiles"]
        m._counts = arrays["residual_counts"]
        return m


def _scores(actual, pred, naive, scale: float) -> dict:
    """Backtest dict: the model's and the naive forecast's MAE, RMSE, sMAPE and MASE."""
    if actual is None or len(actual) == 0:
        keys = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape",
                "naive_mase", "relative_mae")
        return {"n": 0, **{k: None for k in keys}, "mase_scale": scale}
    out = {"n": int(len(actual))}
    for prefix, p in (("", pred), ("naive_", naive)):
        out[prefix + "mae"] = metrics.mae(actual, p)
        out[prefix + "rmse"] = metrics.rmse(actual, p)
        out[prefix + "smape"] = metrics.smape(actual, p)
        out[prefix + "mase"] = out[prefix + "mae"] / scale if scale > 0 else None
    out["relative_mae"] = out["mae"] / out["naive_mae"] if out["naive_mae"] > 0 else None
    out["mase_scale"] = scale
    return out


__all__ = ["RNNForecaster", "MIN_LENGTH"]
