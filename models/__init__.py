"""tickcast's forecaster: recurrent networks in pure NumPy (no autograd, no side effects).

>>> from tickcast.models import RNNForecaster
>>> m = RNNForecaster(season_length=12).fit(y)                                # doctest: +SKIP
>>> m.predict(18), m.predict_interval(18, level=0.8)                          # doctest: +SKIP
>>> g = RNNForecaster(season_length=12).fit_many([y1, y2, y3])                # doctest: +SKIP
>>> g.predict_many(18)                                                        # doctest: +SKIP

Modules: ``seasonality`` and ``windows`` (what the network sees), ``cells`` (Elman RNN and GRU
with BPTT, the ``Cell`` protocol and registry), ``network`` (one ensemble member), ``optim``
(clipping, Adam, SGD), ``train`` (the loop), ``intervals`` (conformal intervals), ``persist``
(bytes), ``forecaster`` (the public class), ``baselines`` and ``metrics``.
"""
from .baselines import drift, naive, naive2, seasonal_naive, ses, theta
from .cells import CELLS, Cell, register_cell
from .config import ForecasterConfig
from .errors import SeriesTooShort, TrainingDiverged
from .forecaster import RNNForecaster
from .metrics import mae, mase, rmse, smape
from .windows import MIN_LENGTH

__all__ = [
    "RNNForecaster", "ForecasterConfig", "TrainingDiverged", "SeriesTooShort", "MIN_LENGTH",
    "Cell", "CELLS", "register_cell",
    "naive", "seasonal_naive", "drift", "naive2", "ses", "theta", "mae", "rmse", "smape", "mase",
]
