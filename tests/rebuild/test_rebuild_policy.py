import dataclasses

import pytest

from synthfilter.errors import ConfigError
from synthfilter.rebuild import RebuildPolicy


def test_defaults_and_dict():
    policy = RebuildPolicy()
    assert policy.to_dict() == {
        "max_synthetic": 0.2, "min_gold_share": 0.0, "target_size": None, "keep_rare": 0.95,
        "rare_max_p": 0.5, "max_p": 0.9, "dedup": True, "seed": 0,
    }


def test_frozen():
    policy = RebuildPolicy(seed=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.seed = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"max_synthetic": 1.5}, "--max-synthetic"),
        ({"max_synthetic": -0.1}, "--max-synthetic"),
        ({"max_synthetic": float("nan")}, "--max-synthetic"),
        ({"max_synthetic": "0.2"}, "--max-synthetic"),
        ({"min_gold_share": 2}, "--min-gold-share"),
        ({"keep_rare": 1.01}, "--keep-rare"),
        ({"rare_max_p": -1}, "--rare-max-p"),
        ({"target_size": 0}, "--target-size"),
        ({"target_size": 2.5}, "--target-size"),
        ({"target_size": True}, "--target-size"),
        ({"seed": -1}, "--seed"),
        ({"seed": 1.0}, "--seed"),
        ({"dedup": "yes"}, "dedup"),
    ],
)
def test_invalid_values_name_the_option(kwargs, option):
    with pytest.raises(ConfigError, match=option):
        RebuildPolicy(**kwargs)


def test_keep_rare_none_and_numpy_ints():
    import numpy as np

    policy = RebuildPolicy(keep_rare=None, target_size=np.int64(5), seed=np.int32(2))
    assert policy.keep_rare is None and policy.target_size == 5 and type(policy.target_size) is int
    assert type(policy.seed) is int
