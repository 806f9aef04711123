"""``@value_class``: a frozen dataclass to the type checker, a cheap one at run time.

A frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``, about 1,300 instructions a field more than a plain
dataclass's assignment (``valgrind --tool=callgrind``). A gift's path makes
five such objects of 29 fields in all (its request, order, outcome, the
script's answer and the ack), and the earnings report worker one per
credit, in the process that acks gifts: about 37,000 instructions a gift
(``scripts/bench_value_class.py``, docs/benchmarks.md).

``value_class`` makes a dataclass with slots and a hash, not frozen: mypy,
told by ``dataclass_transform(frozen_default=True)``, still refuses any
assignment to a field, so the code checked by ``mypy --strict`` cannot
change one; what it gives up is only the run-time refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def value_class(cls: type[_T]) -> type[_T]:
    """The class as a dataclass with slots, equality and a hash, as a frozen
    one would have; its fields are read-only to the type checker."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
