"""sentence-transformers' ``encode`` for a plain BERT mean-pooling model, on torch alone.

Importing sentence-transformers (and through it most of transformers) and
building its model takes about 4 s on two CPU cores, against under 2 s for
torch, safetensors and tokenizers: a default ``score`` run pays it every time.
For the common shape of model folder, a BERT encoder (absolute positions,
GELU) followed by mean pooling and L2 normalisation, as in the packaged
all-MiniLM-L6-v2, :class:`BertMeanPooling` runs the same arithmetic with the
same torch functions, in the same batches (texts sorted by length, longest
first, exactly as sentence-transformers sorts them), so the vectors are
identical to sentence-transformers' bit for bit (``tests/test_bert_pooling.py``
compares them). Any other folder is left to sentence-transformers
(:func:`plain_bert_settings` returns ``None`` for it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Keys of a sentence-transformers pooling config that must be false for mean pooling alone.
_OTHER_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


@dataclass(frozen=True)
class BertSettings:
    """What :class:`BertMeanPooling` needs from a model folder."""

    layers: int
    heads: int
    layer_norm_eps: float
    max_seq_length: int
    pad_token_id: int
    pad_token: str
    normalize_modules: int
    weight_prefix: str


def _read_json(path: Path) -> dict | list:
    return json.loads(path.read_text(encoding="utf-8"))


def plain_bert_settings(model_dir: str | Path) -> BertSettings | None:
    """The folder's settings when it is a plain BERT + mean pooling model, else ``None``.

    Plain means: ``modules.json`` lists a Transformer at the folder's root, a
    Pooling with mean pooling only, and nothing but Normalize after it; the
    transformer is a BERT with absolute position embeddings and GELU; the
    weights are ``model.safetensors`` and the tokenizer ``tokenizer.json``;
    no prompt is configured and the token limit is written down. A config
    file that is missing, unreadable or unexpected gives ``None``, and the
    caller uses sentence-transformers; a weights file that cannot be read
    raises safetensors' error.
    """
    folder = Path(model_dir)
    try:
        modules = _read_json(folder / "modules.json")
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
            return None
        if modules[0].get("path", "") not in ("", "."):
            return None
        pooling = _read_json(folder / modules[1]["path"] / "config.json")
        if pooling.get("pooling_mode_mean_tokens") is not True or any(pooling.get(k) for k in _OTHER_POOLING_MODES):
            return None
        if pooling.get("include_prompt", True) is not True or pooling.get("pooling_mode") not in (None, "mean"):
            return None
        config = _read_json(folder / "config.json")
        if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
                or config.get("position_embedding_type", "absolute") != "absolute"
                or config.get("is_decoder") or config.get("add_cross_attention")):
            return None
        bert_config = _read_json(folder / "sentence_bert_config.json")
        max_seq_length = bert_config.get("max_seq_length")
        if not isinstance(max_seq_length, int) or bert_config.get("do_lower_case"):
            return None
        if max_seq_length > int(config["max_position_embeddings"]):
            return None
        st_config_path = folder / "config_sentence_transformers.json"
        if st_config_path.is_file():
            st_config = _read_json(st_config_path)
            if any(st_config.get(k) for k in ("prompts", "default_prompt_name")):
                return None
        tokenizer_config = _read_json(folder / "tokenizer_config.json")
        if tokenizer_config.get("padding_side", "right") != "right":
            return None
        if not (folder / "tokenizer.json").is_file() or not (folder / "model.safetensors").is_file():
            return None
        prefix = _weight_prefix(folder / "model.safetensors", int(config["num_hidden_layers"]))
        if prefix is None:
            return None
        return BertSettings(
            layers=int(config["num_hidden_layers"]), heads=int(config["num_attention_heads"]),
            layer_norm_eps=float(config["layer_norm_eps"]), max_seq_length=max_seq_length,
            pad_token_id=int(config.get("pad_token_id", 0)), pad_token=str(tokenizer_config.get("pad_token", "[PAD]")),
            normalize_modules=len(kinds) - 2, weight_prefix=prefix,
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _weight_names(layers: int) -> list[str]:
    names = [f"embeddings.{n}.weight" for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                     "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
    return names


def _weight_prefix(path: Path, layers: int) -> str | None:
    """``""`` or ``"bert."``: whichever prefix makes every BERT weight name present, else ``None``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        keys = set(handle.keys())
    needed = _weight_names(layers)
    for prefix in ("", "bert."):
        if all(prefix + name in keys for name in needed):
            return prefix
    return None


