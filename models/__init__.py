"""tickcast's forecaster: recurrent networks in pure NumPy (no autograd, no side effects).

>>> from tickcast.models import RNNForecaster
>>> m = RNNForecaster(season_length=12).fit(y)                                # doctest: +SKIP
>>> m.predict(18), m.predict_interval(18, level=0.8)                          # doctest: +SKIP
>>> g = RNNForecaster(season_length=12).fit_many([y1, y2, y3])                # doctest: +SKIP
>>> g.predict_many(18)                                                        # doctest: +SKIP

Modules: ``seasonality`` and ``windows`` (what the network sees), ``cells`` (Elman RNN and GRU
with BPTT, the ``Cell`` protocol and registry), ``network`` (one ensemble member), ``optim``
(clipping, Adam, SGD), ``train`` (the loop), ``intervals`` (conformal intervals), ``persist``
(bytes), ``forecaster`` (the public class), ``baselines`` and ``metrics``; the published forecast
``auto`` (AutoForecaster: the RNN and the challengers combined, ``combine``), the challengers
``ets`` (AutoETS), ``theta_models`` (Theta, DOTM) and ``challenger`` (their contract, Naive,
SeasonalNaive), their shared ``validation`` protocol and ``conformal`` intervals.
"""

# Lazy (PEP 562): `from tickcast.models import ForecasterConfig` loads the settings class without
# NumPy (the service checks its config with it on every start-up); the rest loads on first use.
_EXPORTS = {
    "RNNForecaster": ".forecaster",
    "AutoForecaster": ".auto",
    "AutoETS": ".ets",
    "Theta": ".theta_models",
    "Naive": ".challenger",
    "SeasonalNaive": ".challenger",
    "ForecasterConfig": ".config",
    "TrainingDiverged": ".errors",
    "SeriesTooShort": ".errors",
    "MIN_LENGTH": ".windows",
    "Cell": ".cells",
    "CELLS": ".cells",
    "register_cell": ".cells",
    "naive": ".baselines",
    "seasonal_naive": ".baselines",
    "drift": ".baselines",
    "naive2": ".baselines",
    "ses": ".baselines",
    "theta": ".baselines",
    "mae": ".metrics",
    "rmse": ".metrics",
    "smape": ".metrics",
    "mase": ".metrics",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
