"""The fee book's rule (in memory): a fee received while slot N runs applies from N+1, never to N;
and the one check of a fee where it enters."""

import math
import random

import pytest

from app.exchange.fees import Fee, FeeBook, FeeRefused, validate_fee


def book() -> FeeBook:
    return FeeBook.in_memory({"grid": 2.0, "c1": 1.0})


def test_fee_sent_during_slot_applies_from_next_slot():
    b = book()
    b.open_slot(5)
    change = b.submit_fee("c1", Fee(4.0), source="test")
    assert change.received_slot == 5 and change.applies_from_slot == 6
    assert b.fee_map(5)["c1"] == 1.0  # in force
    assert b.fee_map(6)["c1"] == 4.0  # queued
    assert b.open_slot(6).tolist() == [2.0, 4.0]


def test_several_changes_in_one_slot_the_last_wins():
    b = book()
    b.open_slot(1)
    b.submit_fee("c1", Fee(4.0), "a")
    b.submit_fee("c1", Fee(6.0), "b")
    assert b.fee_map(2)["c1"] == 6.0
    assert b.fee_map(1)["c1"] == 1.0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (math.nan, "invalid_fee"),
        (math.inf, "invalid_fee"),
        (-math.inf, "invalid_fee"),
        (-0.5, "negative_fee"),
        (-1, "negative_fee"),
        (50.01, "fee_above_maximum"),
        (0.5, "fee_below_minimum"),
        (5e-324, "invalid_fee"),
        ("3", "invalid_fee"),
        ("abc", "invalid_fee"),
        (None, "invalid_fee"),
        (True, "invalid_fee"),
    ],
)
def test_bad_fee_is_refused_with_a_reason(value, code):
    minimum = 1.0 if code == "fee_below_minimum" else 0.0
    with pytest.raises(FeeRefused) as err:
        validate_fee(value, minimum, 50)
    assert err.value.code == code and err.value.message


def test_fee_for_unknown_market_is_refused_and_changes_nothing():
    b = book()
    with pytest.raises(FeeRefused) as err:
        b.submit_fee("nope", Fee(1.0), "test")
    assert err.value.code == "unknown_market"
    assert b.history() == []


def test_integer_and_negative_zero_fees_are_accepted_as_float():
    assert validate_fee(3, 0, 10) == 3.0
    assert isinstance(validate_fee(3, 0, 10), float)
    assert math.copysign(1.0, validate_fee(-0.0, 0, 10)) == 1.0


def test_a_batch_is_accepted_once_per_user_and_transaction_id():
    b = book()
    b.open_slot(3)
    first = b.submit_batch(("alice", "t1"), [("c1", Fee(4.0))], "api", lambda r: {"n": len(r)})
    again = b.submit_batch(("alice", "t1"), [("c1", Fee(9.0))], "api", lambda r: {"n": 99})
    assert first == ({"n": 1}, False) and again == ({"n": 1}, True)
    assert [(c.fee_ct_per_kwh, c.transaction_id) for c in b.history()] == [(4.0, "t1")]


def test_a_batch_whose_answer_fails_keeps_nothing():
    b = book()

    def broken(results: list) -> dict:
        raise RuntimeError("answer failed")

    with pytest.raises(RuntimeError):
        b.submit_batch(("alice", "t1"), [("c1", Fee(4.0))], "api", broken)
    assert b.history() == [] and b.fee_map(1)["c1"] == 1.0
    assert b.submit_batch(("alice", "t1"), [("c1", Fee(5.0))], "api", lambda r: {})[1] is False


def test_fast_path_agrees_with_the_full_history_over_a_long_run():
    rng = random.Random(3)
    b = FeeBook.in_memory({"grid": 2.0, "c1": 1.0, "c2": 1.0})
    for slot in range(300):
        b.open_slot(slot)
        for _ in range(rng.randrange(3)):
            b.submit_fee(rng.choice(["grid", "c1", "c2"]), Fee(round(rng.uniform(0, 50), 2)), "test")
        scanned = {"grid": 2.0, "c1": 1.0, "c2": 1.0}
        for change in b.history():
            if change.applies_from_slot <= slot + 1:
                scanned[change.market_uuid] = change.fee_ct_per_kwh
        assert b.fee_map(slot + 1) == scanned
    # a slot in the past is recomputed from the changes
    past = {"grid": 2.0, "c1": 1.0, "c2": 1.0}
    for change in b.history():
        if change.applies_from_slot <= 10:
            past[change.market_uuid] = change.fee_ct_per_kwh
    assert b.fee_map(10) == past


def test_a_slot_opened_again_takes_the_changes_sent_since():
    b = book()
    b.open_slot(10)
    b.open_slot(3)  # a run started again from an earlier slot
    b.submit_fee("c1", Fee(7.0), "test")
    assert b.fee_map(10)["c1"] == 7.0 and b.fee_map(3)["c1"] == 1.0
    assert b.open_slot(4).tolist() == [2.0, 7.0]
