"""The fee book's rule, written out on its own, to check the exchange's fees against."""

from app.exchange.fees import FeeChange


def expected_fee(changes: list[FeeChange], initial: float, slot: int) -> float:
    """The last accepted change with ``applies_from_slot <= slot``, else ``initial``."""
    fee = initial
    for change in changes:
        if change.applies_from_slot <= slot:
            fee = change.fee_ct_per_kwh
    return fee
