"""The Ollama backend, against a local server on 127.0.0.1 that speaks Ollama's HTTP API.

Ollama itself cannot be installed here; `ollama_server.OllamaServer` stands in for the server
process only. The clients (the `ollama` package and LlamaIndex's `Ollama` LLM) are the real ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import SEEDS, make_rag
from ollama_server import OllamaServer

from rag import RAG, BackendUnavailable
from rag.answer import answer_json

TALKS = "Where did Lavrov and Kishida hold talks?"


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the seeds, shared by the tests of this module."""
    home = tmp_path_factory.mktemp("ollama") / ".rag"
    make_rag(home, SEEDS).ingest([SEEDS])
    return home


def test_auto_uses_ollama_when_it_has_the_model_and_streams(store_home: Path, ollama: OllamaServer) -> None:
    ollama.reply = "The talks were held at the Iikura guest house in Tokyo [1]."
    rag = make_rag(store_home, SEEDS, ollama_host=ollama.url)
    events = list(rag.stream(TALKS))
    answer = events[-1]
    assert answer.backend == "ollama" and answer.model == "qwen2.5:7b-instruct"
    assert len(events) > 3  # the reply arrived in pieces
    assert answer.citations[0].passage.doc_id == "002_5c202a017dd63dc4.txt"
    sent = ollama.requests_to("/api/chat")[-1]
    prompt = sent["messages"][-1]["content"]
    assert '<passage number="1"' in prompt and TALKS in prompt
    assert sent["stream"] is True


def test_ollama_reads_whole_passages_with_the_evidence_named(store_home: Path, ollama: OllamaServer) -> None:
    ollama.reply = "The talks were held at the Iikura guest house in Tokyo [1]."
    answer = make_rag(store_home, SEEDS, ollama_host=ollama.url).ask(TALKS)
    prompt = ollama.requests_to("/api/chat")[-1]["messages"][-1]["content"]
    best = answer.evidence[0]
    assert "Iikura" in best.text and best.passage == 1
    # The whole passage is there, and the evidence sentence is named for the model with its number.
    assert answer.passages[0].text.split("\n")[-1][:60] in prompt
    assert f'[{best.passage}] "{best.text}"' in prompt
    assert answer.how == "model" and answer.citations[0].marker == 1
    # As with the built-in model: every ranked sentence, the cited passage's first; JSON marks those cited.
    used = answer.used_evidence
    assert used and {e.passage for e in used} == {1} and answer.evidence[: len(used)] == used
    assert len(answer.evidence) > len(used)
    assert [e["cited"] for e in answer_json(answer)["evidence"]] == [e.passage == 1 for e in answer.evidence]


def test_follow_up_is_rewritten_by_the_ollama_model(store_home: Path, ollama: OllamaServer) -> None:
    def reply(messages: list[dict]) -> str:
        if "Standalone question" in messages[-1]["content"]:
            return "When was the 1956 Joint Declaration signed?"
        return "It was signed in 1956 [1]."

    ollama.reply = reply
    rag = make_rag(store_home, SEEDS, ollama_host=ollama.url)
    history = [
        {"role": "user", "content": "What is the Joint Declaration?"},
        {"role": "assistant", "content": "A 1956 deal."},
    ]
    answer = rag.ask("and when was that signed?", history=history)
    assert answer.standalone_question == "When was the 1956 Joint Declaration signed?"
    assert not answer.abstained
    # Ollama's own token counts (the server counts words) for the rewrite and the answer, summed.
    sent = ollama.requests_to("/api/chat")[-2:]
    prompt_words = sum(len(m["content"].split()) for request in sent for m in request["messages"])
    assert answer.usage["prompt_tokens"] == prompt_words
    assert (
        answer.usage["completion_tokens"] >= 2
        and answer.usage["total_tokens"] == prompt_words + answer.usage["completion_tokens"]
    )


def test_auto_falls_back_to_the_embedded_model_when_ollama_is_down_and_says_so(store_home: Path) -> None:
    rag = make_rag(store_home, SEEDS)  # nothing listens on the configured port
    answer = rag.ask(TALKS)
    assert answer.backend == "embedded"
    assert "not answering" in answer.notice and "Ollama" in answer.notice


def test_auto_falls_back_when_ollama_lacks_the_model(store_home: Path) -> None:
    with OllamaServer(models=["llama3.2:1b"]) as server:
        rag = make_rag(store_home, SEEDS, ollama_host=server.url)
        answer = rag.ask(TALKS)
    assert answer.backend == "embedded"
    assert "ollama pull qwen2.5:7b-instruct" in answer.notice


def test_explicit_ollama_backend_that_is_down_is_a_clear_error(store_home: Path) -> None:
    rag = make_rag(store_home, SEEDS, backend="ollama")
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        rag.ask(TALKS)


def test_ollama_dying_mid_stream_is_a_clear_error_not_a_hang(store_home: Path) -> None:
    with OllamaServer(die_after_chunks=3) as server:
        rag: RAG = make_rag(store_home, SEEDS, ollama_host=server.url, request_timeout=20)
        started = time.monotonic()
        pieces = []
        with pytest.raises(BackendUnavailable, match="stopped answering"):
            for event in rag.stream(TALKS):
                pieces.append(event)
        assert time.monotonic() - started < 10
        assert len(pieces) == 3
        # The same RAG answers again once the server is healthy.
        server.die_after_chunks = None
        assert not rag.ask(TALKS).abstained
