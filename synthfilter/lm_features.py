"""Generator-agnostic features from a small language model's token probabilities.

A text written by a language model tends to sit where *any* language model
puts high probability: its tokens are likely and highly ranked, and more
likely than tokens sampled from the model itself would be. These features
measure that with SmolLM2-135M (the ``lm`` extra, through llama.cpp), one
forward pass per text, no training:

``lm_mean_logp``
    mean log-probability of the text's tokens;
``lm_mean_logrank``
    mean ``log(1 + rank)`` of each token among the vocabulary (0 = the top
    token; lower means more machine-like);
``lm_mean_entropy``
    mean entropy (nats) of the model's next-token distribution;
``lm_fast_detectgpt``
    the analytic Fast-DetectGPT sampling discrepancy (Bao et al., ICLR 2024)
    with the same model for sampling and scoring::

        (log p(x) - sum_t E_{x'~p_t}[log p_t(x')]) / sqrt(sum_t Var_{x'~p_t}[log p_t(x')])

    where ``p_t`` is the model's next-token distribution at position ``t``
    and ``log p(x)`` the sum of the observed tokens' log-probabilities.

Only the first :data:`DEFAULT_MAX_TOKENS` (128) tokens of a text are scored,
for speed: a 200-600 character paragraph is 50-150 tokens, so most are scored
whole. Scores are cached per text (SHA-256 of the text) in an
:class:`~synthfilter.cache.ArrayStore` whose file name carries the LM id (model
file, its digest, the token cap and the feature version), so a re-run pays only
for new texts. llama.cpp runs one sequence at a time here: a "batch" is a
chunk of texts committed to the cache together.

Measured cost (2-core CPU, one thread, ``nice 19`` under other load): see
``benchmarks/origin/README.md``; a few tenths of a second per paragraph,
several hundred times the shipped detector's cost, which is why it is an
option and not in the default scoring.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthfilter.cache import ArrayStore, cached_rows, default_cache_dir, remembered_digest, slug, text_key
from synthfilter.errors import MissingExtraError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "LM_FEATURE_NAMES",
    "LM_FEATURE_SIGNS",
    "LMFeatures",
    "token_statistics",
]

#: Names of the feature columns, in order.
LM_FEATURE_NAMES: tuple[str, ...] = ("lm_mean_logp", "lm_mean_logrank", "lm_mean_entropy", "lm_fast_detectgpt")
#: Direction of each feature fixed in advance (not fitted): +1 when a higher value means "more likely machine".
LM_FEATURE_SIGNS: dict[str, int] = {
    "lm_mean_logp": 1,
    "lm_mean_logrank": -1,
    "lm_mean_entropy": -1,
    "lm_fast_detectgpt": 1,
}
#: Tokens scored per text at most (the rest of a longer text is ignored).
DEFAULT_MAX_TOKENS = 128
#: Version of the feature computation; part of the cache key.
FEATURE_VERSION = 1
_LM_INSTALL = "pip install 'synthfilter[lm]'"


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def token_statistics(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """The four LM features of one text from its next-token logits.

    Parameters
    ----------
    logits : numpy.ndarray, shape ``(n, vocab)``
        Row ``t`` holds the model's logits for the token at position ``t``
        (that is, computed from the tokens before it).
    targets : sequence of int, length ``n``
        The observed tokens.

    Returns
    -------
    numpy.ndarray, shape ``(4,)``
        ``lm_mean_logp``, ``lm_mean_logrank``, ``lm_mean_entropy``,
        ``lm_fast_detectgpt`` (see the module docstring); all NaN when
        ``n == 0``. The discrepancy is 0 when the model is certain at every
        position (zero variance).

    Examples
    --------
    >>> logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    >>> np.round(token_statistics(logits, [0, 1]), 3)
    array([-0.458,  0.   ,  0.839,  0.846])
    """
    logits = np.asarray(logits)
    if logits.dtype != np.float32:
        logits = logits.astype(np.float64)  # llama.cpp's float32 logits stay float32 (half the memory traffic)
    targets = np.asarray(targets, dtype=np.int64)
    if logits.ndim != 2 or logits.shape[0] != targets.size:
        raise ValueError(f"logits {logits.shape} do not match {targets.size} targets")
    if targets.size == 0:
        return np.full(len(LM_FEATURE_NAMES), np.nan)
    rows = np.arange(targets.size)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    norm = exp.sum(axis=1, dtype=np.float64)
    logp = shifted - np.log(norm).astype(shifted.dtype)[:, None]
    prob = exp / norm.astype(exp.dtype)[:, None]
    observed = logp[rows, targets].astype(np.float64)
    weighted = prob * logp
    expected = weighted.sum(axis=1, dtype=np.float64)  # E[log p] = -entropy
    second = (weighted * logp).sum(axis=1, dtype=np.float64)
    variance = np.maximum(second - expected**2, 0.0)
    rank = (shifted > shifted[rows, targets][:, None]).sum(axis=1)
    total_var = variance.sum()
    discrepancy = (observed.sum() - expected.sum()) / np.sqrt(total_var) if total_var > 0 else 0.0
    return np.array([observed.mean(), np.log1p(rank).mean(), -expected.mean(), discrepancy])


class LMFeatures:
    """Token-probability features of texts under SmolLM2-135M (llama.cpp), cached per text.

    Parameters
    ----------
    max_tokens : int, default :data:`DEFAULT_MAX_TOKENS`
        Tokens scored per text at most (the text's first ones).
    n_threads : int, default 1
        llama.cpp threads (under load one thread per process was faster than two).
    cache : bool, default True
        Keep and reuse rows in ``<cache>/lm_features/<lm id>.sqlite``.
    cache_dir : str or Path, optional
        Cache root (default :func:`synthfilter.cache.default_cache_dir`).
    model_path : str or Path, optional
        A GGUF file to use instead of the packaged SmolLM2-135M-Instruct.

    Attributes
    ----------
    feature_names : tuple of str
        :data:`LM_FEATURE_NAMES`.
    last_stats : dict
        ``texts``, ``hits`` (found in the cache), ``computed`` and ``seconds``
        (time spent computing, so ``seconds / computed`` is the cost per text)
        of the latest :meth:`transform`.

    Raises
    ------
    MissingExtraError
        At construction, when ``llama-cpp-python`` or the model package is
        not installed (one line with the install command).

    Examples
    --------
    >>> lm = LMFeatures()  # doctest: +SKIP
    >>> lm.transform(["A paragraph to score."]).shape  # doctest: +SKIP
    (1, 4)
    """

    feature_names = LM_FEATURE_NAMES

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        n_threads: int = 1,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingExtraError("llama-cpp-python", "lm", "The LM feature block", _LM_INSTALL) from exc
        if model_path is None:
            from synthfilter.data.smollm2 import smollm2_model_path

            model_path = smollm2_model_path()
        if max_tokens < 2:
            raise ValueError("max_tokens must be at least 2")
        self.max_tokens = int(max_tokens)
        self.n_threads = int(n_threads)
        self.model_path = Path(model_path)
        self.cache = cache
        self.cache_dir = cache_dir
        self._llama_cpp = llama_cpp
        self._llm: Any = None
        self.last_stats: dict[str, float] = {}

    # ------------------------------------------------------------------ identity
    @property
    def lm_id(self) -> str:
        """Id of the model and settings: file name, 12 hex digits of its SHA-256, token cap, feature version."""
        path = self.model_path

        def compute() -> str:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()

        digest = remembered_digest(path, compute)
        return f"{path.stem}@{digest[:12]}:max{self.max_tokens}:v{FEATURE_VERSION}"

    def _model(self) -> Any:
        if self._llm is None:
            self._llm = self._llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.max_tokens + 8,
                n_batch=self.max_tokens + 8,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                logits_all=True,
                verbose=False,
            )
        return self._llm

    # ------------------------------------------------------------------ features
    def tokens(self, text: str) -> list[int]:
        """The tokens of ``text`` that are scored: a beginning-of-text token when the model uses one, then the text's, capped."""
        llm = self._model()
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        bos = llm.token_bos()
        if not tokens or (bos >= 0 and tokens[0] != bos):
            # No BOS added by the model's settings: start from the BOS (or EOS) token so the
            # first text token is scored too.
            start = bos if bos >= 0 else llm.token_eos()
            tokens = [start, *tokens]
        return tokens[: self.max_tokens + 1]

    def logits(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Next-token logits of one text (one forward pass) and the tokens they predict.

        Returns
        -------
        logits : numpy.ndarray, shape ``(n, vocab)``
        targets : numpy.ndarray, shape ``(n,)``
        """
        llm = self._model()
        tokens = self.tokens(text)
        llm.reset()
        llm.eval(tokens)
        logits = np.array(llm.scores[: len(tokens) - 1], dtype=np.float32)
        return logits, np.asarray(tokens[1:], dtype=np.int64)

    def _compute(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), len(LM_FEATURE_NAMES)), dtype=np.float64)
        for i, text in enumerate(texts):
            out[i] = token_statistics(*self.logits(text))
        return out

    def _store(self) -> ArrayStore:
        root = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
        return ArrayStore(root / "lm_features" / f"{slug(self.lm_id)}.sqlite", len(LM_FEATURE_NAMES))

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Features of the texts already in the cache, computing nothing (the model is not loaded).

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        rows : numpy.ndarray, shape ``(len(texts), 4)``
            NaN where a text is not cached.
        found : numpy.ndarray of bool, shape ``(len(texts),)``
        """
        keys = [text_key(t) for t in texts]
        rows = np.full((len(keys), len(LM_FEATURE_NAMES)), np.nan)
        if not self.cache:
            return rows, np.zeros(len(keys), dtype=bool)
        with self._store() as store:
            found = store.lookup(keys)
        hit = np.array([k in found for k in keys], dtype=bool)
        for i, key in enumerate(keys):
            if hit[i]:
                rows[i] = found[key]
        return rows, hit

    def transform(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Features of each text (cached by text and LM id).

        Parameters
        ----------
        texts : sequence of str
        show_progress : bool, default False

        Returns
        -------
        numpy.ndarray, shape ``(len(texts), 4)``
            Columns :data:`LM_FEATURE_NAMES` (float32 when read from the cache).
        """
        texts = list(texts)
        start = time.perf_counter()
        if not self.cache:
            rows = self._compute(texts)
            hits, computed = 0, len(texts)
        else:
            with self._store() as store:
                rows, hits, computed = cached_rows(
                    texts, store, self._compute, show_progress=show_progress, description="LM features", chunk=64
                )
        self.last_stats = {
            "texts": len(texts),
            "hits": hits,
            "computed": computed,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return np.asarray(rows, dtype=np.float64)
