"""Constant fee: the parameter, inside the exchange's limits, whatever happened."""

import pytest
from pydantic import ValidationError

from app.tariffs.base import FeeLimits
from app.tariffs.constant import ConstantParams, next_fee

from .helpers import LIMITS, history, slot_after


def test_the_fee_is_the_parameter_in_every_slot():
    params = ConstantParams(fee_ct_per_kwh=2.5)
    for h in (history([]), history([500.0, 0.0]), history([float("nan")])):
        assert next_fee(h, slot_after(h), params, LIMITS) == 2.5


def test_a_fee_above_the_exchange_maximum_is_clamped():
    h = history([1.0])
    assert next_fee(h, slot_after(h), ConstantParams(fee_ct_per_kwh=80), FeeLimits(0, 50)) == 50


@pytest.mark.parametrize("fee", [-0.1, float("nan"), float("inf")])
def test_negative_or_non_finite_fees_are_refused(fee):
    with pytest.raises(ValidationError, match="fee_ct_per_kwh"):
        ConstantParams(fee_ct_per_kwh=fee)


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ConstantParams(fee_ct_per_kwh=1, fee=2)
