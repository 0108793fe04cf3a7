"""tickcast.service: every side effect (database, network, env, clock) lives here."""

from tickcast import __version__

__all__ = ["__version__"]
