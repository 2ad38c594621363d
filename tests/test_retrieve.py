"""Hybrid retrieval: the right article for names, numbers and paraphrases, and diverse passages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_rag
from test_ingest import run_cli

from rag import RAG, BadInput
from rag.retrieve import (
    HybridRetriever,
    Passage,
    break_ties,
    content_terms,
    diverse,
    reciprocal_rank_fusion,
    shingles,
    term_coverage,
)


def top_docs(rag: RAG, question: str, k: int = 3) -> list[str]:
    """doc_ids of the top k passages."""
    return [p.doc_id for p in rag.retrieve(question, k=k)]


def test_question_about_the_iikura_guest_house_finds_the_tokyo_talks_article(seeded_rag: RAG) -> None:
    assert "002_5c202a017dd63dc4.txt" in top_docs(seeded_rag, "What happened at the Iikura guest house?")


def test_question_about_article_107_finds_the_foreign_ministry_article(seeded_rag: RAG) -> None:
    assert "000_2668febe4f0e43ad.txt" in top_docs(seeded_rag, "What does Article 107 say?")


def test_rare_names_are_found(seeded_rag: RAG) -> None:
    assert top_docs(seeded_rag, "Takeo Mori", k=1) == ["003_4d11091f11b44f0d.txt"]
    assert top_docs(seeded_rag, "Nailya Asker-zade", k=1) == ["004_f38f321cf535aa5e.txt"]


def test_informal_paraphrase_finds_the_article(seeded_rag: RAG) -> None:
    assert top_docs(seeded_rag, "did japan change its stance after kishida met lavrov", k=1) == [
        "002_5c202a017dd63dc4.txt"
    ]
    assert top_docs(seeded_rag, "what did russia say about us military bases in japan", k=1) == [
        "004_f38f321cf535aa5e.txt"
    ]


def test_passages_carry_their_source(seeded_rag: RAG) -> None:
    passages = seeded_rag.retrieve("Soviet memorandum of January 27, 1960", k=5)
    assert len(passages) == 5
    assert all(p.title and p.text and p.end > p.start for p in passages)
    assert passages == sorted(passages, key=lambda p: p.score, reverse=True)


def test_top_passages_are_not_copies_of_one_paragraph(seeded_rag: RAG) -> None:
    # 001 and 003 print the same 1960 memorandum paragraph word for word: no passage is mostly
    # inside one ranked above it (one that holds the paragraph and more may follow it).
    passages = seeded_rag.retrieve("the Soviet Union withdrew its obligation to hand over the islands", k=5)
    for i, a in enumerate(passages):
        for b in passages[i + 1 :]:
            grams_a, grams_b = shingles(a.text), shingles(b.text)
            assert len(grams_a & grams_b) / len(grams_b) <= 0.6


def test_diversity_skips_a_repeated_paragraph() -> None:
    from rag.retrieve import Passage

    text = "After Japan and the United States signed the security treaty in 1960 the Soviet Union withdrew."
    first = Passage("a.txt", "A", text, 0.3, 0, 10)
    copy = Passage("b.txt", "B", "Background. " + text, 0.2, 0, 10)
    other = Passage("c.txt", "C", "Lavrov met Kishida in Tokyo at the Iikura guest house.", 0.1, 0, 10)
    assert [p.doc_id for p in diverse([first, copy, other], 2, 0.6)] == ["a.txt", "c.txt"]


def test_a_passage_that_holds_a_chosen_one_and_more_is_kept(tmp_path: Path) -> None:
    # An article's short last chunk, which the chunk overlap puts inside its opening chunk, ranked
    # first; the opening, which holds the answer, was then dropped as its repeat.
    tail = "Civil protection authorities said the airport was safe. It is the fourth eruption since December."
    opening = Passage("a.txt", "A", "A volcano erupted on Tuesday evening near the town. " * 3 + tail, 0.2, 0, 10)
    last = Passage("a.txt", "A", tail, 0.3, 0, 10)
    assert [p.text for p in diverse([last, opening], 2, 0.6)] == [tail, opening.text]
    # End to end: the question's answer is in the opening chunk.
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "eruption.txt").write_text(ERUPTION, encoding="utf-8")
    (folder / "ferry.txt").write_text(FERRY_NOTICE, encoding="utf-8")
    rag = make_rag(tmp_path / ".rag", folder, backend="embedded")
    rag.ingest([folder])
    chunks = {p.chunk_id: p for p in rag.retrieve("When did the volcano erupt?")}
    assert sum(p.doc_id == "eruption.txt" for p in chunks.values()) == 2, "both chunks of the article"
    answer = rag.ask("When did the volcano erupt?")
    assert not answer.abstained and "Tuesday" in answer.text, answer.text


ERUPTION = """\
Volcano erupts near a fishing town

Skarvik (NTB) – A volcano erupted on the Skarvik peninsula on Tuesday evening, sending lava fountains up to 80 metres into the \
air and forcing the evacuation of about 3,700 residents from the nearby town of Holmvik.

The eruption began at 10:17 pm local time along a fissure roughly four kilometres long, the weather office said.

"This is a considerable eruption," said Ola Brekke, a geophysicist at the university. "The flow rate in the \
first hours was several hundred cubic metres per second."

