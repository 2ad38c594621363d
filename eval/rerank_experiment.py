"""Experiment: does a small cross-encoder, fine-tuned on CPU from all-MiniLM-L6-v2, beat the fitted
linear evidence scorer (`eval/fit.py`) at ranking sentences and telling answerable questions from
unanswerable ones? Judged across the two tuning corpora: trained on one, scored on the other.

    python -m eval.rerank_experiment                 # collect (or read the cached) pairs, train, report
    python -m eval.rerank_experiment --refresh       # collect the pairs again

Only the tuning sets are read (the seeds' dev half and the SQuAD Rhine article, `eval.fit.tuning_sets`);
the reporting sets never are. Nothing in the app changes: this prints a table and writes nothing but
the pair cache and, with `--save`, the scores.

Three scorers, each fitted on one corpus and judged on the other, at the threshold chosen on the
training corpus (`eval.fit.choose_threshold`), summarised as `eval.fit.summary` does:
- linear: `eval.fit.cross` with `FEATURES`, the shipped scorer's recipe;
- cross-encoder: the packaged MiniLM encoder with a fresh one-logit head, trained with binary
  cross-entropy on (question, sentence) pairs: every positive and the hardest negatives of each
  question by the linear score fitted on the same corpus; score = sigmoid(logit);
- linear + cross-encoder: a logistic regression (`eval.fit.fit_logistic`) on `FEATURES` plus the
  cross-encoder's probability. The cross-encoder feature of the training corpus comes from models
  trained on the other folds of that corpus (out-of-fold), so the regression does not learn to trust
  a score that saw its own labels; the test corpus is scored by the model trained on all of it.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

from eval.fit import (
    FEATURES,
    Question,
    choose_threshold,
    cross,
    fit,
    outcomes,
    summary,
    tuning_sets,
)
from eval.runner import DEFAULT_OUT

PAIRS = Path("/tmp/rerank_pairs.json")
CE_FEATURE = "cross"

# ---------------------------------------------------------------------------------------------
# 1. The pairs: eval.fit.collect's loop, keeping the question's and the sentences' texts too.


def collect_texts(name: str, rows: Sequence, corpus: Path | None, out: Path) -> list[dict]:
    """Every row's question (as asked after joining a follow-up), candidate sentences, their
    signals and labels, retrieved as `RAG.ask` would (the loop of `eval.fit.collect`)."""
    from tqdm import tqdm

    from eval.fit import as_asked
    from eval.metrics import alias_match
    from eval.runner import open_rag
    from rag.evidence import question_kind, signals

    rag = open_rag(out, corpus, backend="embedded")
    rag.ingest([rag.settings.corpus])
    found = []
    for row in tqdm(rows, desc=name, unit="question", file=sys.stderr, leave=False):
        standalone, retrieval, sentences = as_asked(rag, row)
        rows_ = (
            signals(
                standalone.asking, sentences, retrieval.passages, rag.similarities, question_kind(standalone.asking)
            )
            if sentences
            else []
        )
        golds = [row.answer, *row.aliases]
        labels = [int(row.answerable and alias_match(s.text, golds)) for s in sentences]
        found.append(
            {
                "corpus": name,
                "id": row.id,
                "answerable": row.answerable,
                "question": standalone.asking,
                "sentences": [s.text for s in sentences],
                "labels": labels,
                "signals": rows_,
            }
        )
    return found


def load_items(path: Path, out: Path, refresh: bool) -> list[dict]:
    """The pairs of both tuning corpora, from the cache when it is there."""
    if path.exists() and not refresh:
        return json.loads(path.read_text(encoding="utf-8"))
    items = [
        item for name, (rows, corpus) in tuning_sets(out).items() for item in collect_texts(name, rows, corpus, out)
    ]
    path.write_text(json.dumps(items), encoding="utf-8")
    return items


def as_question(item: dict, extra: Sequence[float] | None = None) -> Question:
    """An item as `eval.fit.Question`; `extra` adds the cross-encoder's score to each sentence's signals."""
    rows = item["signals"]
    if extra is not None:
        rows = [{**row, CE_FEATURE: float(x)} for row, x in zip(rows, extra, strict=True)]
    return Question(item["corpus"], item["id"], item["answerable"], rows, item["labels"])


def linear_probabilities(item: dict, scorer: dict) -> np.ndarray:
    """The linear scorer's probability of each of the item's sentences."""
    if not item["signals"]:
        return np.zeros(0)
    z = np.array([[row[f] for f in scorer["features"]] for row in item["signals"]]) @ np.array(scorer["weights"])
    return 1.0 / (1.0 + np.exp(-(z + scorer["bias"])))


# ---------------------------------------------------------------------------------------------
# 2-3. The cross-encoder: the packaged MiniLM with a fresh one-logit head, fine-tuned here.


def model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder, as `rag.embeddings` resolves it (no hub)."""
    from rag.embeddings import resolve_model_path
    from rag.settings import DEFAULT_EMBED_MODEL

    return resolve_model_path(DEFAULT_EMBED_MODEL)


