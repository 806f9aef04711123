"""Frames in and out, per docs/protocol.md.

With compression off every viewer of a room gets byte-identical room
frames, so a process decodes each distinct room frame once and hands its
digest (event count, seqs, gift senders) to every socket that received the
same bytes. That keeps the load generator's CPU per viewer close to the
cost of reading the socket, so it can watch many more sockets per core.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.client.frames import Message, decode

ROOM_EVENT_TYPES = frozenset({"gift", "combo_end"})
# Room frames kept decoded: a few seconds of a busy room's frames.
CACHE_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class RoomFrame:
    """A room frame (one event or an ``events`` frame), reduced to what is measured."""

    seqs: tuple[int, ...]
    # (sender, seq) of each gift event, for senders to find their own.
    gifts: tuple[tuple[str, int], ...]
    # Non-empty and each seq one more than the one before: the fast path.
    contiguous: bool
    # The combos its gift events count in, and those its combo_end events end.
    combos: tuple[str, ...] = ()
    combos_ended: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.seqs)


def room_frame(message: Message) -> RoomFrame | None:
    """The digest of a room frame; None for a message meant for one client."""
    kind = message.get("type")
    if kind == "events":
        events = [e for e in message.get("events", ()) if e.get("type") in ROOM_EVENT_TYPES]
    elif kind in ROOM_EVENT_TYPES:
        events = [message]
    else:
        return None
    seqs = tuple(int(e["seq"]) for e in events)
    gifts = tuple((str(e.get("sender")), int(e["seq"])) for e in events if e["type"] == "gift")
    contiguous = bool(seqs) and seqs[-1] - seqs[0] == len(seqs) - 1 and list(seqs) == sorted(seqs)
    combos = tuple(
        str(e["combo"]["id"])
        for e in events
        if e["type"] == "gift" and isinstance(e.get("combo"), dict)
    )
    ended = tuple(str(e.get("combo")) for e in events if e["type"] == "combo_end")
    return RoomFrame(seqs, gifts, contiguous, combos, ended)


class FrameCache:
    """Room frames decoded once per process, keyed by their bytes."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._digests: dict[bytes | str, RoomFrame] = {}
        self.hits = 0
        # Every combo seen to start and to end, for the drain to wait for.
        self.combos_started: set[str] = set()
        self.combos_ended: set[str] = set()

    @property
    def combos_open(self) -> int:
        """Combos seen counting whose end has not been seen yet."""
        return len(self.combos_started - self.combos_ended)

    def read(self, frame: bytes | str) -> RoomFrame | Message:
        """The room frame's digest, or the decoded message if it is a personal one."""
        digest = self._digests.get(frame)
        if digest is not None:
            self.hits += 1
            return digest
        message = decode(frame)
        if message is None:
            raise ValueError("a frame that is not a map")
        digest = room_frame(message)
        if digest is None:
            return message
        self.combos_started.update(digest.combos)
        self.combos_ended.update(digest.combos_ended)
        if len(self._digests) >= self._entries:
            # Oldest first: dicts keep insertion order.
            del self._digests[next(iter(self._digests))]
        self._digests[frame] = digest
        return digest
