"""Demo data for `giftstream serve --demo`: two viewers and two creators.

Seeding is idempotent: coins are granted once per user (keyed grants), so a
restart of the demo neither loses nor doubles them.

carol is live from the start: the demo has no broadcasting software to keep
her stream seen, so ``keep_live`` stands in for it, heartbeating her stream
while it is live. Ended from her creator page, it stays ended (until she
goes live again, or the demo restarts).
"""

from __future__ import annotations

import asyncio
import logging

from server.money.creators import ADULT, CreatorProfile
from server.money.settlement import now_ms
from server.money.streams import Streams
from server.services import Services

log = logging.getLogger(__name__)
LIVE_CREATOR = "carol"

DEMO_VIEWERS = {"alice": 5000, "bob": 500}
# carol is eligible, live and takes gifts; dave, an adult, has too few
# followers to switch gifting on (until 650 more follow him).
DEMO_CREATORS = (
    CreatorProfile(user="carol", gifts_enabled=True, followers=12_400, age=ADULT),
    CreatorProfile(user="dave", gifts_enabled=False, followers=350, age=ADULT),
)


async def seed(services: Services) -> None:
    # Fields not held yet only: a restart keeps the follows and switches since.
    for creator in DEMO_CREATORS:
        await services.creators.save(creator, only_new=True)
    await services.streams.go_live(LIVE_CREATOR, now_ms())
    task = asyncio.create_task(keep_live(services.streams), name="demo keep_live")
    services.tasks.append(task)
    for user, coins in DEMO_VIEWERS.items():
        await services.wallets.grant_coins(
            user, coins, reason=f"demo-welcome-{user}", now_ms=now_ms()
        )


async def keep_live(streams: Streams) -> None:
    """Heartbeat carol's stream while it is live, as her broadcasting software would."""
    while True:
        await asyncio.sleep(min(30.0, streams.idle_seconds / 4))
        try:
            await streams.keep_present([LIVE_CREATOR], now_ms())
        except Exception:  # Redis away for a moment: the next beat will do
            log.warning("the demo could not keep carol's stream seen; will retry")