def new_cross_encoder(seed: int, max_length: int):
    """A CrossEncoder on the packaged encoder; its classification head is new, seeded."""
    import torch
    from sentence_transformers import CrossEncoder

    from rag.quiet import quiet_transformers

    quiet_transformers()
    torch.manual_seed(seed)
    return CrossEncoder(model_path(), num_labels=1, max_length=max_length, device="cpu")


def training_pairs(items: Sequence[dict], negatives: int, seed: int) -> list[tuple[str, str, int]]:
    """(question, sentence, label): every positive, and per question the `negatives` negatives the
    linear scorer (fitted on these items) ranks highest: the ones it confuses with answers."""
    scorer = fit([as_question(i) for i in items], FEATURES, checked=False)
    pairs = []
    for item in items:
        p = linear_probabilities(item, scorer)
        order = np.argsort(-p, kind="stable")
        negs = [k for k in order if not item["labels"][k]][: negatives if negatives >= 0 else None]
        chosen = sorted([k for k, y in enumerate(item["labels"]) if y] + negs)
        pairs += [(item["question"], item["sentences"][k], item["labels"][k]) for k in chosen]
    random.Random(seed).shuffle(pairs)
    return pairs


def batches(pairs: Sequence[tuple[str, str, int]], size: int, order: random.Random) -> list[list[tuple]]:
    """The pairs shuffled into batches of `size`, each drawn from pairs of about one length (sorted
    within windows of 8 batches) so that padding wastes little time; the batches in random order."""
    shuffled = list(pairs)
    order.shuffle(shuffled)
    window = size * 8
    found = []
    for at in range(0, len(shuffled), window):
        part = sorted(shuffled[at : at + window], key=lambda p: len(p[0]) + len(p[1]))
        found += [part[k : k + size] for k in range(0, len(part), size)]
    order.shuffle(found)
    return found


