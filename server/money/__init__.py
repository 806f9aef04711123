"""Every movement of coins and diamonds: wallets, the gift path, settlement,
recharge orders, creators and their earnings, and ``reconcile``, which checks
the books. Each movement is one Lua script in ``server/store/lua/``.
"""
