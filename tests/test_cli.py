"""The `rag` command on a fresh store prints what a person asked for, and no library chatter.

Each test runs the command as a new process on a new store with a new model cache, so the
embedder is exported to ONNX there and then: the moment when transformers draws its "Loading
weights" bar.
Every line of stdout and stderr must be one the command means to print.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NO_OLLAMA

QUESTION = "Where did Lavrov and Kishida hold talks?"
# Ours: the ingest bar (rag/cli.py `_Bar`), redrawn on one line with carriage returns.
BAR = re.compile(r"Embedding: +\d+%\|[^|]*\| \d+/\d+ \[[^\]]*\]")
NOTICE = re.compile(r"Using the built-in model: .+")
# What chatter looks like, for stdout, where an answer's own lines can be any text.
CHATTER = re.compile(
    r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b|\d+%\||\d+/\d+ \[|it/s\]|^\[[a-z_]+\] |Building index|Loading"
)
RETRIEVED = re.compile(r"\[\d+\] \d\.\d{4} .+ — \S+ \(\d+-\d+\)")
SOURCE = re.compile(r"  \[\d+\] .+ — \S+")


def fresh_env(tmp_path: Path, corpus: Path) -> dict[str, str]:
    """The environment of a first run: a new store and model cache, the built-in model, no Ollama."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAG_", "OLLAMA_"))}
    env.update(
        RAG_HOME=str(tmp_path / ".rag"),
        RAG_MODEL_CACHE=str(tmp_path / "models"),
        RAG_CORPUS=str(corpus),
        RAG_BACKEND="embedded",
        OLLAMA_HOST=NO_OLLAMA,
    )
    return env


def rag(tmp_path: Path, corpus: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m rag ARGS` the way a new user would, in a folder of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "rag", *args],
        cwd=tmp_path,
        env=fresh_env(tmp_path, corpus),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result


def screen_lines(text: str) -> list[str]:
    """The lines a terminal would show at some point (a bar's redraws split on carriage returns)."""
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def assert_stderr_holds_only_bars_and_the_notice(stderr: str) -> None:
    strays = [line for line in screen_lines(stderr) if not (BAR.fullmatch(line) or NOTICE.fullmatch(line))]
    assert not strays, f"unexpected lines on stderr: {strays}"
    assert len([line for line in screen_lines(stderr) if NOTICE.fullmatch(line)]) <= 1


def test_ingest_on_a_fresh_store_shows_only_its_bar_and_summary(tmp_path: Path, corpus: Path) -> None:
    result = rag(tmp_path, corpus, "ingest")
    assert_stderr_holds_only_bars_and_the_notice(result.stderr)
    assert any(BAR.fullmatch(line) for line in screen_lines(result.stderr))  # the pattern matches our bar
    assert re.fullmatch(r"5 added, 0 updated, .* 25 in store; [\d.]+ s\n", result.stdout)


def test_retrieve_on_a_fresh_store_prints_only_the_passages(tmp_path: Path, corpus: Path) -> None:
    result = rag(tmp_path, corpus, "retrieve", "-k", "3", QUESTION)
    assert (tmp_path / "models").is_dir()  # this run exported the embedder
    assert_stderr_holds_only_bars_and_the_notice(result.stderr)
    # Take each passage's text (which may span lines) out; what is left is headers and layout.
    passages = json.loads(rag(tmp_path, corpus, "retrieve", "--json", "-k", "3", QUESTION).stdout)["passages"]
    assert len(passages) == 3
    rest = result.stdout
    for p in passages:
        assert f"\n    {p['text'][:200]}…\n" in rest
        rest = rest.replace(f"\n    {p['text'][:200]}…\n", "\n", 1)
    assert [line for line in rest.splitlines() if line] == [
        line for line in rest.splitlines() if RETRIEVED.fullmatch(line)
    ]
    assert len(rest.splitlines()) == 3


@pytest.mark.slow
def test_ask_on_a_fresh_store_prints_only_the_answer_and_its_sources(tmp_path: Path, corpus: Path) -> None:
    result = rag(tmp_path, corpus, "ask", QUESTION)
    assert (tmp_path / "models").is_dir()
    assert_stderr_holds_only_bars_and_the_notice(result.stderr)
    answer, _, sources = result.stdout.partition("\n\nSources:\n")
    assert answer.strip()
    assert not [line for line in answer.splitlines() if CHATTER.search(line)], answer
    assert sources.splitlines() == [line for line in sources.splitlines() if SOURCE.fullmatch(line)]
    cited = {re.match(r"  \[(\d+)\]", line)[1] for line in sources.splitlines()}
    assert cited <= set(re.findall(r"\[(\d+)\]", answer))  # every source listed is one the answer cites


def test_verbose_shows_the_library_chatter_as_log_lines(tmp_path: Path, corpus: Path) -> None:
    result = rag(tmp_path, corpus, "-v", "retrieve", QUESTION)
    # Our own first-run ingest bar may share a line with a log record; nothing else may draw.
    lines = [rest for line in screen_lines(result.stderr) if (rest := BAR.sub("", line).strip())]
    assert lines == [line for line in lines if re.match(r"(INFO|WARNING) \S", line)], lines  # no other bars
    assert any(re.fullmatch(r"INFO transformers: Loading weights \(\d+\)", line) for line in lines), lines
    assert any(re.match(r"INFO ingest: 5 added, ", line) for line in lines), lines  # the first run's ingest


def test_the_python_api_prints_nothing(tmp_path: Path, corpus: Path) -> None:
    script = f"from rag import RAG\npassages = RAG().retrieve({QUESTION!r}, k=3)\nassert len(passages) == 3, passages\n"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=fresh_env(tmp_path, corpus), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models").is_dir()
    assert (result.stdout, result.stderr) == ("", "")
