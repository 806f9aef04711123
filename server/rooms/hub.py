"""The rooms this process serves: who is in them, and fan-out to them.

Events reach a room from Redis pub/sub (``relay.py``), already in sequence
order. A quiet room sends each event at once; a busy one gathers what arrives
within one tick into a single ``events`` frame, because the cost of fan-out
is one write per viewer per frame, not per event. Each frame is encoded once
per codec, and compressed once per window for the viewers that agreed to
permessage-deflate (``FrameKind``), and the same bytes go to every such
viewer's ``FrameWriter``, which never waits: one slow viewer cannot hold
up the room.

A flush writes at most ``FANOUT_SLICE`` viewers, or ``SLICE_SECONDS`` of
writes, per turn of the event loop, so that a big room's fan-out does not
hold up Redis's replies and the acks between them. Events that arrive
meanwhile wait for the flush to end; when several frames go out at once,
each viewer is written all of them in a row, in one write.

In a room that is not busy with events, a big gift does not wait for the
tick (``EXPRESS_TIERS``): it goes out at once with whatever is pending, or
right after a flush under way. When one comes while a flush is under way,
busy room or not, it joins that flush (``_join_flush``): the viewers not yet
written get it with the flush's frames, and those already written get it at
the flush's end, rather than after the pause and a whole flush of its own.
In a busy room a big gift that comes in the pause after a flush waits at
most half the pause (``_hasten``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from server.core.auth import Identity, Role
from server.core.protocol import Codec, encode
from server.rooms.ws_protocol import FrameWriter, deflated_frame_bytes, frame_bytes

# What form a viewer is written a room's frames in: its codec, and the window
# of the permessage-deflate it agreed to (0: uncompressed).
FrameKind = tuple[Codec, int]


@dataclass(eq=False, slots=True)
class Member:
    """One open WebSocket in one room."""

    writer: FrameWriter
    codec: Codec
    identity: Identity

    @property
    def kind(self) -> FrameKind:
        return (self.codec, self.writer.deflate_bits)

    def send_message(self, wire: dict[str, Any]) -> None:
        """A message for this viewer only (ack, error, pong), uncompressed."""
        self.writer.send(frame_bytes(encode(wire, self.codec)))

    def welcome(self, wire: dict[str, Any]) -> None:
        """The first message, ahead of any room event that arrived while it was built."""
        self.writer.release_with(frame_bytes(encode(wire, self.codec)))


# Caps a coalesced frame (about 60 KB of typical events), so that one frame
# stays far below a viewer's outgoing bound and its own reader's patience.
MAX_EVENTS_PER_FRAME = 200


# Events of these tiers skip the tick and the pause after a big room's write
# when the room is not busy with events: a gift that takes the screen is the
# moment the room watches for. In a quiet room that costs nothing,
# since the pause would have gathered no other event; in a room busy with
# events (more than EXPRESS_MAX_PENDING waiting), cutting the pause would
# mean a frame to every viewer more often, and there the big gift keeps
# the room's rhythm but for half the pause (``LocalRoom._hasten``): cutting
# every pause for it, at 250 events a second to 10,000 viewers the process
# went from 73% to 99% busy and a big gift's p99 reach from 0.6 to 0.8 s.
EXPRESS_TIERS = frozenset({"large", "fullscreen"})
EXPRESS_MAX_PENDING = 16


def batch_wire(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One event as itself; several as an ``events`` frame (protocol.md)."""
    return events[0] if len(events) == 1 else {"type": "events", "events": events}


@dataclass(slots=True)
class FanoutStats:
    """Totals over every room of the process, for /metrics."""

    events: int = 0
    frames: int = 0


def _seq(event: dict[str, Any]) -> int:
    seq = event.get("seq", 0)
    return seq if isinstance(seq, int) else 0


def fresh_after(events: list[dict[str, Any]], floor: int) -> list[dict[str, Any]]:
    """The events a viewer who has seen everything up to ``floor`` still needs.

    Events with seq 0 are outside the room's sequence (test alerts) and are
    always new.
    """
    return [event for event in events if _seq(event) == 0 or _seq(event) > floor]


