"""The models of an older commit, imported beside today's in one process, for side-by-side figures.

    git worktree add /tmp/old8951378 8951378
    from oldcode import load_old
    old = load_old("/tmp/old8951378")      # its models/ as the package `oldmodels`
    old.RNNForecaster(season_length=12).fit(y)

The machine's speed varies by 2x from hour to hour, so a speed-up is only measured against code
running in the same process (or the same pool), interleaved, never against an old figure.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEFAULT_TREE = Path("/tmp/old8951378")
NAME = "oldmodels"


def load_old(tree: str | Path = DEFAULT_TREE, name: str = NAME) -> ModuleType:
    """``<tree>/models`` imported as the package ``name`` (its relative imports stay inside it)."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(tree) / "models"
    if not (path / "__init__.py").exists():
        raise SystemExit(f"{path} is not a models package: git worktree add {tree} <commit> first")
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py", submodule_search_locations=[str(path)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    for sub in ("cells", "params", "train", "windows", "network", "forecaster"):
        setattr(module, sub, importlib.import_module(f"{name}.{sub}"))
    return module
