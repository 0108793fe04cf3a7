"""Lines a test wants shown at the end of every run, passed or not (e.g. the image's size):
tests/conftest.py prints them in the terminal summary."""

lines: list[str] = []
