"""The cascade (``score --detector fast|cascade|full``): accuracy on unseen generators, and cost.

``--part accuracy``: leave-one-generator-out (LOGO) on the records and the
document-group split of ``scripts/train_cascade.py`` (the shipped fast
detector's held-out split sampled per source: with origin-v4, ChatGPT, Gemma
and SmolLM2 among the machine sources; train / calib / test = 40 / 30 / 30 %
of document groups). For each generator G (ChatGPT, Gemma, SmolLM2, both
SmolLM2 modes together) a cascade is trained on train without G, its band
and calibrations chosen on calib without G, and tested on the test split's
human records and G. The fast detector inside is one that never saw G where
one is given: ``--fast-without G=FOLDER`` (Gemma also ``--no-gemma-model
FOLDER``; builds from ``benchmarks/origin/logo_third_generator.py``). Without
one, its row uses the shipped detector and says
``fast_detector_saw_generator: true``. Compared on the same test records: the
fast detector alone, the shipped one (which saw every generator), and the TF-IDF
character 1-4-gram baseline
(:class:`synthfilter.training.CharTfidfBaseline`) trained on the same train
records without G. AUROC and TPR at 1 % FPR rank by ``synthetic_score``
(the baseline by its probability).

``--part domains`` (its own file, ``results/cascade_domains.json``): the human
side out of domain, on the same records and split. Leave-one-human-domain-out
(LODO): for each human source of the split (Brown, SpamAssassin ham, ShareGPT
user turns) a cascade is trained on train without that source's records, its
band and calibrations chosen on calib without them, and tested on the test
split's records of that source against all the test split's machine text
(ChatGPT, Gemma, SmolLM2), beside the shipped detector (the fast part here: it trained on
every one of these human sources, and no build without one exists) and the
TF-IDF baseline trained on the same train records without the source; the
same test records scored by a second stage trained on every source give the
reference (``with_domain``). Then chitchat, a human domain nothing here
trained on: ``--chitchat`` blocks, one per conversation (seeded), scored by
the shipped cascade with the test split, against each generator, with the
human side chitchat alone, the clean sources (Brown, SpamAssassin, chitchat)
and the clean sources plus the ShareGPT user turns. Besides AUROC and TPR at
1 % FPR it reports the false-positive rate at the operating threshold
(``p_synthetic`` >= 0.5) per human source and mode. LM features of texts
not yet cached are computed (about 0.7 s each).

``--part throughput``: records/s of ``synthfilter score`` (fresh processes,
default encoder, each run with an empty cache folder so nothing is reused:
embeddings, detector scores and LM features are all computed) on the same
``--records`` real held-out paragraphs, in the order base, fast, cascade,
full, base, fast, where ``base`` is the commit given by ``--base-commit``
(today's ``score``, run from a temporary git worktree) and the others are
this checkout with ``--detector``. Reports wall time, records/s, ratios to
``fast`` and the load average around each run.

    nice -n 19 python benchmarks/origin/cascade_bench.py --part accuracy \
        --fast-without sharegpt_chatgpt=<gemma_smollm2 build> --fast-without gemma=<chatgpt_smollm2 build> \
        --fast-without smollm2=<chatgpt_gemma build>
    nice -n 19 python benchmarks/origin/cascade_bench.py --part throughput --records 300 --base-commit f75ef39
    nice -n 19 python benchmarks/origin/cascade_bench.py --part domains --chitchat 360
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_cascade import cascade_data, metrics  # noqa: E402

from synthfilter.cascade import CascadeDetector  # noqa: E402
from synthfilter.origin import load_model  # noqa: E402

GENERATORS = ("sharegpt_chatgpt", "gemma", "smollm2")
HUMAN_DOMAINS = ("brown", "spamassassin", "sharegpt_human")
OUT = ROOT / "benchmarks" / "origin" / "results" / "cascade.json"
DOMAINS_OUT = ROOT / "benchmarks" / "origin" / "results" / "cascade_domains.json"


def shipped_fast() -> tuple[Any, str]:
    """The shipped fast detector and its name (``origin-v4``)."""
    model = load_model()
    return model, model.model_id_.split("@")[0]


def trained_on(model: Any) -> set[str]:
    """The sources a saved fast detector was trained on (from its ``model.json`` metadata)."""
    return set(getattr(model, "metadata_", {}).get("training_data", {}).get("sources", ()))


def accuracy(without: dict[str, Path], per_source: int, seed: int) -> dict:
    """The LOGO part; ``without[G]`` is a fast detector folder built without generator G."""
    from synthfilter.lm_features import LMFeatures
    from synthfilter.training import CharTfidfBaseline

    data = cascade_data(per_source, 600, seed)
    lm = LMFeatures()
    shipped, name = shipped_fast()
    fast_models = {name: shipped}
    unseen: dict[str, str | None] = {g: (None if g in trained_on(shipped) else name) for g in GENERATORS}
    for gen, folder in without.items():
        without_name = "origin-no-gemma" if gen == "gemma" else f"origin-no-{gen}"
        fast_models[without_name] = load_model(folder)
        unseen[gen] = without_name
    out: dict = {"records": {f"{s}/{sp}": n for s, sp, n in
                             data.group_by("source", "split").len().sort("source", "split").rows()},
                 "lm": lm.lm_id}
    for gen in GENERATORS:
        train = data.filter((pl.col("split") == "train") & (pl.col("source") != gen))
        calib = data.filter((pl.col("split") == "calib") & (pl.col("source") != gen))
        test = data.filter((pl.col("split") == "test") & ((pl.col("label") == 0) | (pl.col("source") == gen)))
        fast_name = unseen[gen] or name
        cascade = CascadeDetector(fast_model=fast_models[fast_name], lm=lm, seed=seed).fit(
            train["text"].to_list(), train["label"].to_numpy(), calib_texts=calib["text"].to_list(),
            calib_y=calib["label"].to_numpy(), calib_groups=calib["group"].to_list())
        texts, y = test["text"].to_list(), test["label"].to_numpy().astype(int)
        raw = cascade.fast_().decision_function(texts)
        entry: dict = {"n_machine": int(y.sum()), "n_human": int((y == 0).sum()), "fast_detector": fast_name,
                       "fast_detector_id": fast_models[fast_name].model_id_,
                       "fast_detector_saw_generator": unseen[gen] is None, "band": list(cascade.band_),
                       "calibration_band_fraction": round(cascade.calibration_band_fraction_, 4)}
        for mode in ("fast", "cascade", "full"):
            res = cascade.score(texts, raw=raw, mode=mode)
            entry[mode] = {**metrics(y, res.synthetic_score, res.p_synthetic),
                           "lm_fraction": round(res.lm_fraction, 4),
                           "lm_fraction_of_generator": round(float(res.lm_scored[y == 1].mean()), 4),
                           "lm_fraction_of_humans": round(float(res.lm_scored[y == 0].mean()), 4)}
        entry[name] = {**metrics(y, shipped.decision_function(texts)), "saw_generator": gen in trained_on(shipped)}
        tfidf = CharTfidfBaseline().fit(train["text"].to_list(), train["label"].to_numpy())
        entry["tfidf_baseline"] = {**metrics(y, tfidf.predict_proba(texts)[:, 1]), "saw_generator": False,
                                   "trained_on": "the same train records without the generator"}
        out[gen] = entry
        print(f"{gen}: {json.dumps(entry)}", flush=True)
    return out


def threshold_metrics(y: np.ndarray, score: np.ndarray, p: np.ndarray | None = None) -> dict:
    """AUROC, TPR at 1 % FPR, and with ``p``: ECE and the error rates at the operating threshold ``p >= 0.5``.

    Six decimals, so that tables rounded to three from them are rounded once.
    """
    from sklearn.metrics import roc_auc_score

    from synthfilter.evaluation import expected_calibration_error, tpr_at_fpr

    out = {"n": int(y.size), "auroc": round(float(roc_auc_score(y, score)), 6),
           "tpr_at_1pct_fpr": round(float(tpr_at_fpr(y, score, 0.01)), 6)}
    if p is not None:
        decided = np.asarray(p) >= 0.5
        out["ece"] = round(float(expected_calibration_error(y, p)), 6)
        out["fpr_at_0.5"] = round(float(decided[y == 0].mean()), 6)
        out["tpr_at_0.5"] = round(float(decided[y == 1].mean()), 6)
    return out


def _breakdown(y: np.ndarray, source: np.ndarray, score: np.ndarray, p: np.ndarray | None) -> dict:
    """Metrics against all machine records, then against each generator alone (same humans)."""
    out = {"all": threshold_metrics(y, score, p)}
    for gen in GENERATORS:
        mask = (y == 0) | (source == gen)
        if (source[mask] == gen).any():
            out[gen] = threshold_metrics(y[mask], score[mask], None if p is None else p[mask])
    return out


def _scored(cascade: CascadeDetector, texts: list[str], raw: np.ndarray, y: np.ndarray, source: np.ndarray,
            human_of: np.ndarray | None = None) -> dict:
    """fast / cascade / full of one cascade on one test set: metrics, and the share of each side sent to the LM."""
    out = {}
    for mode in ("fast", "cascade", "full"):
        res = cascade.score(texts, raw=raw, mode=mode)
        out[mode] = {**_breakdown(y, source, res.synthetic_score, res.p_synthetic),
                     "lm_fraction_of_machine": round(float(res.lm_scored[y == 1].mean()), 4),
                     "lm_fraction_of_humans": round(float(res.lm_scored[y == 0].mean()), 4)}
        if human_of is not None:  # per human source: FPR at 0.5 and the share sent to the LM
            out[mode]["per_human_source"] = {
                s: {"n": int((human_of == s).sum()),
                    "fpr_at_0.5": round(float((res.p_synthetic[human_of == s] >= 0.5).mean()), 4),
                    "lm_fraction": round(float(res.lm_scored[human_of == s].mean()), 4)}
                for s in sorted(set(human_of[y == 0].tolist()))}
    return out


def chitchat_sample(n: int, seed: int) -> pl.DataFrame:
    """``n`` chitchat blocks, one per conversation (seeded), as ``id, text, label, source, group``."""
    from synthfilter.data.chitchat import load_chitchat

    chats = load_chitchat().sort("id").sample(fraction=1.0, shuffle=True, seed=seed)
    one = chats.unique(subset="group", keep="first", maintain_order=True)
    return one.head(n).select("id", "text", "label", "source", "group").with_columns(pl.col("label").cast(pl.Int64))


def domains(per_source: int, seed: int, chitchat_n: int) -> dict:
    """Leave-one-human-domain-out of the cascade's second stage, and chitchat as an unseen human domain."""
    from synthfilter.cascade import load_cascade
    from synthfilter.lm_features import LMFeatures
    from synthfilter.training import CharTfidfBaseline

    data = cascade_data(per_source, 600, seed)
    data = data.with_columns(pl.col("label").cast(pl.Int64))
    lm = LMFeatures()
    v3, name = shipped_fast()
    out: dict = {"records": {f"{s}/{sp}": n for s, sp, n in
                             data.group_by("source", "split").len().sort("source", "split").rows()},
                 "lm": lm.lm_id, "fast_detector": v3.model_id_,
                 "fast_detector_saw_domain": True,
                 "note": f"the fast detector inside ({name}) trained on every human domain of the held-out "
                         "split (Brown, SpamAssassin, ShareGPT user turns), never on chitchat; only the second "
                         "stage, its band and its calibrations are fitted without the left-out domain"}

    def fit(train: pl.DataFrame, calib: pl.DataFrame) -> CascadeDetector:
        return CascadeDetector(fast_model=v3, lm=lm, seed=seed).fit(
            train["text"].to_list(), train["label"].to_numpy(), calib_texts=calib["text"].to_list(),
            calib_y=calib["label"].to_numpy(), calib_groups=calib["group"].to_list())

    split = {s: data.filter(pl.col("split") == s) for s in ("train", "calib", "test")}
    every = fit(split["train"], split["calib"])  # all domains: the reference the left-out figures drop from
    tfidf_every = CharTfidfBaseline().fit(split["train"]["text"].to_list(), split["train"]["label"].to_numpy())

    lodo: dict = {}
    for dom in HUMAN_DOMAINS:
        train = split["train"].filter(pl.col("source") != dom)
        calib = split["calib"].filter(pl.col("source") != dom)
        test = split["test"].filter((pl.col("source") == dom) | (pl.col("label") == 1))
        texts, y = test["text"].to_list(), test["label"].to_numpy().astype(int)
        source = test["source"].to_numpy()
        cascade = fit(train, calib)
        raw = np.asarray(v3.decision_function(texts), dtype=np.float64)
        entry: dict = {"n_machine": int(y.sum()), "n_human": int((y == 0).sum()), "band": list(cascade.band_),
                       "calibration_band_fraction": round(cascade.calibration_band_fraction_, 4),
                       **_scored(cascade, texts, raw, y, source)}
        entry[name] = {**_breakdown(y, source, raw, v3.calibrate(raw)), "saw_domain": True}
        tfidf = CharTfidfBaseline().fit(train["text"].to_list(), train["label"].to_numpy())
        p_tfidf = tfidf.predict_proba(texts)[:, 1]
        entry["tfidf_baseline"] = {**_breakdown(y, source, p_tfidf, p_tfidf), "saw_domain": False,
                                   "trained_on": "the same train records without the domain"}
        ref = _scored(every, texts, raw, y, source)
        p_ref = tfidf_every.predict_proba(texts)[:, 1]
        entry["with_domain"] = {"band": list(every.band_), "cascade": ref["cascade"], "full": ref["full"],
                                "tfidf_baseline": _breakdown(y, source, p_ref, p_ref),
                                "note": "the same test records, second stage and baseline trained on every domain"}
        lodo[dom] = entry
        print(f"{dom}: " + json.dumps({m: entry[m]["all"] for m in ("fast", "cascade", "full", "tfidf_baseline")}),
              flush=True)
    out["lodo"] = lodo

    # chitchat: a human domain nothing here trained on, scored by the shipped cascade
    chats = chitchat_sample(chitchat_n, seed)
    _, hit = lm.lookup(chats["text"].to_list())
    started = time.time()
    lm.transform(chats["text"].to_list(), show_progress=True)  # fills the LM cache (the only new LM cost)
    lm_cost = {"chitchat_blocks": chats.height, "lm_features_computed": int((~np.asarray(hit)).sum()),
               "lm_seconds": round(time.time() - started, 1)}
    shipped = load_cascade(fast_model=v3, lm=lm)
    test = split["test"]
    pool = pl.concat([test.select("id", "text", "label", "source", "group"), chats])
    texts, y = pool["text"].to_list(), pool["label"].to_numpy().astype(int)
    source = pool["source"].to_numpy()
    raw = np.asarray(v3.decision_function(texts), dtype=np.float64)
    results = {"shipped": _scored(shipped, texts, raw, y, source, human_of=np.where(y == 0, source, ""))}
    p_tfidf = tfidf_every.predict_proba(texts)[:, 1]
    human_sets = {"chitchat": ["chitchat"], "brown+spamassassin": ["brown", "spamassassin"],
                  "clean: brown+spamassassin+chitchat": ["brown", "spamassassin", "chitchat"],
                  "clean+sharegpt_user_turns": ["brown", "spamassassin", "chitchat", "sharegpt_human"]}
    modes = {m: shipped.score(texts, raw=raw, mode=m) for m in ("fast", "cascade", "full")}
    table: dict = {}
    for name, humans in human_sets.items():
        mask = (y == 1) | np.isin(source, humans)
        row = {"n_human": int((mask & (y == 0)).sum())}
        for mode, res in modes.items():
            row[mode] = _breakdown(y[mask], source[mask], res.synthetic_score[mask], res.p_synthetic[mask])
        row["tfidf_baseline"] = _breakdown(y[mask], source[mask], p_tfidf[mask], p_tfidf[mask])
        table[name] = row
        print(f"{name}: " + json.dumps({m: row[m]["all"] for m in ("fast", "cascade", "full")}), flush=True)
    out["with_domain_cascade"] = {
        "content": every._content_digest()[:12], "band": list(every.band_),
        "same_as_shipped": every._content_digest()[:12] == shipped.model_id_.split("@")[-1],
        "note": "the second stage trained on every domain (the with_domain rows); the same weights as the "
                "shipped cascade when same_as_shipped"}
    out["chitchat"] = {
        "cascade": shipped.model_id_, "band": list(shipped.band_), "n_machine": int(y.sum()),
        "sample": f"{chats.height} chitchat blocks, one per conversation (seed {seed}), against the cascade "
                  "split's test records (machine: ChatGPT, Gemma, SmolLM2; human: Brown, SpamAssassin, "
                  "ShareGPT user turns); fast = " + name + "; the TF-IDF baseline trained on the whole train split",
        "lm_cost": lm_cost, "per_human_source": {m: results["shipped"][m]["per_human_source"] for m in modes},
        "human_sets": table}
    return out


