"""Experiment: does aligning the question's words with the sentence's, word by word in the
embedder's own token vectors (as BERTScore does), find the answering sentence, or tell an
unanswerable question, better than the fitted linear scorer's signals? Judged across the two
tuning corpora: fitted on one, scored on the other (`eval.fit.cross`).

    python -m eval.align_experiment            # the pairs of eval.rerank_experiment (collected if absent)
    python -m eval.align_experiment --refresh  # collect the pairs again first

Only the tuning sets are read. Nothing in the app changes.

For each question token that is not a function word, the highest cosine to any token of the
sentence (all-MiniLM-L6-v2's contextual token vectors, before pooling). Three signals:
- `align`: their mean (BERTScore's recall of the question);
- `align_min`: the lowest, the question word the sentence least speaks to, which is where a
  question written against a paragraph but asking what it does not say should show;
- `align_min2`: the mean of the two lowest, less at the mercy of one stray piece.
Each is tried added to the scorer's signals; and as a ranker only, with the abstention decided
by the plain scorer's probability of the sentence it chose.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import numpy as np

from eval.fit import FEATURES, Question, cross, cross_cells, fit, summary
from eval.rerank_experiment import PAIRS, load_items
from eval.runner import DEFAULT_OUT
from rag.evidence import holds_asked_kind
from rag.text import STOPWORDS

SIGNALS = ("align", "align_min", "align_min2")


def token_vectors(texts: Sequence[str]) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Each text's unit token vectors and the positions of its content pieces."""
    from sentence_transformers import SentenceTransformer

    from rag.embeddings import resolve_model_path
    from rag.settings import Settings

    model = SentenceTransformer(resolve_model_path(Settings().embed_model), device="cpu")
    vectors = model.encode(list(texts), output_value="token_embeddings", batch_size=32, show_progress_bar=True)
    found = {}
    for text, matrix in zip(texts, vectors, strict=True):
        pieces = model.tokenizer.convert_ids_to_tokens(
            model.tokenizer(text, truncation=True, max_length=256)["input_ids"]
        )
        matrix = np.asarray(matrix.cpu() if hasattr(matrix, "cpu") else matrix, dtype=float)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        keep = [
            i
            for i, piece in enumerate(pieces)
            if piece not in ("[CLS]", "[SEP]") and piece.strip("#") not in STOPWORDS and any(c.isalnum() for c in piece)
        ]
        found[text] = (matrix, keep)
    return found


def alignment(question: tuple[np.ndarray, list[int]], sentence: tuple[np.ndarray, list[int]]) -> dict[str, float]:
    """The three signals of one (question, sentence) pair."""
    (q, q_keep), (s, s_keep) = question, sentence
    if not q_keep or not s_keep:
        return dict.fromkeys(SIGNALS, 0.0)
    best = np.sort((q[q_keep] @ s[s_keep].T).max(axis=1))
    return {"align": float(best.mean()), "align_min": float(best[0]), "align_min2": float(best[:2].mean())}


def with_alignment(items: list[dict]) -> list[Question]:
    """The items as `eval.fit.Question`s whose signals carry the alignment signals."""
    texts = sorted({t for item in items for t in [item["question"], *item["sentences"]]})
    vectors = token_vectors(texts)
    return [
        Question(
            item["corpus"],
            item["id"],
            item["answerable"],
            [
                {**row, **alignment(vectors[item["question"]], vectors[s])}
                for row, s in zip(item["signals"], item["sentences"], strict=True)
            ],
            item["labels"],
        )
        for item in items
    ]


def ranked_then_gated(questions: list[Question], rank_features: list[str]) -> dict[str, dict]:
    """Like `eval.fit.cross`, but the sentence is chosen by a scorer with `rank_features` and the
    abstention decided by the plain scorer's probability of that sentence and its threshold."""
    result = {}
    for held_out in sorted({q.corpus for q in questions}):
        train = [q for q in questions if q.corpus != held_out]
        test = [q for q in questions if q.corpus == held_out]
        ranker, gate = fit(train, rank_features, checked=False), fit(train, list(FEATURES), checked=False)
        found = []
        for q in test:
            if not q.signals:
                found.append((q.corpus, 0.0, 0))
                continue
            rows = np.array([[row[f] for f in rank_features] for row in q.signals])
            at = int(np.argmax(rows @ np.array(ranker["weights"]) + ranker["bias"]))
            z = np.array([q.signals[at][f] for f in FEATURES]) @ np.array(gate["weights"]) + gate["bias"]
            p = float(1 / (1 + np.exp(-z))) if holds_asked_kind(q.signals[at]) else 0.0
            found.append((q.corpus, p, q.labels[at]))
        result[held_out] = summary(found, gate["threshold"], test)[held_out]
    return result


@click.command()
@click.option("--refresh", is_flag=True, help="Collect the pairs again even when cached.")
def main(refresh: bool) -> None:
    """Print the cross-corpus figures of the scorer with and without the alignment signals."""
    questions = with_alignment(load_items(PAIRS, DEFAULT_OUT, refresh))
    plain = list(FEATURES)
    click.echo("fitted on one corpus, judged on the other: best sentence holds / AUC / precision / held / abstain")
    click.echo(f"{'scorer alone':<30} {cross_cells(cross(questions, plain, checked=False))}")
    for signal in SIGNALS:
        click.echo(f"{'+ ' + signal:<30} {cross_cells(cross(questions, [*plain, signal], checked=False))}")
    for signal in SIGNALS:
        click.echo(
            f"{'ranked with ' + signal + ', gated plain':<30} {cross_cells(ranked_then_gated(questions, [*plain, signal]))}"
        )


if __name__ == "__main__":
    sys.exit(main())
