"""Many entries, one script call per group: a busy room's events share a call.

In a storm a room gets many events (or gifts) at once, all for the same
shard. Each ``add`` goes into its group's open call; when the
``AutoPipeline`` starts the batch that call is in, the call is sealed with
every entry gathered so far, and the entries that come after open a new
one. One script run for many entries, each entry getting its own slice of
the reply.

With ``gather_seconds`` a group's new call waits that long before it joins
the pipeline's next batch (or less, once it is full), so that entries that
come a little apart share it too: a room's gifts at a steady few thousand
a second otherwise go one or two a call, and a call's own part of the
script's cost (the room's seq, history entry and message, the creator's
wallet) is as large as a gift's.

A script used this way takes a head of keys and arguments for the group
(the room's sequence and channel, say), then the same number of keys and
of arguments for each entry, and replies with ``reply_width`` values per
entry, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from server.tuning.pipelining import AutoPipeline, ScriptLike

# A group's keys and arguments, before its entries'.
Head = Callable[[str], tuple[list[Any], list[Any]]]


class _GroupCall:
    """One group's entries waiting for their call to go out."""

    __slots__ = ("args", "keys", "outcomes", "released", "timer", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.keys: list[Any] = []
        self.args: list[Any] = []
        self.outcomes: list[asyncio.Future[list[Any]]] = []
        # Handed to the pipeline (after its gathering wait, if any).
        self.released = False
        self.timer: asyncio.TimerHandle | None = None

    def add(self, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future[list[Any]]:
        outcome: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.keys.extend(keys)
        self.args.extend(args)
        self.outcomes.append(outcome)
        return outcome

    def settle(self, reply: asyncio.Future[Any]) -> None:
        """Hand each entry its slice of the call's flat reply (or the call's error)."""
        error = reply.exception()
        flat: list[Any] = [] if error is not None else reply.result()
        if error is None and len(flat) != self.width * len(self.outcomes):
            error = RedisError(f"a grouped call answered {len(flat)} values")
        for i, outcome in enumerate(self.outcomes):
            if outcome.done():  # its caller gave up
                continue
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(flat[i * self.width : (i + 1) * self.width])


class ScriptGroups:
    def __init__(
        self,
        pipeline: AutoPipeline,
        script: ScriptLike,
        head: Head,
        reply_width: int,
        max_entries: int | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self._pipeline = pipeline
        self._script = script
        self._head = head
        self._width = reply_width
        # A cap keeps one call from holding Redis for long.
        self._max_entries = max_entries
        self._gather_seconds = gather_seconds
        # Per group, the call that has not gone out yet.
        self._open: dict[str, _GroupCall] = {}

    def add(
        self, group: str, keys: Sequence[Any], args: Sequence[Any]
    ) -> asyncio.Future[list[Any]]:
        """An entry in ``group``'s next call; the future gets its reply values."""
        call = self._open.get(group)
        if call is None:
            call = self._open[group] = _GroupCall(self._width)
            if self._gather_seconds > 0:
                loop = asyncio.get_running_loop()
                call.timer = loop.call_later(self._gather_seconds, self._release, group, call)
            else:
                self._release(group, call)
        outcome = call.add(keys, args)
        if self._max_entries is not None and len(call.outcomes) >= self._max_entries:
            del self._open[group]  # full: the next entry opens another call
            self._release(group, call)  # and this one waits no longer
        return outcome

    def _release(self, group: str, call: _GroupCall) -> None:
        """Hand ``call`` to the pipeline; entries may still join it until its batch starts."""
        if call.released:
            return
        call.released = True
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        reply = self._pipeline.defer(self._script, lambda: self._seal(group, call))
        reply.add_done_callback(call.settle)

    def _seal(self, group: str, call: _GroupCall) -> tuple[list[Any], list[Any]]:
        """The call's keys and args; entries arriving from now on start a new call."""
        if self._open.get(group) is call:
            del self._open[group]
        head_keys, head_args = self._head(group)
        return [*head_keys, *call.keys], [*head_args, *call.args]
