"""tickcast.service: every side effect (database, network, env, clock) lives here."""