The hot springs spa, one of the region's most visited sites, closed its doors and sent its 600 guests home. \
Its owners said it would stay shut until the lava stopped.

Civil protection authorities said there was no immediate threat to the airport, 20 kilometres to the \
northwest, and flights continued as scheduled.

It is the fourth eruption in the area since December.
"""

FERRY_NOTICE = "Ferry times\n\nThe ferry to Holmvik leaves at seven every morning and returns at six in the evening.\n"


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["x", "y", "z"], ["y", "w"]], k=60)
    assert max(fused, key=fused.get) == "y"


def narrow_retriever(rag: RAG, candidates: int) -> HybridRetriever:
    """A retriever over the same store whose two searches each return only `candidates` hits, so
    that one search alone finds some passages (with 20 each, both find nearly every seed chunk)."""
    return HybridRetriever(rag.store, rag.embedder, rag.settings.model_copy(update={"candidates": candidates}))


def test_each_passage_says_which_search_found_it(seeded_rag: RAG) -> None:
    retriever = narrow_retriever(seeded_rag, 3)
    named = retriever.retrieve("Nailya Asker-zade", k=3).passages
    assert "Asker-zade" in named[0].text and "bm25" in named[0].found_by  # her name, matched as words
    assert all(p.found_by == ("dense",) for p in named if "Asker" not in p.text)  # the rest by meaning only
    nonsense = retriever.retrieve("zzqx flurble", k=3).passages  # no article holds either word
    assert nonsense and all(p.found_by == ("dense",) for p in nonsense)
    talks = retriever.retrieve("Where did Lavrov and Kishida hold talks?", k=5).passages
    assert {("dense", "bm25"), ("dense",), ("bm25",)} <= {p.found_by for p in talks}
    for passage in named + nonsense + talks:
        assert (passage.similarity is None) == ("dense" not in passage.found_by)  # a cosine only from the dense search
        assert passage.to_dict()["found_by"] == list(passage.found_by)


def test_off_topic_question_is_not_relevant(seeded_rag: RAG) -> None:
    retrieval = seeded_rag.retriever.retrieve("How do I bake sourdough bread?")
    assert not retrieval.is_relevant(seeded_rag.settings.min_relevance, seeded_rag.settings.min_coverage)
    on_topic = seeded_rag.retriever.retrieve("Who is Takeo Mori?")
    assert on_topic.is_relevant(seeded_rag.settings.min_relevance, seeded_rag.settings.min_coverage)


def test_empty_question_is_refused(seeded_rag: RAG) -> None:
    with pytest.raises(BadInput, match="empty"):
        seeded_rag.retrieve("   ")


def test_cli_retrieve_json(tmp_path: Path, corpus: Path) -> None:
    run_cli("ingest", str(corpus), home=tmp_path / ".rag", cwd=tmp_path)
    done = run_cli("retrieve", "--json", "-k", "3", "Iikura guest house", home=tmp_path / ".rag", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    passages = json.loads(done.stdout)["passages"]
    assert len(passages) == 3
    keys = {"doc_id", "title", "dateline", "text", "score", "similarity", "start", "end", "found_by"}
    assert set(passages[0]) == keys
    assert passages[0]["doc_id"] == "002_5c202a017dd63dc4.txt"


def test_a_tie_in_fusion_goes_to_the_passage_holding_the_question_words() -> None:
    # The first passage of each search scores the same in rank fusion (1 / (60 + 1)). At 10k
    # chunks the dense search's first passage for an unheard-of name is a vague match, and the
    # new article BM25 found must still come first (bench: add_one_found_*).
    vague = Passage("old.txt", "Talks", "Moscow's position on the talks did not change.", 1 / 61, 0, 40, chunk_id="a")
    named = Passage("envoy.txt", "Envoy", "Envoy Quellimar Ostrava met the delegation.", 1 / 61, 0, 40, chunk_id="b")
    later = Passage("other.txt", "Other", "Quellimar Ostrava, again.", 1 / 62, 0, 20, chunk_id="c")
    assert [p.doc_id for p in break_ties([vague, later, named], "Quellimar Ostrava")] == [
        "envoy.txt",
        "old.txt",
        "other.txt",
    ]


def test_stored_chunks_carry_what_the_llamaindex_nodes_do(seeded_rag: RAG) -> None:
    # Passages are made from `Store.chunks`, which skips building nodes; they must not differ.
    store = seeded_rag.store
    ids = store.ids()[:4]
    nodes = {node.node_id: node for node in store.nodes(ids)}
    chunks = store.chunks([*ids, "no-such-chunk"])
    assert [c.chunk_id for c in chunks] == ids
    for chunk in chunks:
        assert chunk.text == nodes[chunk.chunk_id].get_content()
        assert chunk.metadata == nodes[chunk.chunk_id].metadata


def test_passage_terms_are_its_text_and_title_content_terms() -> None:
    passage = Passage("a.txt", "Envoy visits", "Quellimar Ostrava met the delegation.", 0.5, 0, 30)
    assert passage.terms == content_terms(passage.text + " " + passage.title)
    assert term_coverage("Which delegation did Ostrava meet on the visits?", [passage]) == 0.75  # not "meet"