class BertMeanPooling:
    """A plain BERT mean-pooling sentence model, run with torch functions alone.

    Parameters
    ----------
    model_dir : str or Path
        A folder for which :func:`plain_bert_settings` is not ``None``.
    settings : BertSettings
        Its settings.
    max_seq_length : int, optional
        Token limit instead of the folder's.
    """

    def __init__(self, model_dir: str | Path, settings: BertSettings, max_seq_length: int | None = None):
        import torch  # noqa: F401 - fail here, not in the first batch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        self.settings = settings
        self.max_seq_length = int(max_seq_length or settings.max_seq_length)
        weights = load_file(str(folder / "model.safetensors"), device="cpu")
        self._w = {name: weights[settings.weight_prefix + name] for name in _weight_names(settings.layers)}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_seq_length, strategy="longest_first")
        self._tokenizer.enable_padding(pad_id=settings.pad_token_id, pad_token=settings.pad_token)

    def get_embedding_dimension(self) -> int:
        """Width of the vectors (the hidden size)."""
        return int(self._w["embeddings.word_embeddings.weight"].shape[1])

    def _forward(self, texts: list[str]):
        """Mean-pooled, normalised vectors of one batch (a torch tensor), as sentence-transformers computes them."""
        import torch
        import torch.nn.functional as F

        w, eps = self._w, self.settings.layer_norm_eps
        encoded = self._tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.long)
        types = torch.tensor([e.type_ids for e in encoded], dtype=torch.long)
        batch, length = ids.shape

        def linear(x, name):
            return F.linear(x, w[name + ".weight"], w[name + ".bias"])

        def layer_norm(x, name):
            return F.layer_norm(x, (x.shape[-1],), w[name + ".weight"], w[name + ".bias"], eps)

        x = F.embedding(ids, w["embeddings.word_embeddings.weight"])
        x = x + F.embedding(types, w["embeddings.token_type_embeddings.weight"])
        x = x + F.embedding(torch.arange(length).unsqueeze(0), w["embeddings.position_embeddings.weight"])
        x = layer_norm(x, "embeddings.LayerNorm")
        keep = mask.bool()[:, None, None, :].expand(batch, 1, length, length)
        head_dim = x.shape[-1] // self.settings.heads
        for i in range(self.settings.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(x, p + f"attention.self.{n}").view(batch, length, -1, head_dim).transpose(1, 2)
                       for n in ("query", "key", "value"))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=0.0, scale=head_dim ** -0.5)
            attended = attended.transpose(1, 2).reshape(batch, length, -1).contiguous()
            x = layer_norm(linear(attended, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            hidden = F.gelu(linear(x, p + "intermediate.dense"))
            x = layer_norm(linear(hidden, p + "output.dense") + x, p + "output.LayerNorm")
        weights = mask.unsqueeze(-1).expand(x.size()).to(x.dtype)
        pooled = torch.sum(x * weights, 1) / torch.clamp(weights.sum(1), min=1e-9)
        for _ in range(self.settings.normalize_modules):
            pooled = F.normalize(pooled, p=2, dim=1)
        return pooled

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, normalize_embeddings: bool = True,
               show_progress: bool = False) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array, in sentence-transformers' batches (longest texts first).

        Parameters
        ----------
        texts : sequence of str
            The texts.
        batch_size : int, default 32
            Texts per forward pass.
        normalize_embeddings : bool, default True
            L2-normalise once more after the model's own modules, as
            ``SentenceTransformer.encode(normalize_embeddings=True)`` does.
        show_progress : bool, default False
            A progress bar over the batches.
        """
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.get_embedding_dimension()), dtype=np.float32)
        # sentence-transformers' order: np.argsort of minus the character counts (quicksort, as numpy's default)
        order = np.argsort([-len(t) for t in texts])
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not show_progress):
                rows = order[start:start + batch_size]
                vectors = self._forward([texts[i] for i in rows])
                if normalize_embeddings:
                    vectors = F.normalize(vectors, p=2, dim=1)
                out[rows] = vectors.numpy()
        return out
