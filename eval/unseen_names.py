"""Count the tuning questions that name something none of their passages holds, by answerability.

    python -m eval.unseen_names

A question naming a place or person that no retrieved passage mentions ("the rental tax in Idaho",
of a story on Montana's) looks like one the articles cannot answer. This counts, on the tuning
sets as `eval.fit` retrieves them, the questions with such a capitalised name, with a content word
no passage has, and with neither, split into answerable and unanswerable (eval/README.md).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from eval.fit import as_asked, tuning_sets
from eval.runner import DEFAULT_OUT, open_rag
from rag.evidence import NAME
from rag.text import content_terms


def main(out: Path = DEFAULT_OUT) -> None:
    """Print, for each tuning corpus, the counts and the answerable questions with an unseen name."""
    for corpus_name, (rows, corpus) in tuning_sets(out).items():
        rag = open_rag(out, corpus, backend="embedded")
        rag.ingest([rag.settings.corpus])
        counts: Counter[tuple[str, bool]] = Counter()
        for row in rows:
            standalone, retrieval, sentences = as_asked(rag, row)
            if not sentences:
                continue  # refused by the relevance gate
            held = set().union(*(content_terms(f"{p.text} {p.title}") for p in retrieval.passages))
            question = standalone.asking
            unseen = [
                m.group() for m in NAME.finditer(question) if m.start() > 0 and not content_terms(m.group()) <= held
            ]
            what = "unseen name" if unseen else "unseen word" if content_terms(question) - held else "all seen"
            counts[what, row.answerable] += 1
            if unseen and row.answerable:
                print(f"  {corpus_name}, answerable: {question} {unseen}")
        for what in ("unseen name", "unseen word", "all seen"):
            print(f"{corpus_name}: {what}: {counts[what, True]} answerable, {counts[what, False]} unanswerable")


if __name__ == "__main__":
    main()