def train(
    ce,
    pairs: Sequence[tuple[str, str, int]],
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    max_length: int,
    head_lr: float | None = None,
) -> dict:
    """Binary cross-entropy on the logit, AdamW, linear warm-up (10%) and decay; returns timings."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    order = random.Random(seed)
    model, tokenizer = ce.model, ce.tokenizer
    model.train()
    steps = epochs * ((len(pairs) + batch - 1) // batch)
    # The new head (and the pooler over [CLS], which the mean-pooling embedder never trained) may
    # learn faster than the encoder: `head_lr`; None = the encoder's rate.
    is_head = {n: n.startswith("classifier") or "pooler" in n for n, _ in model.named_parameters()}
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for n, p in model.named_parameters() if is_head[n]], "lr": head_lr or lr},
            {"params": [p for n, p in model.named_parameters() if not is_head[n]], "lr": lr},
        ],
        weight_decay=0.01,
    )
    schedule = get_linear_schedule_with_warmup(optimiser, int(0.1 * steps), steps)
    started, losses = time.perf_counter(), []
    for epoch in range(epochs):
        total = 0.0
        for chunk in batches(pairs, batch, order):
            encoded = tokenizer(
                [q for q, _, _ in chunk],
                [s for _, s, _ in chunk],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(**encoded).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.tensor([float(y) for _, _, y in chunk])
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            total += float(loss.detach()) * len(chunk)
        losses.append(round(total / len(pairs), 4))
        print(
            f"    epoch {epoch + 1}: mean loss {losses[-1]}  ({time.perf_counter() - started:.0f} s)", file=sys.stderr
        )
    model.eval()
    return {
        "pairs": len(pairs),
        "positives": sum(y for _, _, y in pairs),
        "seconds": round(time.perf_counter() - started, 1),
        "loss": losses,
    }


def score_items(ce, items: Sequence[dict], batch: int = 64) -> list[list[float]]:
    """The probability of every sentence of each item. In bulk: all pairs sorted by length and
    scored in batches of `batch` (little padding); per-question latency is `latency`'s."""
    import torch

    pairs = [(n, k, item["question"], s) for n, item in enumerate(items) for k, s in enumerate(item["sentences"])]
    pairs.sort(key=lambda p: len(p[2]) + len(p[3]))
    scores = [[0.0] * len(item["sentences"]) for item in items]
    ce.model.eval()
    with torch.inference_mode():
        for at in range(0, len(pairs), batch):
            chunk = pairs[at : at + batch]
            found = ce.predict([(q, s) for _, _, q, s in chunk], batch_size=len(chunk), show_progress_bar=False)
            for (n, k, _, _), x in zip(chunk, np.asarray(found).reshape(-1), strict=True):
                scores[n][k] = float(x)
    return scores


