"""The suite's one small model: tests of the service check the plumbing (the models suite checks the
numerics), so they train a network that is tiny and fast. ``small_model(**changes)`` renders its
``[model]`` table with some knobs changed (None drops a knob: the model's default applies)."""

from __future__ import annotations

SMALL_MODEL = {"hidden_size": 8, "epochs": 3, "ensemble": 1, "max_points": 300}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def small_model(**changes) -> str:
    knobs = {**SMALL_MODEL, **changes}
    return "\n[model]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in knobs.items() if v is not None)


FAST_MODEL = small_model()
