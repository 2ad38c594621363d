"""Write `rag/antonyms.txt`: the direct antonyms of WordNet 3.0, one pair of single words a line.

    sudo apt-get install wordnet-base      # Debian's WordNet 3.0 database, under /usr/share/wordnet
    python -m eval.antonyms                # rewrites rag/antonyms.txt; the same database gives the same file

The answer stage reads the list to notice a best sentence that says the opposite of what a
question asks ("the oldest bridge" for "the newest bridge": `rag.text.Annotator.contrary`).
WordNet marks such pairs itself (its `!` pointers between two words of two synsets); nothing here
chooses words. Pairs of multi-word expressions are left out, since the check compares single lemmas.
The database is read directly: NLTK's WordNet reader refuses paths outside its own data folders.
"""

from __future__ import annotations

from pathlib import Path

import click

from rag.text import ANTONYMS

WORDNET = Path("/usr/share/wordnet")
FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
# A synset's type in a pointer: "s" is an adjective satellite, kept in data.adj.
TYPES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}

HEADER = """\
# Direct antonyms of WordNet 3.0, one pair a line: written by `python -m eval.antonyms` from Debian's
# wordnet-base. Read by rag.text.Annotator.contrary.
#
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# Permission to use, copy, modify and distribute this software and database and its documentation
# for any purpose and without fee or royalty is hereby granted, provided that you agree to comply
# with the following copyright notice and statements, including the disclaimer, and that the same
# appear on ALL copies of the software, database and documentation, including modifications that
# you make for internal use or for distribution.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS
# OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY
# MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE
# OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD
# PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.
# The name of Princeton University or Princeton may not be used in advertising or publicity
# pertaining to distribution of the software and/or database. Title to copyright in this software,
# database and any associated documentation shall at all times remain with Princeton University
# and LICENSEE agrees to preserve same.
"""


def synsets(folder: Path) -> dict[tuple[str, str], tuple[list[str], list[tuple[str, str, str, str]]]]:
    """(offset, type) -> (the synset's words, its pointers), from the four data files."""
    found = {}
    for name in FILES:
        for line in (folder / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # the licence at the top of each file
                continue
            fields = line.split(" ")
            count = int(fields[3], 16)
            words = [fields[4 + 2 * i].split("(")[0].lower() for i in range(count)]
            at = 4 + 2 * count
            pointers = [tuple(fields[at + 1 + 4 * j : at + 5 + 4 * j]) for j in range(int(fields[at]))]
            found[(fields[0], name)] = (words, pointers)
    return found


def antonym_pairs(folder: Path) -> list[tuple[str, str]]:
    """Every pair of single words that WordNet gives as direct antonyms, sorted."""
    table = synsets(folder)
    pairs = set()
    for words, pointers in table.values():
        for symbol, offset, kind, ends in pointers:
            if symbol != "!":
                continue
            source = words[int(ends[:2], 16) - 1]
            target = table[(offset, TYPES[kind])][0][int(ends[2:], 16) - 1]
            if "_" not in source and "_" not in target and source != target:
                pairs.add(tuple(sorted((source, target))))
    return sorted(pairs)


@click.command()
@click.option("--wordnet", type=click.Path(path_type=Path, exists=True), default=WORDNET, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=ANTONYMS, show_default=True)
def main(wordnet: Path, out: Path) -> None:
    """Write the antonym list from a WordNet 3.0 database folder."""
    pairs = antonym_pairs(wordnet)
    out.write_text(HEADER + "".join(f"{a} {b}\n" for a, b in pairs), encoding="utf-8")
    click.echo(f"Wrote {len(pairs)} pairs to {out}")


if __name__ == "__main__":
    main()
