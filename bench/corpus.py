"""Deterministic synthetic corpora built by recombining the seed articles' sentences.

Articles (for ingest) are files a person could have saved; chunks (for the retrieval scaling runs)
are written straight into the store. Both come from a seeded `random.Random`, so every run indexes
the same text. Each article also gets a few made-up proper nouns drawn from a Zipf-like list, so
that the vocabulary grows with the corpus as it does in real news and BM25 sees rare terms.
Not handled: realistic topics. Every synthetic article is about the seeds' subject.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
QA_FILE = PROJECT_ROOT / "eval" / "qa.jsonl"
SENTENCE_END = re.compile(r"(?<=[.!?\"”])\s+(?=[A-Z\"“])")
SYLLABLES = ("ka", "ro", "vi", "ne", "to", "sha", "mi", "lo", "de", "ru", "po", "za", "ki", "an", "el", "or")
PLACES = ("MOSCOW", "TOKYO", "VLADIVOSTOK", "SAPPORO", "YUZHNO-SAKHALINSK", "KHABAROVSK", "OSAKA")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "September", "October", "November")


def seed_sentences() -> list[str]:
    """Every sentence of the seed articles (title lines excluded), in file order."""
    sentences: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        for paragraph in paragraphs[1:]:
            sentences.extend(s.strip() for s in SENTENCE_END.split(paragraph) if len(s.split()) >= 4)
    return sentences


def seed_titles() -> list[str]:
    """The first line of each seed article."""
    return [p.read_text(encoding="utf-8").split("\n", 1)[0].strip() for p in sorted(SEEDS.glob("*.txt"))]


def made_up_names(count: int, rng: random.Random) -> list[str]:
    """Pronounceable capitalised words that occur in no seed ("Rovineka"), for rare terms."""
    names = set()
    while len(names) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize())
    return sorted(names)


@dataclass(frozen=True)
class SyntheticText:
    """One synthetic article or chunk: a title and the indices of the seed sentences it reuses."""

    title: str
    text: str
    sentence_ids: tuple[int, ...]


class Recombiner:
    """Draws seeded recombinations of the seed sentences, with rare names mixed in."""

    def __init__(self, seed: int, vocabulary: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.sentences = seed_sentences()
        self.titles = seed_titles()
        self.names = made_up_names(vocabulary, random.Random(seed + 1))

    def name(self) -> str:
        """A made-up name, the low ranks far more often than the high ones (Zipf-like)."""
        rank = int(len(self.names) ** self.rng.random()) - 1
        return self.names[rank]

    def draw(self, sentences: int) -> SyntheticText:
        """A title and `sentences` seed sentences, one of them mentioning a made-up name."""
        ids = tuple(self.rng.randrange(len(self.sentences)) for _ in range(sentences))
        picked = [self.sentences[i] for i in ids]
        picked.insert(self.rng.randrange(len(picked) + 1), f"{self.name()} and {self.name()} were also mentioned.")
        title = f"{self.rng.choice(self.titles)}: {self.name()} {self.rng.randint(1, 999)}"
        return SyntheticText(title, " ".join(picked), ids)


def write_articles(folder: Path, count: int, seed: int = 7, sentences: tuple[int, int] = (14, 24)) -> list[Path]:
    """Write `count` news-like .txt articles (headline, dateline, paragraphs) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    drawer = Recombiner(seed)
    paths = []
    for n in range(count):
        article = drawer.draw(drawer.rng.randint(*sentences))
        words = article.text.split(" ")
        paragraphs = [" ".join(words[i : i + 60]) for i in range(0, len(words), 60)]
        dateline = f"{drawer.rng.choice(PLACES)}, {drawer.rng.choice(MONTHS)} {drawer.rng.randint(1, 28)}. /TASS/."
        body = "\n\n".join([article.title, f"{dateline} {paragraphs[0]}", *paragraphs[1:]])
        path = folder / f"{n:05d}.txt"
        path.write_text(body + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def questions(limit: int | None = None) -> list[dict]:
    """Rows of the bundled eval set (`eval/qa.jsonl`), in file order."""
    rows = [json.loads(line) for line in QA_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows
