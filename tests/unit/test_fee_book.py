"""The in-memory fee book: a fee received while slot N runs applies from N+1, never to N."""

import math

import pytest

from app.exchange.fees import FeeBook, FeeRefused, validate_fee


def book():
    return FeeBook({"grid": 2.0, "c1": 1.0}, min_ct_per_kwh=0, max_ct_per_kwh=50)


def test_fee_sent_during_slot_applies_from_next_slot():
    b = book()
    b.open_slot(5)
    change = b.submit("c1", 4.0, source="test")
    assert change.received_slot == 5 and change.applies_from_slot == 6
    assert b.in_force("c1") == 1.0
    assert b.queued("c1") == 4.0
    assert b.open_slot(6)["c1"] == 4.0


def test_several_changes_in_one_slot_the_last_wins():
    b = book()
    b.open_slot(1)
    b.submit("c1", 4.0, "a")
    b.submit("c1", 6.0, "b")
    assert b.fees_for_slot(2)["c1"] == 6.0
    assert b.fees_for_slot(1)["c1"] == 1.0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (math.nan, "invalid_fee"),
        (math.inf, "invalid_fee"),
        (-0.5, "negative_fee"),
        (50.01, "fee_above_maximum"),
        ("3", "invalid_fee"),
        (None, "invalid_fee"),
        (True, "invalid_fee"),
    ],
)
def test_bad_fee_is_refused_with_a_reason_and_changes_nothing(value, code):
    b = book()
    with pytest.raises(FeeRefused) as err:
        b.submit("c1", value, "test")
    assert err.value.code == code and err.value.message
    assert b.changes == [] and b.queued("c1") == 1.0


def test_fee_for_unknown_market_is_refused():
    b = book()
    with pytest.raises(FeeRefused) as err:
        b.submit("nope", 1.0, "test")
    assert err.value.code == "unknown_market"
    assert b.changes == []


def test_integer_fee_is_accepted_as_float():
    assert validate_fee(3, 0, 10) == 3.0
    assert isinstance(validate_fee(3, 0, 10), float)


def test_fast_path_agrees_with_the_full_history_over_a_long_run():
    import random

    rng = random.Random(3)
    b = FeeBook({"grid": 2.0, "c1": 1.0, "c2": 1.0}, 0, 50)
    for slot in range(300):
        b.open_slot(slot)
        for _ in range(rng.randrange(3)):
            b.submit(rng.choice(["grid", "c1", "c2"]), round(rng.uniform(0, 50), 2), "test")
        scanned = {"grid": 2.0, "c1": 1.0, "c2": 1.0}
        for change in b.changes:
            if change.applies_from_slot <= slot + 1:
                scanned[change.market_uuid] = change.fee_ct_per_kwh
        assert b.fees_for_slot(slot + 1) == scanned
    # a slot in the past is recomputed from the changes
    past = {"grid": 2.0, "c1": 1.0, "c2": 1.0}
    for change in b.changes:
        if change.applies_from_slot <= 10:
            past[change.market_uuid] = change.fee_ct_per_kwh
    assert b.fees_for_slot(10) == past
