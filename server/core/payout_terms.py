"""What a withdrawal of diamonds is worth, and where it may be paid. Pure.

Diamonds are worth a fixed cash amount each, per currency (settings'
``payout_rates``, "USD:0.005,CNY:0.05" by default). A payout method decides
the currency: alipay and wechat pay in CNY, a bank or paypal in USD. Cash
is counted in ``Decimal`` and rounded down to the cent: the platform never
promises a fraction of a cent it cannot pay.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

METHODS = ("bank", "paypal", "alipay", "wechat")
CURRENCY_OF_METHOD = {"bank": "USD", "paypal": "USD", "alipay": "CNY", "wechat": "CNY"}
CENT = Decimal("0.01")


def cash_for(diamonds: int, rate: Decimal) -> Decimal:
    """The cash ``diamonds`` are worth, rounded down to the cent."""
    return (rate * diamonds).quantize(CENT, rounding=ROUND_DOWN)


def minimum_diamonds(minimum_cash: Decimal, rate: Decimal) -> int:
    """The fewest diamonds worth at least ``minimum_cash`` (at least one)."""
    return max(1, math.ceil(minimum_cash / rate))
