"""Prices as Stripe counts them: whole numbers of a currency's smallest unit.

Stripe's API takes and gives every amount in the currency's minor unit:
cents for USD, fen for CNY (499 is 4.99), except its zero-decimal
currencies, counted in whole units (500 is 500 JPY), and its three-decimal
ones, counted in thousandths (1230 is 1.230 KWD). A catalogue price is
decimal text with two places ("4.99"). The conversions here are exact, both
ways, and never pass through a float; an amount that is no catalogue price
is refused rather than rounded.

Pure.
"""

from __future__ import annotations

import re
from decimal import Decimal

from server.errors import BadField

# Stripe's lists (its "Supported currencies" page), upper case as the
# catalogue writes currencies.
ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
        "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
# A catalogue price: digits, a point, two digits (server/core/catalog.py).
PRICE = re.compile(r"^[0-9]{1,10}\.[0-9]{2}\Z")
# Far above any charge Stripe takes (eight digits), far below where the
# decimal arithmetic would round.
MAX_AMOUNT = 10**15


def decimals(currency: str) -> int:
    """How many decimal places Stripe's amounts of ``currency`` carry."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(price: str, currency: str) -> int:
    """``"4.99", "USD"`` -> 499: what Stripe is asked to charge for a price."""
    if not PRICE.match(price) or not CURRENCY.match(currency):
        raise BadField(f"not a price: {price!r} {currency!r}")
    units = Decimal(price).scaleb(decimals(currency))
    if units != units.to_integral_value():
        raise BadField(f"{price} {currency} cannot be charged: {currency} has no fractions")
    return int(units)


def to_price(amount: object, currency: object) -> tuple[str, str]:
    """Stripe's ``(499, "usd")`` -> ``("4.99", "USD")``: an amount of an event
    as a catalogue price and currency, or ``bad_field``."""
    if not isinstance(currency, str) or not CURRENCY.match(currency.upper()):
        raise BadField(f"currency {currency!r} is not a three-letter code")
    code = currency.upper()
    # bool is an int to Python, never an amount to Stripe.
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT:
        raise BadField(f"amount {amount!r} is not a whole number of minor units")
    value = Decimal(amount).scaleb(-decimals(code))
    two_places = value.quantize(Decimal("0.01"))
    if two_places != value:
        raise BadField(f"{value} {code} is not a price with two decimal places")
    return f"{two_places:f}", code
