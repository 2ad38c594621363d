"""Write `rag/people.txt`: WordNet 3.0's nouns for a person, one word a line.

    sudo apt-get install wordnet-base      # Debian's WordNet 3.0 database, under /usr/share/wordnet
    python -m eval.people                  # rewrites rag/people.txt; the same database gives the same file

The answer stage reads the list to tell whether a number counts people: "How many people were
evacuated?" is answered by "about 400 residents" but not by "about 1,200 homes"
(`rag.evidence.counts_something_else`). People go by too many names for a hand-written list, and
the embedder puts "cars" nearer "people" than "patients" is. The list is every single-word noun of
the synsets under WordNet's `person` (its hyponyms, followed down; named instances left out):
WordNet chooses the words, nothing here does.
"""

from __future__ import annotations

from pathlib import Path

from eval.antonyms import HEADER as ANTONYM_HEADER
from eval.antonyms import list_command, synsets
from rag.text import PEOPLE_NOUNS

PERSON = ("00007846", "noun")  # person.n.01: "a human being"


def person_nouns(folder: Path) -> list[str]:
    """The single words of every noun synset that is a kind of person, sorted."""
    table = synsets(folder)
    found, todo, seen = set(), [PERSON], {PERSON}
    while todo:
        words, pointers = table[todo.pop()]
        found.update(word for word in words if word.isalpha())
        for symbol, offset, kind, _ in pointers:
            below = (offset, "noun")
            if symbol == "~" and kind == "n" and below not in seen:
                seen.add(below)
                todo.append(below)
    return sorted(found)


HEADER = ANTONYM_HEADER.replace("Direct antonyms of WordNet 3.0, one pair a line", "Nouns for a person in WordNet 3.0")
HEADER = HEADER.replace("eval.antonyms", "eval.people").replace("Annotator.contrary", "Annotator.counts_people")
main = list_command(person_nouns, HEADER, PEOPLE_NOUNS, "nouns for a person")


if __name__ == "__main__":
    main()
