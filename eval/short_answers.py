"""How often a short answer keeps what its sentence held: spaCy's entities against the patterns.

    python -m eval.short_answers

On the tuning sets only (the seeds' dev half and Rhine), for each answerable question whose best
evidence sentence holds a gold form, the short answer is cut from that sentence in two ways: the
one entity of the asked kind that spaCy's English pipeline finds there (`rag.extractive.short_answer`,
what the product does), and the one match of the same kind's pattern (`rag.evidence`'s `NAME` and
`KIND_PATTERNS`, the regular expressions the evidence signal uses). Each is counted as holding the
gold, not holding it, or not given (the question asks for no such kind, or the sentence holds
none or several), so a given short answer's cost to "answer held" can be read off.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from eval.fit import tuning_sets
from eval.metrics import alias_match
from eval.runner import DEFAULT_OUT, open_rag
from rag.evidence import KIND_PATTERNS, NAME, question_kind
from rag.extractive import short_answer
from rag.followup import joined_question
from rag.text import is_new


def pattern_answer(sentence: str, question: str, kind: str) -> str:
    """The one match of the kind's pattern in the sentence that the question does not give, or ""."""
    pattern = NAME if kind in ("name", "place") else KIND_PATTERNS.get(kind)
    found = {m.group().strip(" ,;:") for m in pattern.finditer(sentence)} if pattern else set()
    new = [text for text in found if is_new(text, question)]
    return new[0] if len(new) == 1 else ""


def outcome(short: str, golds: list[str]) -> str:
    """ "holds", "misses" or "none" for one short answer."""
    return "none" if not short else "holds" if alias_match(short, golds) else "misses"


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help="Folder of the tuning stores.")
def main(out: Path) -> None:
    """Count short answers that hold the gold, cut by spaCy's entities and by the patterns."""
    for name, (rows, corpus) in tuning_sets(out).items():
        rag = open_rag(out, corpus, backend="embedded")
        rag.ingest([rag.settings.corpus])
        counts: dict[str, Counter] = {"spaCy entities": Counter(), "patterns": Counter()}
        for row in rows:
            standalone = joined_question(row.question, row.history)
            golds = [row.answer, *row.aliases]
            evidence = rag.find_evidence(standalone.asking, rag.lookup(standalone).passages)
            if not row.answerable or not evidence or not alias_match(evidence[0].text, golds):
                continue
            kind = question_kind(standalone.asking)
            counts["spaCy entities"][
                outcome(short_answer(evidence[0], standalone.text, kind, rag.annotator), golds)
            ] += 1
            counts["patterns"][outcome(pattern_answer(evidence[0].text, standalone.text, kind), golds)] += 1
        for way, counted in counts.items():
            total = sum(counted.values())
            click.echo(
                f"{name:<10} {way:<15} of {total} sentences holding the gold: short answer holds it "
                f"{counted['holds']}, misses it {counted['misses']}, none given {counted['none']}"
            )


if __name__ == "__main__":
    main()
