"""What a client has sent or must send and is not yet acknowledged, at O(1) cost a call.

Messages wait in one of two queues: ``flight`` (sent, awaiting an ack, in the order sent)
and ``due`` (to send: new, or sent over ``RESEND_S`` ago with no ack). Each
:meth:`Outbox.tend` moves at most ``SLICE`` timed-out messages from ``flight`` to ``due``
and sends at most ``SLICE`` from ``due``, keeping at most ``WINDOW`` in flight, so its cost
does not grow with the backlog. A peer that has answered nothing for ``SILENT_S`` seconds
while something awaited its answer is *silent*: nothing more is sent to it but one probe
(the oldest message) every ``PROBE_S``, so a stopped scheduler gets no resend storm and
ZeroMQ's queue never fills; its first answer ends the silence.

Memory is bounded: past ``MEMORY_MAX`` messages held, new submissions that the journal
took are *spilled*, kept in the journal only; they are read back from it, ``SLICE`` at a
time and in order, once the held ones fall below half of that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from odop.launch.journal import Cursor, Journal

RESEND_S = 1.0
"""Time without an ack after which a sent message is sent again (seconds)."""
SILENT_S = 5.0
"""Time a peer may leave a sent message unanswered before it counts as silent (seconds)."""
PROBE_S = 2.0
"""Time between probes of a silent peer (seconds)."""
SLICE = 64
"""Most messages resent, timed out or read back from the journal per call."""
WINDOW = 1000
"""Most messages in flight (sent, unacknowledged, not timed out) at once."""
MEMORY_MAX = 10_000
"""Most messages held in memory; further journalled submissions are spilled."""


class Outbox:
    """Tracked messages of one client; ``transmit(msg) -> bool`` puts one on the wire."""

    def __init__(self, transmit: Callable[[dict[str, Any]], bool],
                 journal: Journal | None = None) -> None:
        self.transmit, self.journal = transmit, journal
        self.held: dict[str, dict[str, Any]] = {}
        """id -> message, for every tracked message held in memory."""
        self.flight: OrderedDict[str, float] = OrderedDict()
        self.due: OrderedDict[str, None] = OrderedDict()
        self.spilled = 0
        """Submissions kept in the journal only, not yet read back."""
        self._cursor: Cursor | None = None
        self.waiting_since: float | None = None
        """When the first message still unanswered by the peer was sent (monotonic)."""
        self._probed = 0.0
        self.unread = 0
        """Spilled submissions that could not be read back (left in the journal file)."""

    def __len__(self) -> int:
        return len(self.held) + self.spilled + self.unread

    def silent(self, now: float | None = None) -> bool:
        """True when the peer has left a message unanswered for over ``SILENT_S``."""
        now = time.monotonic() if now is None else now
        return self.waiting_since is not None and now - self.waiting_since > SILENT_S

    def add(self, msg: dict[str, Any], *, journal: bool = False) -> bool:
        """Track ``msg``, written to the journal first when ``journal``; False when the
        journal did not take it (it is then held in memory, whatever the bound)."""
        if not journal or self.journal is None:
            self._hold(msg)
            return not journal
        spill = bool(self.spilled) or len(self.held) >= MEMORY_MAX
        start = self.journal.tell() if spill and not self.spilled else None
        if not self.journal.submitted(msg):
            self._hold(msg)
            return False
        if spill:
            self._cursor = start or self._cursor
            self.spilled += 1
        else:
            self._hold(msg)
        return True

    def _hold(self, msg: dict[str, Any]) -> None:
        """Keep ``msg``; send it at once when nothing is ahead of it and the peer listens."""
        self.held[msg["id"]] = msg
        if not self.due and not self.silent() and len(self.flight) < WINDOW:
            self._send(msg["id"], time.monotonic())
        else:
            self.due[msg["id"]] = None

    def acked(self, msg_id: str) -> dict[str, Any] | None:
        """The peer answered ``msg_id``: forget it; returns it if it was held."""
        self.flight.pop(msg_id, None)
        self.due.pop(msg_id, None)
        return self.held.pop(msg_id, None)

    def heard(self, now: float) -> None:
        """The peer answered something: it is not silent; what it still owes gets time."""
        self.waiting_since = now if self.flight else None

    def tend(self) -> None:
        """Time out, resend and read back a bounded slice; a silent peer gets a probe."""
        now = time.monotonic()
        for _ in range(SLICE):
            if not self.flight:
                break
            msg_id, sent = next(iter(self.flight.items()))
            if now - sent < RESEND_S:
                break
            del self.flight[msg_id]
            self.due[msg_id] = None
        self._read_back()
        if self.silent(now):
            if self.due and now - self._probed >= PROBE_S:
                self._probed = now
                self._send(self.due.popitem(last=False)[0], now)
            return
        for _ in range(min(SLICE, WINDOW - len(self.flight))):
            if not self.due:
                break
            if not self._send(self.due.popitem(last=False)[0], now):
                break

    def resend_all(self) -> None:
        """Send everything held again (the peer was restarted and lost what it had)."""
        self.due = OrderedDict.fromkeys([*self.flight, *self.due])
        self.flight.clear()
        self.waiting_since = None
        self.tend()

    def _send(self, msg_id: str, now: float) -> bool:
        """Put one held message on the wire; back at the head of ``due`` if refused."""
        if not self.transmit(self.held[msg_id]):
            self.due[msg_id] = None
            self.due.move_to_end(msg_id, last=False)
            return False
        self.flight[msg_id] = now
        if self.waiting_since is None:
            self.waiting_since = now
        return True

    def _read_back(self) -> None:
        """Bring spilled submissions back into memory, in order, once there is room."""
        if not self.spilled or self._cursor is None or self.journal is None:
            return
        if len(self.held) >= MEMORY_MAX // 2:
            return
        msgs, self._cursor = self.journal.submissions_from(self._cursor, SLICE)
        for msg in msgs[:self.spilled]:
            self.held[msg["id"]] = msg
            self.due[msg["id"]] = None
        self.spilled -= min(len(msgs), self.spilled)
        if not msgs:  # unreadable: they stay in the journal file, counted there
            self.unread += self.spilled
            self.spilled = 0
