"""tickcast's forecaster: a recurrent network in pure NumPy (no autograd, no side effects).

>>> from tickcast.models import RNNForecaster
>>> m = RNNForecaster(cell="gru", hidden_size=32, window=30, seed=0).fit(y)   # doctest: +SKIP
>>> m.predict(5), m.predict_interval(5, level=0.8)                            # doctest: +SKIP

Modules: ``cells`` (Elman RNN and GRU with BPTT), ``transforms`` and ``data`` (what the
network sees), ``optim`` (clipping, Adam, SGD), ``train`` (the loop), ``intervals``
(conformal intervals), ``persist`` (bytes), ``baselines`` and ``metrics``.
"""
from .baselines import drift, naive, seasonal_naive
from .config import ForecasterConfig
from .data import MIN_LENGTH
from .errors import SeriesTooShort, TrainingDiverged
from .forecaster import RNNForecaster
from .metrics import mae, mase, rmse, smape

__all__ = [
    "RNNForecaster", "ForecasterConfig", "TrainingDiverged", "SeriesTooShort", "MIN_LENGTH",
    "naive", "seasonal_naive", "drift", "mae", "rmse", "smape", "mase",
]
