"""Creators withdrawing diamonds to real money through a payout provider.

A creator first gives a payout profile (method, legal name, tax id,
account); the server keeps what it needs (the tax id, shown masked; the
account's last four characters: the full account goes to the provider
only) and the profile is ``verified`` once the provider says so. A
withdrawal then reserves its diamonds in one script call
(``withdraw.lua``: idempotent by request id, checked against the minimum,
the balance and the day's limit), is handed to the provider, and ends
``paid`` (the diamonds move to ``paid_out``) or ``failed`` (they come back)
when the provider's signed callback arrives (``payout.lua``).

The provider is an interface: ``SandboxPayouts`` (demo mode) verifies
profiles at once and pays each withdrawal a few seconds later, through the
same signed callback a real provider would send.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from server.core import payments, payout_terms
from server.core.keys import WalletKeys
from server.errors import (
    BadField,
    BadRequest,
    BelowMinimum,
    DailyLimitExceeded,
    InsufficientDiamonds,
    PayoutProfileUnverified,
    UnknownWithdrawal,
)
from server.money.suspensions import Suspensions
from server.settings import Settings, parse_cash, parse_rates
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
WITHDRAWAL_ID = re.compile(r"^[a-f0-9]{32}\Z")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
PAYOUT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
TAX_ID = re.compile(r"^[A-Za-z0-9-]{4,32}\Z")
ACCOUNT = re.compile(r"^[A-Za-z0-9@._+-]{4,64}\Z")
LISTED = 100  # the newest withdrawals a list shows
OUTCOMES = ("paid", "failed")


def masked(text: str) -> str:
    return "*" * max(0, len(text) - 4) + text[-4:]


# A withdrawal not handed over to the provider this long after it was asked
# for was left by a process that died: the sweep hands it over.
UNSENT_MIN_AGE_MS = 30_000


class PayoutProvider(Protocol):
    async def verify_payee(self, creator: str, method: str, account: str) -> str | None:
        """The provider's reference for this payee once verified; None while not."""
        ...

    async def submit(self, creator: str, withdrawal_id: str, now_ms: int) -> None:
        """Pay the withdrawal, once per withdrawal id however often it is handed
        over; the provider answers later, at /api/payouts/webhook."""
        ...


# How long a sandbox payout taken to be paid is held from other takers.
LEASE_MS = 10_000


class SandboxPayouts:
    """Verifies at once; pays ``delay`` after a withdrawal, by the signed callback.

    Due payouts wait in a sorted set (``payouts:due``), not in memory: a
    withdrawal asked for just before a restart is still paid after it.
    """

    def __init__(self, redis: Redis, key_prefix: str, delay_seconds: float) -> None:
        self._redis = redis
        self._due = f"{key_prefix}:payouts:due"
        self._delay_ms = int(delay_seconds * 1000)

    async def verify_payee(self, creator: str, method: str, account: str) -> str | None:
        return f"sandbox_{secrets.token_hex(8)}"

    async def submit(self, creator: str, withdrawal_id: str, now_ms: int) -> None:
        member = f"{creator}|{withdrawal_id}"
        # NX: handed over again, it keeps its first due time.
        await guarded(self._redis.zadd(self._due, {member: now_ms + self._delay_ms}, nx=True))

    async def take_due(self, now_ms: int) -> list[tuple[str, str]]:
        """The withdrawals due by now, each leased to this caller for
        ``LEASE_MS``: paid, the caller marks it ``done``; a caller that dies
        first leaves it to come due again when the lease ends. Two callers may
        both pay one (a lease read as it was taken): the payout is applied
        once whatever (payout.lua), so that costs nothing."""
        taken = []
        due: list[Any] = await guarded(self._redis.zrangebyscore(self._due, 0, now_ms, 0, 100))
        for member in (as_text(found) for found in due):
            # GT: only moves it later; 0 when another caller leased it after this read.
            if await guarded(
                self._redis.zadd(self._due, {member: now_ms + LEASE_MS}, gt=True, ch=True)
            ):
                creator, _, withdrawal_id = member.partition("|")
                taken.append((creator, withdrawal_id))
        return taken

    async def done(self, creator: str, withdrawal_id: str) -> None:
        """The withdrawal is paid (or will never be): off the due set."""
        await guarded(self._redis.zrem(self._due, f"{creator}|{withdrawal_id}"))


