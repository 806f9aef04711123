"""The errors giftstream reports to its clients.

Every error a client can cause or see is a ``GiftError`` with a stable wire
code; the code is what clients branch on, the message is for people. An
error means that nothing changed, except ``Unavailable`` where the outcome is
unknown and the client should retry with the same request id.

    GiftError
    ├── BadRequest            the request itself is wrong; retrying is useless
    │   ├── BadFrame          not decodable, or not an object with a "type"
    │   ├── UnknownType       a message type the server does not take
    │   ├── BadField          a field is missing or of the wrong kind
    │   ├── BadCount          count is not an integer from 1 to the limit
    │   ├── UnknownGift       no gift with that id in the catalogue
    │   ├── UnknownPackage    no recharge package with that id
    │   ├── UnknownOrder      no such order (or not the caller's)
    │   ├── UnknownWithdrawal no such withdrawal (or not the caller's)
    │   ├── NotFound          no such endpoint here (demo-only ones outside demo mode)
    │   ├── BadHost           a Host header this server does not answer for
    │   └── BodyTooLarge      a request body over its route's cap (413)
    ├── Refused               well-formed, but the rules say no
    │   ├── NotAllowed        the caller's role cannot do this (watch-only)
    │   ├── GiftsDisabled     the room's creator does not accept gifts
    │   │   └── GiftingOff    ...because the creator has switched gifting off
    │   ├── NotEligible       the creator may not switch gifting on (the reasons)
    │   ├── Suspended         the operator has suspended this user
    │   ├── PayoutProfileUnverified  no payout profile the provider has verified
    │   ├── BelowMinimum      a withdrawal under the minimum
    │   ├── InsufficientDiamonds  a withdrawal over the diamonds held
    │   ├── DailyLimitExceeded    a withdrawal past the day's limit
    │   ├── InsufficientCoins the sender holds fewer coins than the gift costs
    │   ├── RateLimited       too many requests; temporary
    │   └── TooManyOrders     too many unpaid recharge orders
    ├── AuthError             missing, malformed, forged or expired credentials
    └── Unavailable           Redis could not be reached; temporary, outcome unknown
"""

from __future__ import annotations

from typing import ClassVar


class GiftError(Exception):
    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    # True when the same request may succeed later without being changed.
    temporary: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> dict[str, object]:
        """Fields a client acts on besides the code (an HTTP problem adds them)."""
        return {}


class BadRequest(GiftError):
    code = "bad_request"


class BadFrame(BadRequest):
    code = "bad_frame"


class UnknownType(BadRequest):
    code = "unknown_type"


class BadField(BadRequest):
    code = "bad_field"


class BadCount(BadRequest):
    code = "bad_count"


class UnknownGift(BadRequest):
    code = "unknown_gift"


class UnknownPackage(BadRequest):
    code = "unknown_package"


class UnknownOrder(BadRequest):
    code = "unknown_order"
    http_status = 404


class UnknownWithdrawal(BadRequest):
    code = "unknown_withdrawal"
    http_status = 404


class UnknownStream(BadRequest):
    code = "unknown_stream"
    http_status = 404


class NotFound(BadRequest):
    code = "not_found"
    http_status = 404


class BadHost(BadRequest):
    code = "bad_host"


class BodyTooLarge(BadRequest):
    code = "body_too_large"
    http_status = 413


class Refused(GiftError):
    code = "refused"
    http_status = 409


class NotAllowed(Refused):
    code = "not_allowed"
    http_status = 403


class GiftsDisabled(Refused):
    code = "gifts_disabled"


class GiftingOff(GiftsDisabled):
    code = "gifting_off"


class RoomOffline(GiftsDisabled):
    """The room's creator is not live: gifts wait for the next stream."""

    code = "room_offline"


class StreamEnded(Refused):
    """A heartbeat for a stream that is over (ended, or ended by the server
    when it went unseen): go live again for a new one."""

    code = "stream_ended"


