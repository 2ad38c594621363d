"""The README stays true: every setting is documented, and the two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table() -> None:
    for name, field in Settings.model_fields.items():
        names = [f"RAG_{name.upper()}"]
        if field.validation_alias is not None:
            names += [a for a in field.validation_alias.choices if a.isupper()]
        assert any(f"`{n}`" in README for n in names), name


def test_readme_commands_are_what_ci_runs() -> None:
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python app.py" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_module_table_lists_every_module_once() -> None:
    table = README.split("| stage | module | what it does |")[1].split("\n\n")[0]
    named = [path for row in table.splitlines()[1:] for path in re.findall(r"`(rag/[\w/]+\.py)`", row.split("|")[2])]
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "rag").rglob("*.py"))
    assert sorted(named) == modules