@dataclass(frozen=True, slots=True)
class PayoutCallback:
    withdrawal_id: str
    creator: str
    outcome: str  # paid or failed
    payout_id: str


def callback_body(callback: PayoutCallback) -> bytes:
    """The JSON body a payout provider (or the sandbox) sends."""
    document = {
        "type": f"payout.{callback.outcome}",
        "withdrawal_id": callback.withdrawal_id,
        "creator": callback.creator,
        "payout_id": callback.payout_id,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def parse_callback(body: bytes) -> PayoutCallback:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest("callback body is not JSON") from exc
    if not isinstance(document, dict):
        raise BadRequest("callback body must be a JSON object")
    kind = document.get("type")
    if kind not in ("payout.paid", "payout.failed"):
        raise BadField("type must be 'payout.paid' or 'payout.failed'")

    def field(name: str, pattern: re.Pattern[str]) -> str:
        value = document.get(name)
        if not isinstance(value, str) or not pattern.match(value):
            raise BadField(f"{name!r} is missing or malformed")
        return value

    return PayoutCallback(
        withdrawal_id=field("withdrawal_id", WITHDRAWAL_ID),
        creator=field("creator", USER_ID),
        outcome=str(kind).removeprefix("payout."),
        payout_id=field("payout_id", PAYOUT_ID),
    )


def _text(document: dict[str, Any], name: str, pattern: re.Pattern[str] | None) -> str:
    value = document.get(name)
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise BadField(f"{name} is missing or malformed")
    return value


class Withdrawals:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        settings: Settings,
        provider: PayoutProvider | None,
        suspensions: Suspensions | None = None,
        notify: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self._suspensions = suspensions
        # Tells the creator's open pages of a withdrawal's new status (a
        # ``withdrawal`` message); news only: the record is what counts.
        self._notify = notify
        self._redis = redis
        self._scripts = scripts
        self._settings = settings
        self.provider = provider
        # Checked when the settings were (Settings.validate): these parse.
        self._rates = parse_rates(settings.payout_rates)
        self._minimum_cash = parse_cash(settings.payout_minimum_cash)
        self._unsent = f"{settings.key_prefix}:withdrawals:unsent"

    def _keys(self, creator: str) -> WalletKeys:
        return WalletKeys(self._settings.key_prefix, creator)

    # ------------------------------------------------------------ the profile

    async def save_profile(self, creator: str, body: dict[str, Any]) -> dict[str, Any]:
        method = body.get("method")
        if method not in payout_terms.METHODS:
            raise BadField(f"method must be one of {', '.join(payout_terms.METHODS)}")
        legal_name = _text(body, "legal_name", None).strip()
        if not 1 <= len(legal_name) <= 100 or not legal_name.isprintable():
            raise BadField("legal_name must be 1 to 100 printable characters")
        tax_id = _text(body, "tax_id", TAX_ID)
        account = _text(body, "account", ACCOUNT)
        payee = (
            None
            if self.provider is None
            else await self.provider.verify_payee(creator, str(method), account)
        )
        profile: dict[Any, Any] = {
            "method": str(method),
            "legal_name": legal_name,
            "tax_id": tax_id,
            "account_last4": account[-4:],
            "payee": payee or "",
            "verified": int(payee is not None),
        }
        await guarded(self._redis.hset(self._keys(creator).payout_profile, mapping=profile))
        return await self.profile(creator)

    async def profile(self, creator: str) -> dict[str, Any]:
        raw = await guarded(self._redis.hgetall(self._keys(creator).payout_profile))
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        if not fields:
            return {"method": None, "verified": False}
        method = fields.get("method", "")
        return {
            "method": method,
            "legal_name": fields.get("legal_name", ""),
            "tax_id": masked(fields.get("tax_id", "")),
            "account": "****" + fields.get("account_last4", ""),
            "currency": payout_terms.CURRENCY_OF_METHOD.get(method),
            "verified": fields.get("verified") == "1",
        }

    # ------------------------------------------------------------ withdrawals

    async def request(
        self, creator: str, diamonds: object, request_id: object, now_ms: int
    ) -> dict[str, Any]:
        if not isinstance(diamonds, int) or isinstance(diamonds, bool) or diamonds < 1:
            raise BadField("diamonds must be a whole number, at least 1")
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            raise BadField("request_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        keys = self._keys(creator)
        if self._suspensions is not None:
            await self._suspensions.require_not_suspended(creator)
        profile = await self.profile(creator)
        if not profile["verified"]:
            raise PayoutProfileUnverified("the payout provider has not verified a payout profile")
        currency = str(profile["currency"])
        rate = self._rates.get(currency)
        if rate is None:
            raise PayoutProfileUnverified(f"no payout rate for {currency}")
        withdrawal_id = secrets.token_hex(16)
        day = now_ms // DAY_MS
        # Marked before the script, taken off once handed over: a process
        # that dies between the two leaves the mark for the hand-over sweep.
        unsent = f"{creator}|{withdrawal_id}"
        await guarded(self._redis.zadd(self._unsent, {unsent: now_ms}))
        status, found_id, held = await guarded(
            self._scripts.withdraw(
                keys=[
                    keys.wallet, keys.ledger, keys.withdrawal_request(request_id),
                    keys.withdrawal(withdrawal_id), keys.withdrawals, keys.withdrawn_on(day),
                ],
                args=[
                    request_id, withdrawal_id, diamonds,
                    payout_terms.minimum_diamonds(self._minimum_cash, rate),
                    self._settings.payout_daily_limit_diamonds,
                    str(payout_terms.cash_for(diamonds, rate)), currency, profile["method"],
                    now_ms, self._settings.idempotency_ttl_seconds, day,
                ],
            )
        )  # fmt: skip
        status = as_text(status)
        if status != "ok":  # nothing new to hand over
            await guarded(self._redis.zrem(self._unsent, unsent))
        if status == "below_minimum":
            least = payout_terms.minimum_diamonds(self._minimum_cash, rate)
            raise BelowMinimum(f"a withdrawal is at least {least:,} diamonds")
        if status == "insufficient_diamonds":
            raise InsufficientDiamonds(f"{diamonds:,} diamonds asked, {int(held):,} held")
        if status == "daily_limit_exceeded":
            limit = self._settings.payout_daily_limit_diamonds
            raise DailyLimitExceeded(f"at most {limit:,} diamonds a day")
        if status not in ("ok", "duplicate"):
            raise RuntimeError(f"withdraw.lua answered {status!r}")
        found = as_text(found_id)
        withdrawal = await self.get(creator, found)
        # A retry of a pending one hands it over again: the process may have
        # died between the script and the hand-over, and a provider takes a
        # withdrawal id once.
        if withdrawal["status"] == "pending" and self.provider is not None:
            await self.provider.submit(creator, found, now_ms)
            await guarded(self._redis.zrem(self._unsent, unsent))
        if status == "ok":
            await self._tell(creator, withdrawal)
        return withdrawal | {"duplicate": status == "duplicate"}

    async def hand_over_unsent(self, now_ms: int, min_age_ms: int = UNSENT_MIN_AGE_MS) -> int:
        """Hand the provider the withdrawals whose hand-over a dead process
        left undone (marked over ``min_age_ms`` ago); how many. A mark whose
        script never ran, or whose withdrawal is no longer pending, just goes."""
        if self.provider is None:
            return 0
        handed = 0
        marks = await guarded(
            self._redis.zrangebyscore(self._unsent, "-inf", now_ms - min_age_ms, 0, 100)
        )
        for mark in (as_text(raw) for raw in marks):
            creator, _, withdrawal_id = mark.partition("|")
            try:
                withdrawal = await self.get(creator, withdrawal_id)
            except UnknownWithdrawal:
                withdrawal = None
            if withdrawal is not None and withdrawal["status"] == "pending":
                await self.provider.submit(creator, withdrawal_id, now_ms)
                handed += 1
                log.info("a withdrawal's lost hand-over was made", extra={"creator": creator})
            await guarded(self._redis.zrem(self._unsent, mark))
        return handed

    async def _tell(self, creator: str, withdrawal: dict[str, Any]) -> None:
        if self._notify is None:
            return
        try:
            await self._notify(creator, withdrawal)
        except Exception:  # the page reads the list anyway; the money has moved
            log.warning("a withdrawal's news did not reach the creator's pages")

    async def get(self, creator: str, withdrawal_id: str) -> dict[str, Any]:
        if not WITHDRAWAL_ID.match(withdrawal_id):
            raise UnknownWithdrawal(f"no withdrawal {withdrawal_id!r}")
        raw = await guarded(self._redis.hgetall(self._keys(creator).withdrawal(withdrawal_id)))
        if not raw:
            raise UnknownWithdrawal(f"no withdrawal {withdrawal_id!r} for {creator}")
        return _public(raw)

    async def list(self, creator: str) -> list[dict[str, Any]]:
        keys = self._keys(creator)
        ids = await guarded(self._redis.zrevrange(keys.withdrawals, 0, LISTED - 1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for withdrawal_id in ids:
                pipe.hgetall(keys.withdrawal(as_text(withdrawal_id)))
            records = await guarded(pipe.execute())
        return [_public(raw) for raw in records if raw]

    async def resolve(self, callback: PayoutCallback, now_ms: int) -> str:
        """Apply the provider's word: the script's status (ok, duplicate, conflict)."""
        keys = self._keys(callback.creator)
        record = await self.get(callback.creator, callback.withdrawal_id)
        status, after = await guarded(
            self._scripts.payout(
                keys=[
                    keys.wallet, keys.ledger, keys.withdrawal(callback.withdrawal_id),
                    keys.withdrawn_on(int(record["day"])),
                ],
                args=[callback.outcome, callback.payout_id, now_ms],
            )
        )  # fmt: skip
        status = as_text(status)
        if status == "conflict":
            log.warning(
                "a payout callback contradicts the withdrawal's outcome: refused",
                extra={
                    "withdrawal": callback.withdrawal_id,
                    "creator": callback.creator,
                    "said": callback.outcome,
                    "was": as_text(after),
                },
            )
        elif status not in ("ok", "duplicate"):
            raise UnknownWithdrawal(f"no withdrawal {callback.withdrawal_id!r}")
        if status == "ok":
            await self._tell(
                callback.creator, await self.get(callback.creator, callback.withdrawal_id)
            )
        return status


def _public(raw: dict[Any, Any]) -> dict[str, Any]:
    fields = {as_text(k): as_text(v) for k, v in raw.items()}
    return {
        "withdrawal_id": fields["id"],
        "status": fields["status"],
        "diamonds": int(fields["diamonds"]),
        "amount": fields["amount"],
        "currency": fields["currency"],
        "method": fields["method"],
        "day": int(fields["day"]),
        "created": int(fields["created"]),
        "updated": int(fields["updated"]),
    }


def verify_callback(settings: Settings, body: bytes, signature: str | None, now: float) -> None:
    """Raise ``AuthError`` unless the payout webhook secret signs ``body`` freshly."""
    payments.verify(
        settings.payout_webhook_secret, body, signature, now, settings.webhook_tolerance_seconds
    )


def sign_callback(settings: Settings, body: bytes, now: float) -> str:
    return payments.sign(settings.payout_webhook_secret, body, now)