class NotEligible(Refused):
    """Switching gifting on was refused; ``reasons`` are the eligibility codes."""

    code = "not_eligible"

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []

    @property
    def details(self) -> dict[str, object]:
        return {"reasons": self.reasons}


class Suspended(Refused):
    code = "suspended"
    http_status = 403


class PayoutProfileUnverified(Refused):
    code = "payout_profile_unverified"


class BelowMinimum(Refused):
    code = "below_minimum"
    http_status = 400


class InsufficientDiamonds(Refused):
    code = "insufficient_diamonds"
    http_status = 402


class DailyLimitExceeded(Refused):
    # Not temporary for the same request: it may go through tomorrow, or
    # once a pending withdrawal of today fails.
    code = "daily_limit_exceeded"
    http_status = 429


class ConfirmRequired(Refused):
    """A send worth more than the confirmation threshold came without
    ``"confirm": true``: the page asks the user, then sends it again with it."""

    code = "confirm_required"

    def __init__(self, message: str, coins: int = 0, threshold: int = 0) -> None:
        super().__init__(message)
        self.coins = coins
        self.threshold = threshold

    @property
    def details(self) -> dict[str, object]:
        return {"coins": self.coins, "threshold": self.threshold}


class SendLimitExceeded(Refused):
    """A single send worth more than any send may be (``max_send_coins``)."""

    code = "send_limit_exceeded"

    def __init__(self, message: str, limit: int = 0) -> None:
        super().__init__(message)
        self.limit = limit

    @property
    def details(self) -> dict[str, object]:
        return {"limit": self.limit}


class AccountFlagged(Refused):
    """A chargeback flagged the account: no new orders until an operator clears it."""

    code = "account_flagged"
    http_status = 403


class OrderNotPaid(Refused):
    """A refund or chargeback of an order whose coins were never credited."""

    code = "order_not_paid"


class AgeRestricted(Refused):
    """The user counts as a minor, and the platform's policy does not let
    minors do this (buy coins, send gifts)."""

    code = "age_restricted"
    http_status = 403


class BudgetExceeded(Refused):
    """The gift would take the sender past a spending limit they set themselves;
    ``remaining`` is what the tightest of their limits still allows."""

    code = "budget_exceeded"

    def __init__(self, message: str, remaining: int = 0) -> None:
        super().__init__(message)
        self.remaining = remaining

    @property
    def details(self) -> dict[str, object]:
        return {"remaining": self.remaining}


class InsufficientCoins(Refused):
    code = "insufficient_coins"
    http_status = 402


class RateLimited(Refused):
    code = "rate_limited"
    http_status = 429
    temporary = True


class TooManyOrders(Refused):
    # Not temporary: the same request succeeds only once the user pays an
    # order, or one expires days later.
    code = "too_many_orders"
    http_status = 429


class AuthError(GiftError):
    code = "unauthorized"
    http_status = 401

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        # Which check failed: missing, malformed, bad_signature, expired,
        # not_yet_valid, wrong_issuer, wrong_audience, unknown_key,
        # bad_claims, revoked (docs/protocol.md).
        self.reason = reason

    @property
    def details(self) -> dict[str, object]:
        return {"reason": self.reason}


class Unavailable(GiftError):
    code = "unavailable"
    http_status = 503
    temporary = True


def all_error_classes() -> list[type[GiftError]]:
    """Every concrete error, for documentation checks."""
    found: list[type[GiftError]] = []
    pending: list[type[GiftError]] = [GiftError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class AlreadyMember(Refused):
    """A fan club's member asked to join it again: nothing was paid."""

    code = "already_member"


class FanLevelRequired(Refused):
    """The gift is for fans of at least ``required`` level in the creator's
    club; the sender is at ``level`` (0: not a member)."""

    code = "fan_level_required"
    http_status = 403

    def __init__(self, message: str, required: int = 0, level: int = 0) -> None:
        super().__init__(message)
        self.required = required
        self.level = level

    @property
    def details(self) -> dict[str, object]:
        return {"required": self.required, "level": self.level}
