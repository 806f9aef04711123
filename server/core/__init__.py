"""The pure core: the wire protocol, the catalogue, tokens, payment signatures,
combos, rate limits and Redis key names. Nothing here imports asyncio, redis
or starlette, and nothing here imports another giftstream package but the
leaves (``settings``, ``errors``).
"""