def _score_run(python: str, cwd: Path, corpus: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="cascade-bench-") as tmp:
        env = {**os.environ, "SYNTHFILTER_CACHE": tmp, "PYTHONPATH": str(cwd)}
        out = Path(tmp) / "scores.parquet"
        load_before = os.getloadavg()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([python, "-m", "synthfilter.cli", "score", str(corpus), "-o", str(out), "--quiet",
                               *extra], cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"score {extra} failed: {proc.stderr.strip()[-500:]}")
        manifest = json.loads(out.with_name("scores.manifest.json").read_text())
        origin = manifest.get("origin", {})
        return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_before": [round(v, 2) for v in load_before],
                "load_after": [round(v, 2) for v in os.getloadavg()],
                "detector": origin.get("detector"), "timings_s": manifest.get("timings_s")}


def throughput(records: int, seed: int, base_commit: str | None) -> dict:
    held = pl.read_parquet(ROOT / "models" / "origin-v4" / "heldout_test.parquet")
    sample = held.sample(records, seed=seed + 1).select("id", "text")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="cascade-corpus-") as tmp:
        corpus = Path(tmp) / "corpus.parquet"
        sample.write_parquet(corpus)
        base_tree = None
        if base_commit:
            base_tree = Path(tmp) / "base"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), base_commit],
                           check=True, capture_output=True)
        plan = [("base", None), ("fast", "fast"), ("cascade", "cascade"), ("full", "full"), ("base", None),
                ("fast", "fast")]
        runs = []
        try:
            for name, mode in plan:
                if name == "base" and base_tree is None:
                    continue
                cwd = base_tree if name == "base" else ROOT
                extra = [] if mode is None else ["--detector", mode]
                run = {"run": name, **_score_run(python, cwd, corpus, extra)}
                run["records_per_s"] = round(records / run["wall_s"], 2)
                runs.append(run)
                print(json.dumps(run), flush=True)
        finally:
            if base_tree is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                               capture_output=True)
    names = list(dict.fromkeys(r["run"] for r in runs))
    mean = {name: float(np.mean([r["wall_s"] for r in runs if r["run"] == name])) for name in names}
    cpu = {name: float(np.mean([r["cpu_s"] for r in runs if r["run"] == name])) for name in names}
    return {"records": records, "encoder": "minilm (default)", "cold_cache": True, "runs": runs,
            "mean_wall_s": {k: round(v, 2) for k, v in mean.items()},
            "records_per_s": {k: round(records / v, 2) for k, v in mean.items()},
            "speed_ratio_to_fast": {k: round(mean["fast"] / v, 4) for k, v in mean.items()},
            "mean_cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "cpu_ratio_to_fast": {k: round(v / cpu["fast"], 3) for k, v in cpu.items()},
            "base_commit": base_commit}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["accuracy", "throughput", "both", "domains"], default="both",
                    help="both = accuracy and throughput; domains writes its own file (default "
                         "results/cascade_domains.json)")
    ap.add_argument("--no-gemma-model", type=Path, default=None, help="leave-Gemma-out fast detector folder")
    ap.add_argument("--fast-without", action="append", default=[], metavar="GENERATOR=FOLDER",
                    help="a fast detector folder built without GENERATOR (sharegpt_chatgpt, gemma, smollm2), "
                         "used for its LOGO row (repeatable; --no-gemma-model F is gemma=F)")
    ap.add_argument("--per-source", type=int, default=400)
    ap.add_argument("--records", type=int, default=300, help="records for the throughput runs")
    ap.add_argument("--base-commit", default=None, help="commit whose score is today's (throughput)")
    ap.add_argument("--chitchat", type=int, default=360, help="chitchat blocks (one per conversation) for domains")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="results file (default: by --part)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = DOMAINS_OUT if args.part == "domains" else OUT
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still removes its worktree
    result = json.loads(args.out.read_text()) if args.out.is_file() else {}
    env = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_start":
           [round(v, 2) for v in os.getloadavg()], "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    started = time.time()
    without = {gen: Path(folder).expanduser() for gen, _, folder in (f.partition("=") for f in args.fast_without)}
    if args.no_gemma_model is not None:
        without.setdefault("gemma", args.no_gemma_model)
    bad = sorted(set(without) - set(GENERATORS))
    if bad:
        ap.error(f"--fast-without: unknown generator(s) {bad}; choose from {', '.join(GENERATORS)}")
    if args.part in ("accuracy", "both"):
        result["logo"] = {**accuracy(without, args.per_source, args.seed),
                          "environment": {**env, "wall_s": round(time.time() - started, 1)}}
    if args.part == "domains":
        result = {**domains(args.per_source, args.seed, args.chitchat),
                  "environment": {**env, "wall_s": round(time.time() - started, 1),
                                  "load_average_end": [round(v, 2) for v in os.getloadavg()]}}
    if args.part in ("throughput", "both"):
        started = time.time()
        result["throughput"] = {**throughput(args.records, args.seed, args.base_commit),
                                "environment": {**env, "wall_s": round(time.time() - started, 1),
                                                "load_average_end": [round(v, 2) for v in os.getloadavg()]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
