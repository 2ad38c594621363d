"""SQuAD 2.0 files as question sets: each article one text file of a corpus folder, each question a `Row`.

SQuAD answers are spans of one paragraph; the assistant reads whole articles, so an article
becomes one file (its title on the first line, which the cleaner takes as the title, then its
paragraphs with a blank line between) and a question's gold document is that file. The support
sentence is the paragraph's sentence that holds the first answer, split as the evidence stage
splits (`rag.text.sentence_spans`): it only feeds the evidence metrics. Unanswerable questions
(`is_impossible`) get type "unanswerable" and category "squad"; their `plausible_answers` are
traps, not golds.
SQuAD 1.1 files (no `is_impossible`) read as all answerable. Not handled: the other SQuAD-like
formats (Natural Questions, TriviaQA), whose answers are not offsets into one paragraph.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from eval.dataset import Row
from rag.errors import BadInput
from rag.text import sentence_spans

SQUAD_DIR = Path(__file__).resolve().parent / "squad"
# What each bundled file is for: tune on "tuning", report "reporting" and choose nothing by it.
ROLES = {"Rhine": "tuning", "Computational_complexity_theory": "reporting"}
PARAGRAPH_GAP = "\n\n"
UNSAFE = re.compile(r"[^\w.,()' -]+")


def role(path: Path) -> str:
    """What a SQuAD file is for, "tuning" or "reporting"; a file not in `ROLES` is for reporting only."""
    return ROLES.get(path.stem, "reporting")


def read_articles(path: Path) -> list[dict[str, Any]]:
    """The `data` articles of a SQuAD file, checked; BadInput says what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        for article in data:
            _check_article(article)
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path} is not a SQuAD 2.0 file ({type(exc).__name__}: {exc})") from exc
    names = [file_name(a["title"]) for a in data]
    if not data or len(set(names)) != len(names):
        raise BadInput(f"{path} has no articles, or two with the same title")
    return data


def _check_article(article: dict) -> None:
    if not str(article["title"]).strip():
        raise ValueError("an article has an empty title")
    for paragraph in article["paragraphs"]:
        for qa in paragraph["qas"]:
            if not impossible(qa) and not qa["answers"]:
                raise ValueError(f"question {qa['id']} is answerable but has no answers")
            for answer in qa["answers"]:
                start, end = span(answer)
                if paragraph["context"][start:end] != answer["text"]:
                    raise ValueError(f"an answer of question {qa['id']} is not at its answer_start")


def impossible(qa: dict) -> bool:
    """Whether a question is one of SQuAD 2.0's unanswerable ones."""
    return bool(qa.get("is_impossible", False))


def file_name(title: str) -> str:
    """The article's file in the corpus folder: its title, without characters a path cannot hold."""
    return UNSAFE.sub("_", str(title)).strip(" .") + ".txt"


def heading(article: dict) -> str:
    """The title line of an article's file ("Computational complexity theory")."""
    return str(article["title"]).replace("_", " ")


def paragraph_starts(article: dict) -> list[int]:
    """Where each paragraph begins in the article's file."""
    starts, cursor = [], len(heading(article)) + len(PARAGRAPH_GAP)
    for paragraph in article["paragraphs"]:
        starts.append(cursor)
        cursor += len(paragraph["context"]) + len(PARAGRAPH_GAP)
    return starts


def article_text(article: dict) -> str:
    """The article's file: title line, then the paragraphs with a blank line between."""
    return PARAGRAPH_GAP.join([heading(article), *(p["context"] for p in article["paragraphs"])]) + "\n"


def write_squad_corpus(path: Path, folder: Path) -> Path:
    """Write each article of the file to `folder/<stem>/<title>.txt` (only files whose text changed,
    so a second ingest embeds nothing) and remove articles no longer in the file; returns that folder."""
    corpus = folder / path.stem
    corpus.mkdir(parents=True, exist_ok=True)
    wanted = {file_name(a["title"]): article_text(a) for a in read_articles(path)}
    for name, text in wanted.items():
        target = corpus / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    for stale in corpus.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return corpus


def support_sentence(context: str, start: int, end: int) -> str:
    """The sentence of a paragraph that holds the answer at `start:end` (the sentences, when the
    splitter cuts the answer, as after "St." in "St. Elizabeth's")."""
    spans = [(b, e) for b, e in sentence_spans(context) if b < end and e > start] or [(0, len(context))]
    return context[spans[0][0] : spans[-1][1]]


def to_row(qa: dict, context: str, doc_id: str) -> Row:
    """One SQuAD question as a row: the first answer is the gold, the other workers' texts its aliases."""
    texts = list(dict.fromkeys(a["text"] for a in qa["answers"]))
    answerable = not impossible(qa)
    return Row(
        id=str(qa["id"]),
        question=str(qa["question"]).strip(),
        answer=texts[0] if answerable else "",
        aliases=tuple(texts[1:]) if answerable else (),
        doc_ids=(doc_id,),
        type="single" if answerable else "unanswerable",
        answerable=answerable,
        support=support_sentence(context, *span(qa["answers"][0])) if answerable else "",
        category="" if answerable else "squad",
    )


def load_squad(path: Path) -> list[Row]:
    """Every question of a SQuAD 2.0 file as a `Row`, in file order; `doc_ids` name the article's
    file, for unanswerable questions too (the article they were written against)."""
    rows = [
        to_row(qa, paragraph["context"], file_name(article["title"]))
        for article in read_articles(path)
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    if len({r.id for r in rows}) != len(rows):
        raise BadInput(f"{path}: question ids are not unique")
    return rows


def span(answer: dict) -> tuple[int, int]:
    """(start, end) of a SQuAD answer in its paragraph."""
    return answer["answer_start"], answer["answer_start"] + len(answer["text"])


def answer_offsets(path: Path) -> dict[str, list[tuple[int, int]]]:
    """For each answerable question id, the (start, end) of every gold answer in its article's file."""
    offsets = {}
    for article in read_articles(path):
        for begins, paragraph in zip(paragraph_starts(article), article["paragraphs"], strict=True):
            for qa in paragraph["qas"]:
                spans = [(begins + start, begins + end) for start, end in map(span, qa["answers"])]
                if spans:
                    offsets[str(qa["id"])] = list(dict.fromkeys(spans))
    return offsets
