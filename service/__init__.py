"""tickcast service: every side effect (database, network, env, clock) lives here."""

__version__ = "0.1.0"
