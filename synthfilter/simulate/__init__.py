"""Simulations of model collapse and of its mitigation by synthfilter.

Reference simulations (pure numpy, reproduce the published figures quoted in the README):

* :func:`simulate_gaussian`: recursive fitting of a 1-D Gaussian;
* :func:`simulate_unigram`: recursive fitting of a unigram model on a Zipf vocabulary.

Text simulation (:func:`run_text_simulation`): a word-level Kneser-Ney n-gram
model (:class:`NGramLM`) is trained, generation after generation, on data
chosen from its own samples and fresh human paragraphs by a regime
(:mod:`synthfilter.simulate.regimes`), one of which is synthfilter's rebuild with
a real detector in the loop.

Examples
--------
>>> from synthfilter.simulate import simulate_gaussian
>>> table = simulate_gaussian("replace", generations=10, n_runs=200, seed=0)
>>> round(table["sigma_median"][10], 1)
0.9
"""

from synthfilter.ngram import NGramLM, Vocabulary
from synthfilter.simulate.gaussian import GAUSSIAN_REGIMES, simulate_gaussian
from synthfilter.simulate.regimes import (
    DEFAULT_TEXT_REGIMES,
    REGIMES,
    GenerationContext,
    make_regime,
)
from synthfilter.simulate.text import (
    TextSimulationConfig,
    TextSimulationResult,
    run_text_simulation,
)
from synthfilter.simulate.unigram import (
    UNIGRAM_REGIMES,
    simulate_unigram,
    zipf_probabilities,
)

__all__ = [
    "DEFAULT_TEXT_REGIMES",
    "GAUSSIAN_REGIMES",
    "REGIMES",
    "UNIGRAM_REGIMES",
    "GenerationContext",
    "NGramLM",
    "TextSimulationConfig",
    "TextSimulationResult",
    "Vocabulary",
    "make_regime",
    "run_text_simulation",
    "simulate_gaussian",
    "simulate_unigram",
    "zipf_probabilities",
]
