"""The shipped detector on its held-out split plus chitchat, a human domain it never saw.

    PYTHONPATH=. python benchmarks/origin/eval_chitchat.py        # about 30 s with the static encoder

Writes ``benchmarks/origin/results/heldout_plus_chitchat/`` (``metrics.json``,
``breakdown.md``; the ROC and reliability plots are left in a temporary
folder): ``synthfilter evaluate`` on ``heldout_test.parquet`` with 2,000
chitchat paragraphs (label 0, source ``chitchat``, seeded sample, one
document per conversation) added. The chitchat row of the per-source table
reads "how well is machine text told from chat written by people", and
its TPR at 1 % FPR sets the threshold on chitchat alone.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from synthfilter.cli import main as cli  # noqa: E402
from synthfilter.data.chitchat import load_chitchat  # noqa: E402

HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
OUT = ROOT / "benchmarks" / "origin" / "results" / "heldout_plus_chitchat"


def main() -> int:
    heldout = pl.read_parquet(HELDOUT)
    chats = load_chitchat().sample(2000, seed=0).select(heldout.columns[:-1]).with_columns(split=pl.lit("chitchat"))
    data = pl.concat([heldout, chats.select(heldout.columns).cast(heldout.schema)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heldout_plus_chitchat.parquet"
        data.write_parquet(path)
        result = CliRunner().invoke(cli, ["evaluate", str(path), "-o", str(Path(tmp) / "eval")])
        print(result.output)
        if result.exit_code != 0:
            return result.exit_code
        OUT.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "breakdown.md"):
            shutil.copy(Path(tmp) / "eval" / name, OUT / name)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
