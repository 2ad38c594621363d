"""Experiment: does reading a long sentence clause by clause find the answering sentence, or tell
an unanswerable question, better than reading it whole? Judged across the two tuning corpora:
fitted on one, scored on the other (`eval.fit.cross`).

    python -m eval.clause_experiment            # the pairs of eval.rerank_experiment (collected if absent)
    python -m eval.clause_experiment --refresh  # collect the pairs again first

Only the tuning sets are read. Nothing in the app changes.
"meaning as collected" is the app's own signal (the embedder run through ONNX, here through
sentence-transformers: the two differ in the last digits).

An encyclopaedia's sentences run long and pack several facts: the cosine of a question with the
whole sentence is diluted by the clauses it does not ask about, and the share of its words the
sentence holds does not say whether they sit together. Each sentence is cut into clauses at
commas, semicolons, colons, brackets and dashes (a clause under four words joins the next), and:
- `clause_meaning`: the highest cosine of the question with the sentence, a clause or two
  neighbouring clauses (`rag.text.clause_windows`; `meaning` is read so since it was adopted);
- `clause_words`: the highest rarity-weighted share of the question's words within such a window;
- each also as its gap to the best of the question's sentences (as `meaning_gap`, `words_gap`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import numpy as np

from eval.fit import FEATURES, Question, cross, cross_cells
from eval.rerank_experiment import PAIRS, load_items
from eval.runner import DEFAULT_OUT
from rag.text import clause_windows, content_terms, idf, rarity, word_overlap

SIGNALS = ("clause_meaning", "clause_words", "clause_meaning_gap", "clause_words_gap")


def embeddings(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Unit vectors of the texts, by the app's embedder."""
    from sentence_transformers import SentenceTransformer

    from rag.embeddings import resolve_model_path
    from rag.settings import Settings

    model = SentenceTransformer(resolve_model_path(Settings().embed_model), device="cpu")
    vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=True)
    return dict(zip(texts, np.asarray(vectors, dtype=float), strict=True))


def with_clauses(items: list[dict]) -> list[Question]:
    """The items as `eval.fit.Question`s whose signals carry the whole sentence's cosine
    (`whole`, with `whole_gap`) beside the clause signals; `meaning` is as collected."""
    cut = {s: clause_windows(s) for item in items for s in item["sentences"]}
    texts = sorted({t for item in items for t in [item["question"], *(c for s in item["sentences"] for c in cut[s])]})
    vectors = embeddings(texts)
    questions = []
    for item in items:
        q = vectors[item["question"]]
        terms = [content_terms(s) for s in item["sentences"]]
        weight, unseen = rarity(terms), idf(0, len(terms))
        wanted = content_terms(item["question"])
        rows = [
            {
                **row,
                "whole": max(float(vectors[sentence] @ q), 0.0),
                "clause_meaning": max(max(float(vectors[c] @ q), 0.0) for c in cut[sentence]),
                "clause_words": max(word_overlap(wanted, content_terms(c), weight, unseen) for c in cut[sentence]),
            }
            for row, sentence in zip(item["signals"], item["sentences"], strict=True)
        ]
        for name in ("whole", "clause_meaning", "clause_words"):
            best = max((r[name] for r in rows), default=0.0)
            for r in rows:
                r[f"{name}_gap"] = r[name] - best
        questions.append(Question(item["corpus"], item["id"], item["answerable"], rows, item["labels"]))
    return questions


def swapped(features: Sequence[str], meaning: str) -> list[str]:
    """The scorer's signals with `meaning` and its gap read from another cosine."""
    return [{"meaning": meaning, "meaning_gap": f"{meaning}_gap"}.get(f, f) for f in features]


@click.command()
@click.option("--refresh", is_flag=True, help="Collect the pairs again even when cached.")
def main(refresh: bool) -> None:
    """Print the cross-corpus figures of the scorer with meaning read from the whole sentence or
    from its clauses, and with the clause signals added."""
    questions = with_clauses(load_items(PAIRS, DEFAULT_OUT, refresh))
    plain = list(FEATURES)
    whole = swapped(plain, "whole")
    click.echo("fitted on one corpus, judged on the other: best sentence holds / AUC / precision / held / abstain")
    variants = {
        "meaning of the whole sentence": whole,
        "+ clause_meaning beside it": [*whole, "clause_meaning"],
        "+ clause_words": [*whole, "clause_words"],
        "+ both": [*whole, "clause_meaning", "clause_words"],
        "+ both and their gaps": [*whole, *SIGNALS],
        "meaning of the best clause": swapped(plain, "clause_meaning"),
        "meaning as collected": plain,
    }
    for name, features in variants.items():
        click.echo(f"{name:<30} {cross_cells(cross(questions, features, checked=False))}")


if __name__ == "__main__":
    sys.exit(main())
