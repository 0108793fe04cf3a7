"""tickcast: a time-series forecasting service.

Installed, the repository's folders are subpackages of this one name:
``tickcast.service`` (every side effect: config, database, sources, pipeline, scheduler, CLI),
``tickcast.models`` (the pure-NumPy forecaster) and ``tickcast.migrations`` (Alembic).
``python -m tickcast`` is the ``tickcast`` command.
"""

__version__ = "0.1.0"
