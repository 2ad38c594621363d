"""Generation through an OpenAI-compatible server: our `openai` backend against the `openai` client called directly.

The phase starts llama.cpp's own server (`python -m llama_cpp.server`, from the `test` extra) on
a free loopback port with the packaged SmolLM2-135M, and stops it at the end. For each question
the passages are retrieved once and turned into the `Writing` strategy's prompt
(`RAG.strategy.messages`); then our backend (`OpenAIBackend.stream`) and a plain
`openai.OpenAI(...).chat.completions.create(..., stream=True)` with the same message dicts, model,
`max_tokens` and temperature 0 each generate from it, in alternating order, so both get the
same tokens (`same_output`).

Both sides talk to the one server process, whose llama.cpp keeps the last prompt's tokens and
reuses the longest shared prefix. The Writing prompt holds five whole passages: evaluating it
after another question's took 6 s on a quiet machine (up to 36 s on a busy one), and a second
run on the same prompt 0.03 s to its first token, so whichever side ran second would win by 20×.
Each question's prompt is therefore sent once untimed first (`max_tokens=1`, its seconds kept as
`prefill_s`), and every timed run finds the whole prompt already evaluated: what is compared is
the request, the decoding and the streaming, which is all our code can add; the prompt's
evaluation is the server's, alike for both.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.corpus import SEEDS, questions
from bench.generation import decode_rate, race
from bench.measure import NO_OLLAMA
from bench.processes import stop, wait_until_up
from bench.startup import free_port

MODEL_ALIAS = "smollm2"
SERVER_NAME = "llama_cpp.server (from the `test` extra: llama-cpp-python[server])"


@contextlib.contextmanager
def llama_server(model_path: Path, n_ctx: int = 4096, timeout: float = 120) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free loopback port, for the `with` block: its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL_ALIAS]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]
    url = f"http://127.0.0.1:{port}/v1"
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            # The name says where the server comes from: its usual failure is that it is not installed.
            wait_until_up(f"{url}/models", proc, Path(log.name), timeout, name=SERVER_NAME)
            yield url
        finally:
            stop(proc, timeout=20)


def raw_pieces(client: Any, messages: list[dict], max_tokens: int) -> Iterator[str]:
    """The reply's text deltas from the `openai` client called directly, greedily."""
    reply = client.chat.completions.create(
        model=MODEL_ALIAS, messages=messages, temperature=0, max_tokens=max_tokens, stream=True
    )
    for chunk in reply:
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                yield choice.delta.content


def prefill(client: Any, messages: list[dict]) -> float:
    """Seconds for the server to evaluate the prompt (one token asked for), which leaves it cached."""
    started = time.perf_counter()
    client.chat.completions.create(model=MODEL_ALIAS, messages=messages, temperature=0, max_tokens=1)
    return time.perf_counter() - started


def compare(backend: Any, client: Any, messages: list, ours_first: bool) -> dict:
    """Ours and the raw client on the same (already evaluated) prompt, in the given order."""
    from rag.generate import openai_messages

    dicts = openai_messages(messages)
    return race(
        lambda: backend.stream(messages, temperature=0.0),
        lambda: raw_pieces(client, dicts, backend.max_tokens),
        ours_first,
    )


def question_pairs(rag: Any, client: Any, question: str, repeats: int, first_pair: int) -> tuple[float, list[dict]]:
    """One question's prompt evaluated once, then `repeats` pairs alternating in order from `first_pair`."""
    from rag.generate import openai_messages

    passages = rag.retrieve(question, k=5)
    messages = rag.strategy.messages(question, passages, rag.find_evidence(question, passages))
    seconds = prefill(client, openai_messages(messages))
    pairs = [compare(rag.backend, client, messages, ours_first=(first_pair + i) % 2 == 0) for i in range(repeats)]
    return seconds, pairs


def run(work: Path, question_count: int, repeats: int, max_new_tokens: int) -> dict:
    """The phase: the server started, our backend and the raw client over the seed articles, the server stopped."""
    import openai
    from llama_cpp import Llama

    from rag import RAG
    from rag.generate import embedded_model_path
    from rag.settings import Settings

    model_path = embedded_model_path(Settings())
    answerable = [row["question"] for row in questions() if row["answerable"] and row["type"] == "single"]
    with llama_server(model_path) as url:
        rag = RAG(
            home=work / "openai-home",
            corpus=SEEDS,
            backend="openai",
            openai_base_url=url,
            openai_model=MODEL_ALIAS,
            ollama_host=NO_OLLAMA,
            max_new_tokens=max_new_tokens,
        )
        rag.ingest([SEEDS])
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        # warm-up on a question not measured: both clients' first connections, the shared system prompt
        question_pairs(rag, client, answerable[-1], 1, 0)
        asked = answerable[:question_count]
        measured = [question_pairs(rag, client, q, repeats, i * repeats) for i, q in enumerate(asked)]
    vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)  # to count the replies' tokens
    return summarise(measured, vocab, max_new_tokens)


def summarise(measured: list[tuple[float, list[dict]]], vocab: Any, max_new_tokens: int) -> dict:
    """Medians over every pair of every question."""
    pairs = [pair for _, question in measured for pair in question]
    for pair, side in ((p, s) for p in pairs for s in ("ours", "raw")):
        tokens = len(vocab.tokenize(pair[side]["text"].encode(), add_bos=False, special=True))
        pair[side]["tokens"], pair[side]["tokens_per_s"] = tokens, decode_rate(pair[side], tokens)

    def median(side: str, key: str) -> float:
        return statistics.median(p[side][key] for p in pairs)

    return {
        "openai_generation_overhead_ratio": statistics.median(p["ratio"] for p in pairs),
        "ratio_rounds": [p["ratio"] for p in pairs],
        "ours_total_s": median("ours", "total_s"),
        "raw_total_s": median("raw", "total_s"),
        "ours_ttft_s": median("ours", "ttft_s"),
        "raw_ttft_s": median("raw", "ttft_s"),
        "tokens_per_s": median("ours", "tokens_per_s"),
        "raw_tokens_per_s": median("raw", "tokens_per_s"),
        "tokens": [p["ours"]["tokens"] for p in pairs],
        "prefill_s": [seconds for seconds, _ in measured],
        "same_output": all(p["same_output"] for p in pairs),
        "max_new_tokens": max_new_tokens,
    }