def _chunks(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [
        events[i : i + MAX_EVENTS_PER_FRAME] for i in range(0, len(events), MAX_EVENTS_PER_FRAME)
    ]


# Viewers written to per turn of the event loop when a room sends a frame. A
# 10,000-viewer room is written in 40 turns, and between them the loop reads
# Redis's replies and sends acks, which would otherwise wait for the whole
# room (a 500-viewer room's frame alone is 10 to 25 ms of writes here).
FANOUT_SLICE = 250
# ...and a turn's writes stop once they have taken this long, whatever the
# count: in a gift storm a frame carries a hundred events or more, and 250
# viewers of it took 4.5 to 7.5 ms, which every gift frame read and every
# ack written in the meantime waited for (docs/benchmarks.md).
SLICE_SECONDS = 0.002
# Viewers written between two looks at the clock.
SLICE_STEP = 25

# One frame's bytes per kind, for each frame of a flush, in order.
_Frames = list[dict[FrameKind, bytes]]


def room_frames(wire: dict[str, Any], kinds: Iterable[FrameKind]) -> dict[FrameKind, bytes]:
    """A room frame in each form asked for: encoded once a codec, compressed
    once a window."""
    encoded: dict[Codec, bytes | str] = {}
    frames: dict[FrameKind, bytes] = {}
    for kind in kinds:
        codec, window = kind
        payload = encoded.get(codec)
        if payload is None:
            payload = encoded[codec] = encode(wire, codec)
        frames[kind] = deflated_frame_bytes(payload, window) if window else frame_bytes(payload)
    return frames


@dataclass(slots=True)
class _Job:
    """Part of a flush: these writers, of one kind, are each written ``data``,
    the flush's frames in a row, in one write.

    One write a viewer, not one a frame: in a gift storm a flush holds two
    frames or more (200 events each), and the kernel's cost is mostly per
    write (docs/benchmarks.md).
    """

    kind: FrameKind
    writers: tuple[FrameWriter, ...]
    data: bytes


# A viewer whose welcome is still being built keeps the room's events for it;
# past this many (a storm and a Redis that hangs), it is dropped as slow.
MAX_EVENTS_WHILE_JOINING = 5000


@dataclass(eq=False)
class LocalRoom:
    """One room's sockets in this process, in three stages.

    ``joining``: in the room, its welcome not yet sent; events are kept for
    it. ``catching_up``: welcomed, up to a seq (its ``floor``) that events
    still in flight from Redis may repeat; it is sent only what is newer.
    ``by_kind``: everyone else, who all get the same bytes, kind by kind.
    """

    room_id: str
    tick_seconds: float
    loop: asyncio.AbstractEventLoop
    stats: FanoutStats = field(default_factory=FanoutStats)
    # In join order (a dict, not a set): the write loop then visits sockets
    # roughly in the order they were accepted, and so their objects, the
    # kernel's included, in the order they were allocated. Against a set's
    # order that saved about 2 us of 20 a delivery to 10,000 viewers, in five
    # runs of each in turn (docs/benchmarks.md).
    by_kind: dict[FrameKind, dict[Member, None]] = field(default_factory=dict)
    joining: dict[Member, list[dict[str, Any]]] = field(default_factory=dict)
    catching_up: dict[Member, int] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: list[dict[str, Any]] = field(default_factory=list)
    # When the room may send again: a tick after the last flush ended, or
    # half as long as that flush took if that is longer (a big room), so that
    # fan-out leaves at least a third of the process's time to gifts and acks
    # and its frames fill up.
    _next_due: float = float("-inf")
    _timer: asyncio.TimerHandle | None = None
    # ``by_kind``'s writers as tuples, for the write loop; None when stale.
    _fanout: dict[FrameKind, tuple[FrameWriter, ...]] | None = None
    # A flush under way, writing a slice of the room per turn of the loop:
    # its next slice, what it writes and where it is, how long its slices
    # took so far, how many viewers it writes, and how many it has taken on
    # to write a second time for the big gifts that joined it.
    _next_slice: asyncio.Handle | None = None
    _jobs: list[_Job] = field(default_factory=list)
    _job: int = 0
    _offset: int = 0
    _flush_seconds: float = 0.0
    _flush_viewers: int = 0
    _rewrites: int = 0
    # When the last flush ended: the pause after it runs from here to _next_due.
    _paused_at: float = float("-inf")
    # A big gift is pending: the next flush starts as soon as it may.
    _express: bool = False
    # When the room's last event came (the loop's clock): rooms with no
    # event lately have no ranking to refresh (server/money/leaderboard.py).
    last_event_at: float = float("-inf")

    def __len__(self) -> int:
        settled = sum(len(members) for members in self.by_kind.values())
        return settled + len(self.joining) + len(self.catching_up)

    def members(self) -> list[Member]:
        everyone = [m for members in self.by_kind.values() for m in members]
        return everyone + list(self.joining) + list(self.catching_up)

    def add(self, member: Member) -> None:
        self.joining[member] = []

    def discard(self, member: Member) -> None:
        self.by_kind.get(member.kind, {}).pop(member, None)
        self._fanout = None
        self.joining.pop(member, None)
        self.catching_up.pop(member, None)

    def admit(
        self,
        member: Member,
        welcome: dict[str, Any],
        replay: list[dict[str, Any]],
        floor: int,
    ) -> None:
        """Welcome a joining member, then what it missed, then what came meanwhile.

        ``floor`` is the room's last seq when the welcome was read; ``replay``
        the events a resuming viewer missed up to it. Events kept while the
        welcome was built that are not newer than the floor were replayed or
        predate the viewer, and are left out: no event is sent twice.
        """
        kept = self.joining.pop(member, None)
        if kept is None:  # left meanwhile
            return
        member.welcome(welcome)
        events = replay + fresh_after(kept, floor)
        for chunk in _chunks(events):
            member.send_message(batch_wire(chunk))
        self.catching_up[member] = max([floor, *(_seq(e) for e in events)])

    def deliver(self, event: dict[str, Any]) -> None:
        """Send now if the room was quiet for a tick, else at the end of this tick;
        a big gift now, or as soon as a flush under way ends."""
        self._pending.append(event)
        self.stats.events += 1
        self.last_event_at = self.loop.time()
        if event.get("tier") in EXPRESS_TIERS:
            self._express = True
            if self._next_slice is not None and self.tick_seconds > 0 and self._may_join():
                self._join_flush()
                return
        if self._next_slice is not None:
            return  # the flush under way takes it when it ends
        if self._timer is not None:
            if self._goes_express():
                self._timer.cancel()
                self.flush()
            elif self._express:
                self._hasten()
            return
        if self._goes_express() or self.loop.time() >= self._next_due:
            self.flush()
        else:
            self._timer = self.loop.call_at(self._next_due, self.flush)

    def flush(self) -> None:
        """Send what is pending: every frame to the first slice of viewers now,
        to the next slice on the next turn of the loop, and so on."""
        self._timer = None
        self._express = False
        events, self._pending = self._pending, []
        if not events:
            return
        started = self.loop.time()
        # Without coalescing, one frame per event, as they came.
        chunks = [[e] for e in events] if self.tick_seconds <= 0 else _chunks(events)
        if self.catching_up:
            self._settle_caught_up(events)
        # Whom this flush writes to is fixed now: a viewer who joins or is
        # caught up meanwhile gets these events as a joining or catching-up one.
        writers = self._writers()
        frames: _Frames = [room_frames(batch_wire(chunk), writers) for chunk in chunks]
        if self.joining:
            self._keep_for_joining(events)
        if self.catching_up:
            self._send_to_catching_up(chunks, frames)
        self._jobs = [
            _Job(kind, group, b"".join(per_kind[kind] for per_kind in frames))
            for kind, group in writers.items()
        ]
        self._job = self._offset = 0
        self._flush_viewers = sum(len(job.writers) for job in self._jobs)
        self._rewrites = 0
        for job in self._jobs:
            self.stats.frames += len(job.writers) * len(frames)
        self._flush_seconds = self.loop.time() - started
        self._write_slices()

    def _join_flush(self) -> None:
        """A big gift, with all that is pending before it, joins the flush under way.

        The viewers the flush has not reached yet are written the new frames
        right after its own; those it has are written them once it has been
        through everyone, as the flush's last part. Each viewer still gets
        every frame once and in order, whether it is the flush's first big
        gift or a later one (``_may_join`` says how many may).
        """
        self._rewrites += self._written()
        self._express = False
        events, self._pending = self._pending, []
        chunks = _chunks(events)
        kinds = {job.kind for job in self._jobs}
        frames: _Frames = [room_frames(batch_wire(chunk), kinds) for chunk in chunks]
        # Joining and catching-up viewers are not in the flush: they get
        # these events as they would have got them from the next one.
        if self.joining:
            self._keep_for_joining(events)
        if self.catching_up:
            self._send_to_catching_up(chunks, frames)
        ahead: list[_Job] = []
        behind: list[_Job] = []
        new = {kind: b"".join(per_kind[kind] for per_kind in frames) for kind in kinds}
        for index, job in enumerate(self._jobs[self._job :], start=self._job):
            split = self._offset if index == self._job else 0
            if split > 0:
                behind.append(_Job(job.kind, job.writers[:split], new[job.kind]))
            ahead.append(_Job(job.kind, job.writers[split:], job.data + new[job.kind]))
        behind += [_Job(job.kind, job.writers, new[job.kind]) for job in self._jobs[: self._job]]
        self._jobs = ahead + [job for job in behind if job.writers]
        self._job = self._offset = 0
        for job in self._jobs:
            self.stats.frames += len(job.writers) * len(frames)

    def _write_slices(self) -> None:
        """Write the flush's jobs from where it is, ``FANOUT_SLICE`` viewers or
        ``SLICE_SECONDS``, whichever comes first; the rest on the next turn of
        the loop."""
        self._next_slice = None
        started = self.loop.time()
        deadline = started + SLICE_SECONDS
        budget = FANOUT_SLICE
        jobs, job, offset = self._jobs, self._job, self._offset
        while job < len(jobs) and budget > 0:
            writers, data = jobs[job].writers, jobs[job].data
            end = min(len(writers), offset + min(budget, SLICE_STEP))
            for writer in writers[offset:end]:  # the hot loop: once per viewer per flush
                writer.send(data)
            budget -= end - offset
            job, offset = (job, end) if end < len(writers) else (job + 1, 0)
            if self.loop.time() >= deadline:
                break
        self._flush_seconds += self.loop.time() - started
        if job < len(jobs):
            self._job, self._offset = job, offset
            self._next_slice = self.loop.call_soon(self._write_slices)
            return
        self._jobs = []
        self._flushed()

    def _written(self) -> int:
        """Viewers the flush under way has written everything it holds so far."""
        done = sum(len(job.writers) for job in self._jobs[: self._job])
        return done + self._offset

    def _may_join(self) -> bool:
        """Whether a big gift may join the flush under way.

        Joining costs a second write to every viewer the flush has passed. A
        flush takes that on up to once over the room: in a busy room big
        gifts may come several to a flush (one in 50 of 250 events a second,
        while a flush to 10,000 viewers takes 100 ms here), and a second one
        made to wait for the next flush reached its viewers in 300 ms; but a
        room whose big gifts come faster still must not write everyone a
        third time a flush.
        """
        return self._rewrites + self._written() <= self._flush_viewers

    def _flushed(self) -> None:
        """A flush's last slice is written: when the room may send again."""
        ended = self._paused_at = self.loop.time()
        # A big room's writes took long: wait half as long again, so that
        # fan-out leaves at least a third of the process's time to the rest.
        busy = self._flush_seconds / 2
        pause = max(self.tick_seconds, busy) if self.tick_seconds > 0 else 0.0
        self._next_due = ended + pause
        if self._pending:
            if pause <= 0 or self._goes_express():
                self.flush()
            else:
                self._timer = self.loop.call_at(self._next_due, self.flush)
                if self._express:
                    self._hasten()

    def _hasten(self) -> None:
        """A big gift waits in a busy room's pause: the pause ends at its half.

        In a room busy with events the pause keeps fan-out to two thirds of
        the process's time; a big gift that came early in it waited for all
        of it, then for a whole flush. Cutting it to its half costs the
        room's rhythm little (a big gift a few times a second), and the gift
        waits at most half a pause. Only a room whose big gifts come in most
        pauses goes to four fifths of the process's time.
        """
        timer = self._timer
        assert timer is not None
        half = self._paused_at + (self._next_due - self._paused_at) / 2
        if self.loop.time() >= half:
            timer.cancel()
            self.flush()
        elif timer.when() > half:
            timer.cancel()
            self._timer = self.loop.call_at(half, self.flush)

    def _goes_express(self) -> bool:
        """A big gift waits, and the room is not busy: send without the pause."""
        return self._express and len(self._pending) <= EXPRESS_MAX_PENDING

    def _writers(self) -> dict[FrameKind, tuple[FrameWriter, ...]]:
        if self._fanout is None:
            self._fanout = {
                kind: tuple(member.writer for member in members)
                for kind, members in self.by_kind.items()
                if members
            }
        return self._fanout

    def _keep_for_joining(self, events: list[dict[str, Any]]) -> None:
        for member, kept in list(self.joining.items()):
            kept.extend(events)
            if len(kept) > MAX_EVENTS_WHILE_JOINING:
                self.joining.pop(member)
                member.writer.drop_slow_consumer()

    def _settle_caught_up(self, events: list[dict[str, Any]]) -> None:
        """Those to whom every event of this flush is new join everyone else first.

        They get the same frames as the room, so they are written in its
        slices, at its cost a viewer: after a crowd joins a quiet room, the
        first event would otherwise go to each newcomer one by one, with no
        turn of the loop between. Such an event is also newer than their
        floor, so nothing older can follow.
        """
        seqs = [seq for seq in map(_seq, events) if seq > 0]
        if not seqs:
            return  # nothing here proves Redis has passed anyone's floor
        lowest = min(seqs)
        for member, floor in list(self.catching_up.items()):
            if floor < lowest:
                self._settle(member)

    def _settle(self, member: Member) -> None:
        """A catching-up member is caught up: from now on it gets the room's frames."""
        del self.catching_up[member]
        self.by_kind.setdefault(member.kind, {})[member] = None
        self._fanout = None

    def _send_to_catching_up(self, chunks: list[list[dict[str, Any]]], frames: _Frames) -> None:
        """A flush's frames to those caught up to a floor: only what is newer."""
        top = max(_seq(event) for chunk in chunks for event in chunk)
        for member, floor in list(self.catching_up.items()):
            for chunk, per_kind in zip(chunks, frames, strict=True):
                fresh = fresh_after(chunk, floor)
                if len(fresh) == len(chunk):
                    frame = per_kind.get(member.kind)
                    if frame is None:
                        per_kind |= room_frames(batch_wire(chunk), [member.kind])
                        frame = per_kind[member.kind]
                    member.writer.send(frame)
                elif fresh:
                    member.send_message(batch_wire(fresh))
                self.stats.frames += 1 if fresh else 0
            if top > floor:  # Redis's order: nothing older can come after this
                self._settle(member)

    def send_to_all(self, wire: dict[str, Any]) -> None:
        """A message outside the room's sequence (the viewer count) to every socket.

        A joining socket gets it too, after its welcome (its writer holds it
        until then): the count the welcome carries may have been read before
        the one sent now, and a socket left out would show the older count
        until the next change.
        """
        frames: dict[Codec, bytes] = {}
        for member in self.members():
            frame = frames.get(member.codec)
            if frame is None:
                frame = frames[member.codec] = frame_bytes(encode(wire, member.codec))
            member.writer.send(frame)

    def send_to_owner(self, wire: dict[str, Any]) -> None:
        """A message for the room's creator only (a withdrawal's news), to each
        of their own sockets in the room."""
        for member in self.members():
            identity = member.identity
            if identity.role is Role.CREATOR and identity.user == self.room_id:
                member.send_message(wire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._next_slice is not None:
            self._next_slice.cancel()
            self._next_slice = None


class Hub:
    """Every room with at least one viewer in this process."""

    def __init__(
        self,
        tick_seconds: float,
        subscribe: Callable[[str], Awaitable[None]],
        unsubscribe: Callable[[str], Awaitable[None]],
    ) -> None:
        self.tick_seconds = tick_seconds
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self.rooms: dict[str, LocalRoom] = {}
        self.stats = FanoutStats()

    async def join(self, room_id: str, member: Member) -> LocalRoom:
        room = self.rooms.get(room_id)
        if room is None:
            room = LocalRoom(room_id, self.tick_seconds, asyncio.get_running_loop(), self.stats)
            self.rooms[room_id] = room
            try:
                await self._subscribe(room_id)
            except BaseException:
                # Nobody may stay in a room that hears nothing.
                del self.rooms[room_id]
                room.subscribed.set()
                raise
            room.subscribed.set()
        else:
            # Another viewer's join may still be subscribing the process.
            await room.subscribed.wait()
            if self.rooms.get(room_id) is not room:
                return await self.join(room_id, member)
        room.add(member)
        return room

    async def leave(self, room_id: str, member: Member) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.discard(member)
        if len(room) == 0:
            room.close()
            del self.rooms[room_id]
            await self._unsubscribe(room_id)

    def deliver(self, room_id: str, event: dict[str, Any]) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        if event.get("owner_only"):
            room.send_to_owner(event)
        else:
            room.deliver(event)

    def sockets(self) -> int:
        """Open room sockets in this process, whatever their stage."""
        return sum(len(room) for room in self.rooms.values())

    def every_member(self) -> list[Member]:
        """Every open room socket of this process (a copy)."""
        return [member for room in self.rooms.values() for member in room.members()]

    def rooms_with_owner(self) -> list[str]:
        """Rooms where this process holds the creator's own page or overlay open:
        their streams are kept live (``server/money/streams.py``)."""
        return [
            room_id
            for room_id, room in self.rooms.items()
            if any(
                member.identity.role is Role.OVERLAY
                or (member.identity.role is Role.CREATOR and member.identity.user == room_id)
                for member in room.members()
            )
        ]

    def count_by_role(self) -> dict[Role, int]:
        counts = dict.fromkeys(Role, 0)
        for room in self.rooms.values():
            for member in room.members():
                counts[member.identity.role] += 1
        return counts
