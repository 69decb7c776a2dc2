"""The matching's sorts are exactly the NumPy sorts they replace (the order of trades and so every
stat depends on them): ``group_order`` is ``np.lexsort((key, group))`` and ``stable_int_order``
a stable argsort, ties, NaN, -0.0 and groups beyond 16 bits included."""

import numpy as np
import pytest

from app.exchange.matching import group_order, stable_int_order


@pytest.mark.parametrize("seed", range(40))
def test_group_order_is_lexsort(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 200))
    group = rng.integers(0, [3, 70_000, 200_000][seed % 3], n)
    key = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.uniform(0, 1, n)  # ties or none
    if seed % 4 == 0 and n:
        key[rng.integers(0, n, 3)] = np.nan
    if seed % 5 == 0:
        key[key == 0] = -0.0
    assert group_order(group, key).tolist() == np.lexsort((key, group)).tolist()


def test_group_order_of_groups_already_in_order_is_the_identity():
    group = np.array([0, 2, 3, 7])
    assert group_order(group, np.array([5.0, 1.0, 3.0, 2.0])).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("top", [10, 65_536, 2**31])
def test_stable_int_order_is_a_stable_argsort(top: int):
    values = np.random.default_rng(top).integers(0, top, 5_000)
    assert stable_int_order(values).tolist() == np.argsort(values, kind="stable").tolist()
