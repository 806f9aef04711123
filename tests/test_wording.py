"""One coin is "1 coin": counts read as words, in messages people see."""

from __future__ import annotations

from server.core.wording import plural
from tests.client import Api, RoomClient
from tests.conftest import ServerProcess


def test_one_is_singular_and_every_other_count_is_plural() -> None:
    assert plural(1, "coin") == "1 coin"
    assert [plural(n, "coin") for n in (0, 2, 1500)] == ["0 coins", "2 coins", "1,500 coins"]
    assert plural(1, "diamond") == "1 diamond"
    assert plural(3, "child", "children") == "3 children"


async def test_too_few_coins_for_a_one_coin_gift_says_1_coin(
    server: ServerProcess, api: Api
) -> None:
    # A viewer with an empty wallet taps the one-coin rose.
    client = await RoomClient.open(server.ws, "carol", await api.token("penniless"))
    try:
        refusal = await client.gift("w-1", "rose")
    finally:
        await client.close()
    assert refusal["code"] == "insufficient_coins"
    assert refusal["message"] == "1 coin needed, 0 held"
