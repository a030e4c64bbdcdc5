"""``synthfilter report``: one self-contained, escaped HTML file for a scored corpus or a monitor run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import polars as pl
import pytest

from synthfilter.report import build_report, write_report
from tests.conftest import run_cli as invoke

_EXTERNAL = [
    re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE),
    re.compile(r"<script\b", re.IGNORECASE),
    re.compile(r"@import", re.IGNORECASE),
    re.compile(r"url\(\s*['\"]?\s*(?:https?:)?//", re.IGNORECASE),
    re.compile(r"<link\b", re.IGNORECASE),
    re.compile(r"<iframe\b|<object\b|<embed\b", re.IGNORECASE),
]


def external_references(document: str) -> list[str]:
    """Every fragment that would load something from outside the file."""
    return [m.group(0) for pattern in _EXTERNAL for m in pattern.finditer(document)]


def test_checker_catches_external_resources():
    for bad in ('<img src="https://x.org/a.png">', "<script>1</script>", '<a href="//cdn.x/y">',
                "<style>@import 'x.css'</style>", "<div style=\"background:url(http://x/y)\">", '<link rel="x">'):
        assert external_references(bad), bad
    assert not external_references('<img src="data:image/png;base64,AAAA"><a href="#top">x</a>')


def test_scores_report_is_self_contained_and_escaped(scored_corpus, hostile, tmp_path):
    out = tmp_path / "corpus.html"
    result = invoke("report", scored_corpus, "-o", out)
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert external_references(document) == []
    assert hostile not in document and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document
    assert document.count("data:image/png;base64,") == 2  # p_synthetic histogram, p_synthetic against rarity
    # Item 9: rarity is a percentile (a flat histogram by construction); the report plots it against p_synthetic.
    assert 'alt="p_synthetic against rarity"' in document and 'alt="rarity"' not in document
    for heading in ("Summary", "Findings", "Most duplicated clusters", "Rarest records", "Provenance"):
        assert f"<h2>{heading}</h2>" in document
    scores = pl.read_parquet(scored_corpus)
    assert f"{scores.height:,} scored records" in document
    # The six hostile copies form the largest duplicate cluster; the table shows it first.
    table = document.split("<h2>Most duplicated clusters</h2>")[1]
    assert "hostile-1" in table.split("</tr>")[1]


def test_scores_report_without_p_synthetic_or_text(scored_corpus, tmp_path):
    slim = tmp_path / "slim.scores.parquet"
    pl.read_parquet(scored_corpus).drop("p_synthetic", "text").write_parquet(slim)
    document = build_report(slim)
    assert "No p_synthetic column" in document and document.count("data:image/png;base64,") == 1
    assert external_references(document) == []


def test_monitor_report_is_self_contained_and_escaped(monitor_run, hostile, tmp_path):
    out = tmp_path / "monitor.html"
    result = invoke("report", monitor_run, "-o", out)
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert external_references(document) == []
    assert "&lt;script&gt;" in document and hostile not in document
    assert "hostile &lt;b&gt;&amp;$x$.parquet" in document and "hostile <b>" not in document
    run = json.loads(monitor_run.read_text())
    for batch in run["batches"]:
        for alarm in batch["alarms"]:
            assert alarm["message"].split(" — ")[0].replace("'", "&#x27;").replace("&", "&amp;")[:30] in document
    for heading in ("Summary", "Alarms", "Metrics across batches", "All metrics", "Reference vs batches",
                    "Most duplicated clusters and rarest records", "What the metrics mean"):
        assert f"<h2>{heading}</h2>" in document
    assert document.count("data:image/png;base64,") == 2  # line charts and projection


def test_same_input_gives_identical_bytes(monitor_run, tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    write_report(monitor_run, a)
    write_report(monitor_run, b)
    assert a.read_bytes() == b.read_bytes()


def _text(suffix, content):
    def make(path):
        path = path.with_suffix(suffix)
        path.write_text(content)
        return path

    return make


def _frame(frame):
    def make(path):
        frame.write_parquet(path)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_text(".json", '{"schema": "other"}'), "not a monitor run"),
        (_text(".json", "{oops"), "not valid JSON"),
        (_text(".json", '{"schema": "synthfilter.monitor/1", "batches": []}'), "has no 'reference'"),
        (_frame(pl.DataFrame({"id": ["a"], "rarity": [0.5]})), "no column 'knn_distance'"),
        (_frame(pl.DataFrame({"id": ["a"], "rarity": [1.5], "knn_distance": [0.1], "dup_cluster": [0],
                              "is_near_duplicate": [False]})), "outside [0, 1]"),
        (_text(".txt", "x"), "cannot make a report"),
        (lambda p: p, "no such file"),
    ],
)
def test_bad_input_exits_two_and_writes_nothing(tmp_path, make, message):
    source = make(tmp_path / "in.parquet")
    out = tmp_path / "out.html"
    result = invoke("report", source, "-o", out)
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.strip().count("\n") == 0
    assert not out.exists() and not list(tmp_path.glob(".out.html*"))


def test_default_output_and_unwritable_folder(monitor_run, tmp_path):
    source = tmp_path / "run.json"
    shutil.copy(monitor_run, source)
    assert invoke("report", source).exit_code == 0
    assert (tmp_path / "run.html").is_file()
    result = invoke("report", source, "-o", tmp_path / "missing" / "x.html")
    assert result.exit_code == 2 and "does not exist" in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium_render(path, tmp_path, *extra):
    """Open a file in headless Chromium; return (exit code, console lines, stdout)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, path.as_uri()]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done.returncode, console, done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_reports_open_in_headless_chromium_without_console_errors(monitor_run, scored_corpus, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    code, console, _ = chromium_render(broken, tmp_path, "--dump-dom")
    assert code == 0 and any("Uncaught" in line for line in console)  # the check can fail

    for source in (monitor_run, scored_corpus):
        page = tmp_path / (source.stem + ".html")
        write_report(source, page)
        code, console, dom = chromium_render(page, tmp_path, "--dump-dom")
        assert code == 0 and console == []
        assert "<h1>synthfilter" in dom and "</html>" in dom
        shot = tmp_path / (source.stem + ".png")
        code, console, _ = chromium_render(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
        assert code == 0 and console == [] and shot.stat().st_size > 20_000
