"""Real components for the tests: a PostgreSQL server, HTTP servers on 127.0.0.1, a Yahoo stand-in."""
