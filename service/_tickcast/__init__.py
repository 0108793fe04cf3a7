"""tickcast: a time-series forecasting service.

Installed, the repository's folders are subpackages of this one name:
``tickcast.service`` (every side effect: config, database, sources, pipeline, scheduler, CLI),
``tickcast.models`` (the pure-NumPy forecaster) and ``tickcast.migrations`` (Alembic).
``python -m tickcast`` is the ``tickcast`` command; ``tickcast.forecast`` and
``tickcast.cross_validation`` are the DataFrame API (Nixtla's long format: unique_id, ds, y).
"""

__version__ = "0.1.0"

# The DataFrame API (service/dataframes.py), loaded on first use: `import tickcast` stays light.
_LAZY = {"forecast", "cross_validation", "FrameError"}
__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tickcast' has no attribute {name!r}")
    from tickcast.service import dataframes

    value = getattr(dataframes, name)
    globals()[name] = value
    return value
