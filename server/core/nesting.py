"""How deep a decoded document nests: the bound every parser of ours applies. Pure."""

from __future__ import annotations

from typing import Any


def depth(document: Any) -> int:
    """How deep lists and maps nest in a decoded document (a scalar is 0)."""
    if isinstance(document, dict):
        # Every client frame but a malformed one is a flat map: said at once
        # (the walk below was 2% of a gift storm's server time).
        for item in document.values():
            if isinstance(item, dict | list | tuple):
                break
        else:
            return 1
    deepest = 0
    # An explicit stack: a walk that recursed would fail where a parser did.
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list | tuple):
            deepest = max(deepest, level + 1)
            stack += [(item, level + 1) for item in value]
    return deepest
