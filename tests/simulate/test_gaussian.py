"""Recursive Gaussian fitting reproduces the published reference figures (README, "Simulating collapse").

Tolerances: the spec allows +-0.05 on the median sigma. With 1,000 runs the
standard error of the median is far smaller: log sigma after t refits has a
spread of about sqrt(t / (2n)) (0.07 at t=10, 1.0 at t=200 with n=100), so the
median's standard error is at most 1.25 * 1.0 / sqrt(1000) = 0.04 in log units,
0.005 in sigma at t=200 (sigma about 0.13), and below 0.003 elsewhere. The
+-0.05 band is thus more than 10 standard errors wide and these fixed-seed tests
do not flake across seeds, while an estimator change (ddof=1 gives 0.36 at
t=200) or a fresh real draw per generation (plateaus 0.95/0.97/0.99) fails them.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthfilter.errors import ConfigError
from synthfilter.simulate.gaussian import simulate_gaussian

RUNS = 1000


def _at(table, t):
    return table.filter(table["generation"] == t)["sigma_median"].item()


def test_replacement_collapses_like_the_reference():
    table = simulate_gaussian("replace", generations=200, n_runs=RUNS, seed=1)
    for t, expected in {10: 0.89, 50: 0.58, 100: 0.35, 200: 0.13}.items():
        assert _at(table, t) == pytest.approx(expected, abs=0.05), t
    # Collapse is monotone in the median.
    assert np.all(np.diff(table["sigma_median"].to_numpy()[::10]) < 0)


@pytest.mark.parametrize(("share", "plateau"), [(0.1, 0.87), (0.2, 0.93), (0.5, 0.975)])
def test_fixed_real_share_plateaus(share, plateau):
    table = simulate_gaussian("fixed_real", generations=100, n_runs=RUNS, real_share=share, seed=2)
    assert _at(table, 50) == pytest.approx(plateau, abs=0.05)
    assert _at(table, 100) == pytest.approx(plateau, abs=0.05)


def test_accumulating_all_data_holds_sigma():
    table = simulate_gaussian("accumulate", generations=100, n_runs=RUNS, seed=3)
    assert _at(table, 100) == pytest.approx(0.986, abs=0.05)
    assert _at(table, 100) > _at(simulate_gaussian("fixed_real", generations=100, n_runs=RUNS, real_share=0.5), 100)


def test_keeping_rare_real_points_beats_the_same_real_share():
    fixed = simulate_gaussian("fixed_real", generations=100, n_runs=RUNS, real_share=0.2, seed=4)
    kept = simulate_gaussian("cap_keep_rare", generations=100, n_runs=RUNS, real_share=0.2, seed=4)
    assert _at(fixed, 100) < _at(kept, 100) <= 1.0


def test_same_seed_same_table_and_columns():
    a = simulate_gaussian("replace", generations=5, n_runs=50, seed=7)
    b = simulate_gaussian("replace", generations=5, n_runs=50, seed=7)
    assert a.equals(b)
    assert a.columns == ["regime", "generation", "sigma_median", "sigma_p10", "sigma_p90", "abs_mu_median"]
    assert a.height == 6 and a["generation"].to_list() == list(range(6))
    assert a["sigma_median"][0] == pytest.approx(1.0, abs=0.05)


def test_progress_called_per_generation():
    seen = []
    simulate_gaussian("accumulate", generations=4, n_runs=10, progress=seen.append)
    assert seen == [1, 2, 3, 4]


@pytest.mark.parametrize("kwargs", [{"regime": "nope"}, {"n_samples": 1}, {"real_share": 1.5}, {"n_runs": 0},
                                    {"generations": -1}, {"sigma0": 0.0}])
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        simulate_gaussian(**kwargs)
