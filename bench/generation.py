"""Generation speed: the embedded SmolLM2 answering with k=5 passages, against raw `llama_cpp.Llama`.

For each question the passages are retrieved once and turned into our prompt (`RAG.strategy.messages`);
then our backend (`rag.generate.Backend.stream`, LlamaIndex's `LlamaCPP` underneath) and a
separate raw `Llama` built with the same file, constructor and sampling arguments each generate
from exactly that prompt, in alternating order, greedily (temperature 0) so that both produce
the same tokens. Both instances keep llama.cpp's prompt-prefix cache, so both reuse the shared system prompt alike.
Time to first token is also measured end to end, through `RAG.stream`, on other questions.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.corpus import SEEDS, questions
from bench.measure import NO_OLLAMA


def timed_stream(pieces: Iterator[str]) -> dict:
    """Seconds to the first piece and to the last, and the text, of a stream of pieces."""
    started = time.perf_counter()
    first, text = None, []
    for piece in pieces:
        if first is None:
            first = time.perf_counter() - started
        text.append(piece)
    total = time.perf_counter() - started
    return {"ttft_s": first if first is not None else total, "total_s": total, "text": "".join(text)}


def raw_pieces(llama: Any, prompt: str, generate_kwargs: dict) -> Iterator[str]:
    """Stream raw llama.cpp with the very sampling settings our backend passes it."""
    for chunk in llama.create_completion(prompt, **{**generate_kwargs, "temperature": 0.0, "stream": True}):
        text = chunk["choices"][0]["text"]
        if text:
            yield text


def decode_rate(run: dict, tokens: int) -> float:
    """Tokens per second after the first token."""
    return (tokens - 1) / max(run["total_s"] - run["ttft_s"], 1e-9) if tokens > 1 else 0.0


def race(ours: Callable[[], Iterator[str]], raw: Callable[[], Iterator[str]], ours_first: bool) -> dict:
    """Our stream and the raw library's on one input, timed in the given order (callers alternate it,
    so that neither side always runs on the cache the other left): each side's `timed_stream`,
    whether both said the same, and ours' total time over raw's. Shared with bench/openai_generation.py."""
    streams = {"ours": ours, "raw": raw}
    order = ["ours", "raw"] if ours_first else ["raw", "ours"]
    result: dict[str, Any] = {name: timed_stream(streams[name]()) for name in order}
    result["same_output"] = result["ours"]["text"] == result["raw"]["text"]
    result["ratio"] = result["ours"]["total_s"] / result["raw"]["total_s"]
    return result


def compare(rag: Any, raw: Any, question: str, ours_first: bool) -> dict:
    """Ours and raw on the same prompt, in the given order."""
    backend = rag.backend
    passages = rag.retrieve(question, k=5)
    messages = rag.strategy.messages(question, passages, rag.find_evidence(question, passages))
    prompt = backend.llm.messages_to_prompt(messages)
    result = race(
        lambda: backend.stream(messages, temperature=0.0),
        lambda: raw_pieces(raw, prompt, backend.llm.generate_kwargs),
        ours_first,
    )
    for side in ("ours", "raw"):
        result[side]["tokens"] = len(raw.tokenize(result[side]["text"].encode(), add_bos=False, special=True))
        result[side]["tokens_per_s"] = decode_rate(result[side], result[side]["tokens"])
    return result


def end_to_end_ttft(rag: Any, question: str) -> float | None:
    """Seconds from `RAG.stream(question)` to the first piece of the model's reply (retrieval included).

    None when the question was refused or found uncovered, so that no model ran.
    """
    from rag import Answer

    started, first = time.perf_counter(), None
    for event in rag.stream(question, k=5, temperature=0.0):
        if isinstance(event, Answer):
            return first if event.backend != "none" else None
        if first is None:
            first = time.perf_counter() - started
    return None


def run(work: Path, rounds: int, max_new_tokens: int) -> dict:
    """The generation phase over the seed articles."""
    from llama_cpp import Llama

    from rag import RAG
    from rag.generate import embedded_model_path

    rag = RAG(
        home=work / "generation-home",
        corpus=SEEDS,
        backend="embedded",
        ollama_host=NO_OLLAMA,
        max_new_tokens=max_new_tokens,
    )
    rag.ingest([SEEDS])
    # The same file and the same constructor arguments (context, threads, seed) as our backend.
    raw = Llama(model_path=str(embedded_model_path(rag.settings)), **rag.backend.llm.model_kwargs)
    answerable = [row["question"] for row in questions() if row["answerable"] and row["type"] == "single"]
    compare(rag, raw, answerable[-1], ours_first=True)  # warm-up: loads, first allocations
    pairs = [compare(rag, raw, q, ours_first=i % 2 == 0) for i, q in enumerate(answerable[:rounds])]
    ttfts = [t for q in answerable[rounds : 3 * rounds] if (t := end_to_end_ttft(rag, q)) is not None][:rounds]
    return summarise(pairs, ttfts, max_new_tokens)


def summarise(pairs: list[dict], ttfts: list[float], max_new_tokens: int) -> dict:
    """Medians over the rounds."""

    def median(side: str, key: str) -> float:
        return statistics.median(p[side][key] for p in pairs)

    return {
        "ttft_s": statistics.median(ttfts),
        "ttft_end_to_end_rounds_s": ttfts,
        "tokens_per_s": median("ours", "tokens_per_s"),
        "raw_tokens_per_s": median("raw", "tokens_per_s"),
        "backend_ttft_s": median("ours", "ttft_s"),
        "raw_ttft_s": median("raw", "ttft_s"),
        "generation_overhead_ratio": statistics.median(p["ratio"] for p in pairs),
        "ratio_rounds": [p["ratio"] for p in pairs],
        "tokens": [p["ours"]["tokens"] for p in pairs],
        "same_output": all(p["same_output"] for p in pairs),
        "max_new_tokens": max_new_tokens,
    }
