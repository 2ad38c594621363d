"""Experiment: does the built-in language model, read as a scorer rather than a writer, tell the
sentence that answers a question (and a question the text cannot answer) better than the fitted
linear scorer alone? Judged across the two tuning corpora: fitted on one, scored on the other.

    python -m eval.lm_experiment             # the pairs of eval.rerank_experiment (collected if absent), LM scores cached
    python -m eval.lm_experiment --no-lm     # only the question-level signals: seconds

Only the tuning sets are read (`eval.fit.tuning_sets`). Nothing in the app changes.

For the linear scorer's `TOP` best sentences of each question, the model (SmolLM2-135M, the packaged
GGUF, through llama.cpp) gives two log-likelihoods per token, each against the same text without the
sentence (pointwise mutual information, so a question that is easy to predict anyway gains nothing):
- `lm_question`: of the question after the sentence ("query likelihood", as in unsupervised passage
  re-ranking: a sentence that answers a question makes the question likely);
- `lm_sentence`: of the sentence after the question.
A second logistic stage over the linear logit and these signals re-ranks the `TOP` sentences and
decides abstention (`eval.fit.summary`'s figures). Two question-level signals are tried the same way:
`absent`, the rarity-weighted share of the question's words in none of the candidate sentences, and
`margin`, how far the best sentence's logit is above the second's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from eval.fit import Question, cross, cross_cells
from eval.rerank_experiment import PAIRS, linear_probabilities, load_items
from eval.runner import DEFAULT_OUT
from rag.evidence import SCORER
from rag.text import content_terms, idf, rarity

TOP = 5
CACHE = Path("/tmp/lm_signals.json")


class Reader:
    """Log-likelihoods of a continuation under the packaged model (llama.cpp, logits of every token)."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        from rag.generate import embedded_model_path
        from rag.settings import Settings

        self.llm = Llama(
            model_path=str(embedded_model_path(Settings())), n_ctx=512, logits_all=True, verbose=False, n_threads=2
        )

    def tokens(self, text: str, special: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def loglik(self, prefix: str, continuation: str) -> float:
        """Mean log-probability per token of `continuation` after `prefix`."""
        head = self.tokens(prefix)
        tail = self.tokens(continuation)
        tokens = (head + tail)[-500:]
        start = len(tokens) - len(tail)
        self.llm.reset()
        self.llm.eval(tokens)
        logits = np.array(self.llm.scores[: len(tokens)])
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        picked = [logp[i - 1, tokens[i]] for i in range(max(start, 1), len(tokens))]
        return float(np.mean(picked)) if picked else 0.0


def lm_signals(reader: Reader, question: str, sentence: str, alone: dict[str, float]) -> dict[str, float]:
    """PMI per token of the question given the sentence, and of the sentence given the question."""
    if "q" not in alone:
        alone["q"] = reader.loglik("Question:", " " + question)
    return {
        "lm_question": reader.loglik(f"Text: {sentence}\nQuestion:", " " + question) - alone["q"],
        "lm_sentence": reader.loglik(f"Question: {question}\nAnswer:", " " + sentence)
        - reader.loglik("Answer:", " " + sentence),
    }


def asked_anywhere(question: str, sentences: list[str], p: np.ndarray) -> dict[str, float]:
    """Question-level signals: the rarity-weighted share of the question's content words found in
    none of the candidate sentences, and the margin of the best sentence's logit over the second's."""
    terms = [content_terms(s) for s in sentences]
    weight, unseen = rarity(terms), idf(0, len(sentences))
    wanted = content_terms(question)
    everywhere = set().union(*terms) if terms else set()
    total = sum(weight.get(t, unseen) for t in wanted) or 1.0
    absent = sum(weight.get(t, unseen) for t in wanted - everywhere) / total
    logits = sorted((float(np.log(x / (1 - x))) for x in p), reverse=True) if len(p) else [0.0]
    margin = logits[0] - logits[1] if len(logits) > 1 else 0.0
    return {"absent": absent, "margin": min(margin, 5.0) / 5.0}


def scored_items(items: list[dict], scorer: dict, lm: bool = True) -> list[dict]:
    """Each item's TOP sentences by the linear scorer, with their linear logit and LM signals (cached)."""
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    reader = None
    started = time.perf_counter()
    out = []
    for n, item in enumerate(items):
        p = linear_probabilities(item, scorer)
        order = list(np.argsort(-p)[:TOP]) if len(p) else []
        rows, labels = [], []
        alone: dict[str, float] = {}
        question_level = asked_anywhere(item["question"], item["sentences"], p)
        for i in order:
            key = f"{item['corpus']}|{item['id']}|{i}"
            if not lm:
                cache[key] = {"lm_question": 0.0, "lm_sentence": 0.0}
            elif key not in cache:
                reader = reader or Reader()
                cache[key] = lm_signals(reader, item["question"], item["sentences"][i], alone)
            logit = float(np.log(p[i] / (1 - p[i])))
            rows.append({"linear": logit, "kind": item["signals"][i]["kind"], **cache[key], **question_level})
            labels.append(item["labels"][i])
        out.append({**item, "rows": rows, "top_labels": labels})
        if n % 50 == 0:
            print(f"{n}/{len(items)} {time.perf_counter() - started:.0f}s", file=sys.stderr)
            if lm:
                CACHE.write_text(json.dumps(cache))
    if lm:
        CACHE.write_text(json.dumps(cache))
    return out


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT)
@click.option(
    "--lm/--no-lm", default=True, help="Score with the language model (slow), or only the question-level signals."
)
def main(out: Path, lm: bool) -> None:
    """Print the cross-corpus figures of the linear scorer alone and with the LM signals."""
    items = load_items(PAIRS, out, refresh=False)
    scorer = json.loads(SCORER.read_text())
    items = scored_items(items, scorer, lm)
    questions = [Question(i["corpus"], i["id"], i["answerable"], i["rows"], i["top_labels"]) for i in items]
    for name, features in (
        ("linear", ["linear"]),
        ("+ lm_question", ["linear", "lm_question"]),
        ("+ lm_sentence", ["linear", "lm_sentence"]),
        ("+ both", ["linear", "lm_question", "lm_sentence"]),
        ("lm only", ["lm_question", "lm_sentence"]),
        ("+ absent", ["linear", "absent"]),
        ("+ margin", ["linear", "margin"]),
        ("+ absent margin", ["linear", "absent", "margin"]),
        ("+ all", ["linear", "lm_question", "lm_sentence", "absent", "margin"]),
    ):
        click.echo(f"{name:<16} {cross_cells(cross(questions, features, checked=False))}")


if __name__ == "__main__":
    main()