def latency(ce, items: Sequence[dict], threads: int, sample: int) -> list[float]:
    """Milliseconds to score all candidate sentences of one question in one batch, on `threads`
    threads, for `sample` questions spread over the items (after one warm-up question)."""
    import torch

    asked = [item for item in items if item["sentences"]]
    chosen = asked[:: max(len(asked) // sample, 1)][:sample]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    millis = []
    ce.model.eval()
    with torch.inference_mode():
        for n, item in enumerate([chosen[0], *chosen]):
            started = time.perf_counter()
            ce.predict(
                [(item["question"], s) for s in item["sentences"]],
                batch_size=len(item["sentences"]),
                show_progress_bar=False,
            )
            if n:
                millis.append((time.perf_counter() - started) * 1000)
    torch.set_num_threads(before)
    return millis


def ce_outcomes(items: Sequence[dict], scores: Sequence[Sequence[float]]) -> list[tuple]:
    """(corpus, best probability, right) of each question under the cross-encoder alone."""
    found = []
    for item, s in zip(items, scores, strict=True):
        if not s:
            found.append((item["corpus"], 0.0, 0))
            continue
        at = int(np.argmax(s))
        found.append((item["corpus"], float(s[at]), item["labels"][at]))
    return found


def folds(items: Sequence[dict], count: int, seed: int) -> list[list[int]]:
    """Indices of the items split into `count` folds, at random but fixed by the seed."""
    index = list(range(len(items)))
    random.Random(seed).shuffle(index)
    return [sorted(index[k::count]) for k in range(count)]


def run_direction(train_items: list[dict], test_items: list[dict], settings: dict) -> dict:
    """One direction: the cross-encoder trained on all training items scores the test items, and
    models trained on the other folds score each fold of the training items (out of fold)."""
    seed, negatives = settings["seed"], settings["negatives"]
    hyper = {k: settings[k] for k in ("epochs", "batch", "lr", "max_length", "head_lr")}
    corpus = train_items[0]["corpus"]
    print(f"  training on {corpus}: all {len(train_items)} questions", file=sys.stderr)
    ce = new_cross_encoder(seed, settings["max_length"])
    full = train(ce, training_pairs(train_items, negatives, seed), seed=seed, **hyper)
    test_scores = score_items(ce, test_items)
    millis = {str(n): latency(ce, test_items, n, settings["latency_sample"]) for n in (settings["threads"], 1)}
    load = round(os.getloadavg()[0], 2)
    del ce
    oof: list[list[float]] = [[] for _ in train_items]
    fold_runs = []
    for k, members in enumerate(folds(train_items, settings["folds"], seed)):
        inside = set(members)
        rest = [item for i, item in enumerate(train_items) if i not in inside]
        print(f"  out-of-fold model {k + 1}/{settings['folds']} on {corpus}: {len(rest)} questions", file=sys.stderr)
        ce = new_cross_encoder(seed + 1 + k, settings["max_length"])
        fold_runs.append(train(ce, training_pairs(rest, negatives, seed + 1 + k), seed=seed + 1 + k, **hyper))
        for i, s in zip(members, score_items(ce, [train_items[i] for i in members]), strict=True):
            oof[i] = s
        del ce
    return {
        "train": full,
        "folds": fold_runs,
        "test_scores": test_scores,
        "train_scores": oof,
        "millis": millis,
        "load": load,
    }


# ---------------------------------------------------------------------------------------------
# 4. The table.


def judged(items: list[dict], results: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """For each held-out corpus, each scorer's `eval.fit.summary` row at the training threshold."""
    corpora = sorted({i["corpus"] for i in items})
    linear = cross([as_question(i) for i in items], FEATURES, checked=False)
    table = {}
    for held_out in corpora:
        train_items = [i for i in items if i["corpus"] != held_out]
        test_items = [i for i in items if i["corpus"] == held_out]
        run = results[held_out]
        rows = {
            "linear (FEATURES)": {
                **linear[held_out],
                "threshold": fit([as_question(i) for i in train_items], FEATURES, checked=False)["threshold"],
            }
        }

        # The cross-encoder alone: threshold from its out-of-fold scores on the training corpus.
        threshold = choose_threshold(
            ce_outcomes(train_items, run["train_scores"]), [i["answerable"] for i in train_items]
        )
        test_questions = [as_question(i) for i in test_items]
        rows["cross-encoder"] = {
            **summary(ce_outcomes(test_items, run["test_scores"]), threshold, test_questions)[held_out],
            "threshold": threshold,
        }

        # Linear features plus the cross-encoder's probability (and, a variant, its gap to the best).
        for name, extra in (("linear + cross", (CE_FEATURE,)), ("linear + cross + gap", (CE_FEATURE, "cross_gap"))):
            features = (*FEATURES, *extra)
            train_q = [with_cross(i, s) for i, s in zip(train_items, run["train_scores"], strict=True)]
            test_q = [with_cross(i, s) for i, s in zip(test_items, run["test_scores"], strict=True)]
            scorer = fit(train_q, features, checked=False)
            found = outcomes(test_q, features, np.array(scorer["weights"]), scorer["bias"])
            rows[name] = {**summary(found, scorer["threshold"], test_q)[held_out], "threshold": scorer["threshold"]}
            rows[name]["weights"] = dict(zip(features, scorer["weights"], strict=True))
        table[held_out] = rows
    return table


def with_cross(item: dict, scores: Sequence[float]) -> Question:
    """The item as a Question whose signals also hold the cross-encoder's probability and its gap
    below the question's best sentence's."""
    best = max(scores, default=0.0)
    rows = [
        {**row, CE_FEATURE: float(s), "cross_gap": float(s) - best}
        for row, s in zip(item["signals"], scores, strict=True)
    ]
    return Question(item["corpus"], item["id"], item["answerable"], rows, item["labels"])


def show(table: dict, results: dict, settings: dict, items: list[dict]) -> None:
    """The table, the timings and the settings, on stdout."""
    click.echo("\nTrained on one corpus, judged on the other (threshold chosen on the training corpus)")
    click.echo(
        f"{'held out':<10} {'scorer':<22} {'best_holds':>10} {'auc':>6} {'precision':>9} {'held':>6} {'abstain':>7} {'thresh':>7}"
    )
    for held_out, rows in table.items():
        for name, v in rows.items():
            click.echo(
                f"{held_out:<10} {name:<22} {v['best_holds']:>10.3f} {v['auc']:>6.3f} {v['precision']:>9.3f} "
                f"{v['held']:>6.3f} {v['abstain']:>7.3f} {v['threshold']:>7.4f}"
            )
    click.echo("\nCross-encoder training (per direction: the full model, then the out-of-fold models)")
    for held_out, run in results.items():
        t = run["train"]
        folds_ = ", ".join(f"{f['pairs']} pairs {f['seconds']:.0f} s" for f in run["folds"])
        click.echo(
            f"  judged on {held_out:<9}: {t['pairs']} pairs ({t['positives']} positive), {t['seconds']:.0f} s, "
            f"loss by epoch {t['loss']}; folds: {folds_}"
        )
    click.echo("\nInference: all candidate sentences of one question in one batch (a sample of test questions)")
    for held_out, run in results.items():
        for threads, millis in run["millis"].items():
            click.echo(
                f"  {held_out:<9} {threads} thread(s): p50 {statistics.median(millis):.0f} ms, "
                f"p90 {np.percentile(millis, 90):.0f} ms over {len(millis)} questions "
                f"(load average then {run['load']:.1f} on {os.cpu_count()} cores)"
            )
    sizes = [len(i["sentences"]) for i in items if i["sentences"]]
    click.echo(f"  candidates per question: median {statistics.median(sizes):.0f}, max {max(sizes)}")
    click.echo(f"Settings: {json.dumps(settings)}")


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, help="Folder for the tuning stores.")
@click.option("--pairs", type=click.Path(path_type=Path), default=PAIRS, help="Pair cache (read when present).")
@click.option("--refresh", is_flag=True, help="Collect the pairs again even when cached.")
@click.option("--negatives", default=4, show_default=True, help="Hardest negatives kept per question (-1: all).")
@click.option("--epochs", default=2, show_default=True)
@click.option("--batch", default=16, show_default=True)
@click.option("--lr", default=5e-5, show_default=True, help="Learning rate of the encoder.")
@click.option("--head-lr", type=float, default=None, help="Learning rate of the new head and pooler (default: --lr).")
@click.option("--max-length", default=128, show_default=True)
@click.option("--folds", "folds_", default=2, show_default=True, help="Folds for the out-of-fold training scores.")
@click.option("--seed", default=13, show_default=True)
@click.option("--threads", default=2, show_default=True, help="Threads for the latency measurement.")
@click.option(
    "--train-threads",
    default=1,
    show_default=True,
    help="Threads for training and bulk scoring (1: other processes on the 2 cores make 2 threads slower).",
)
@click.option("--latency-sample", default=60, show_default=True, help="Test questions timed per direction.")
@click.option("--save", type=click.Path(path_type=Path), default=Path("/tmp/rerank_results.json"), show_default=True)
@click.option("--reuse", is_flag=True, help="Read the scores from --save instead of training again.")
def main(
    out,
    pairs,
    refresh,
    negatives,
    epochs,
    batch,
    lr,
    head_lr,
    max_length,
    folds_,
    seed,
    threads,
    train_threads,
    latency_sample,
    save,
    reuse,
) -> None:
    """Cross-encoder vs the linear evidence scorer, across the two tuning corpora."""
    import torch

    torch.set_num_threads(train_threads)
    random.seed(seed)
    np.random.seed(seed)
    settings = {
        "negatives": negatives,
        "epochs": epochs,
        "batch": batch,
        "lr": lr,
        "head_lr": head_lr,
        "max_length": max_length,
        "folds": folds_,
        "seed": seed,
        "threads": threads,
        "train_threads": train_threads,
        "latency_sample": latency_sample,
        "warmup": 0.1,
        "weight_decay": 0.01,
    }
    items = load_items(pairs, out, refresh)
    corpora = sorted({i["corpus"] for i in items})
    started = time.perf_counter()
    if reuse and save.exists():
        saved = json.loads(save.read_text(encoding="utf-8"))
        results, settings = saved["results"], saved["settings"]  # the settings those scores were made with
    else:
        results = {}
        for held_out in corpora:
            print(f"held out: {held_out}", file=sys.stderr)
            results[held_out] = run_direction(
                [i for i in items if i["corpus"] != held_out], [i for i in items if i["corpus"] == held_out], settings
            )
    table = judged(items, results)
    save.write_text(json.dumps({"settings": settings, "table": table, "results": results}), encoding="utf-8")
    show(table, results, settings, items)
    click.echo(f"Total {time.perf_counter() - started:.0f} s; scores in {save}")


if __name__ == "__main__":
    main()
