"""The project's docs stand alone (a clone has nothing beside it) and stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from tickcast.service.cli import build_parser
from tickcast.service.status import FitMode, FitScope, FitStatus, RunStatus, Training, Trigger

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "architecture.md", ROOT / "models" / "README.md"]


def test_relative_links_resolve_inside_the_repository():
    for doc in DOCS:
        text = doc.read_text()
        assert "../shared" not in text, doc
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (doc.parent / target).resolve()
            assert resolved.exists() and ROOT in resolved.parents, (doc.name, target)
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text()


def test_the_architecture_page_names_every_command_and_status_word():
    text = (ROOT / "docs" / "architecture.md").read_text()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in commands:
        assert f"`{command}" in text, command
    for word in [*RunStatus, *Trigger, *FitStatus, *FitMode, *FitScope, *Training]:
        assert f"`{word}`" in text, word
