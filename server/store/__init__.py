"""Redis itself: the client of a process (one node or a cluster), the Lua
scripts of ``lua/`` registered once and run by SHA, and the wrapper that
turns a failed call into the typed ``unavailable`` error.
"""
