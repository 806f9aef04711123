"""Demo data for `giftstream serve --demo`: two viewers and two creators.

Seeding is idempotent: coins are granted once per user (keyed grants), so a
restart of the demo neither loses nor doubles them.
"""

from __future__ import annotations

from server.money.creators import ADULT, CreatorProfile
from server.money.settlement import now_ms
from server.services import Services

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
    for user, coins in DEMO_VIEWERS.items():
        await services.wallets.grant_coins(
            user, coins, reason=f"demo-welcome-{user}", now_ms=now_ms()
        )
