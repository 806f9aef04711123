"""Freeing a closed connection's transport at once, not at the next collection.

asyncio's selector transport keeps a bound method of itself in
``_read_ready_cb`` (CPython 3.11): a reference cycle, so a closed transport,
its socket object and its buffers are freed only when the garbage collector
next walks the generation they sit in. In a process of thousands of sockets
that is rare by design (``gc_freezer.py``: once frozen, not before the
frozen objects have doubled, new sockets aside), and a flood of short
connections would pile up in the meantime. Both protocols break the cycle
when their connection is lost.
"""

from __future__ import annotations


def break_transport_cycle(transport: object) -> None:
    """Drop the transport's reference to its own bound method, if it has one."""
    if getattr(transport, "_read_ready_cb", None) is not None:
        setattr(transport, "_read_ready_cb", None)  # noqa: B010 (private to asyncio)
