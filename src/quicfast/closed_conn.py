"""What a Transport keeps of a connection for the rest of its closing or
draining period (RFC 9000 §10.2), as quic-go's closedLocalConn and
closedRemoteConn do.

Once a connection has sent its CONNECTION_CLOSE (closing, §10.2.1) or
received the peer's (draining, §10.2.2), the application is done with it:
`wait_closed()` returns and the engine is let go. For three PTOs the
transport still owns its connection IDs, so that late packets are neither
taken for a new connection nor answered with a stateless reset:

- closing: the same close datagram is sent again (§10.2.1 allows resending
  that packet rather than building a new one), on the 1st, 2nd, 4th, 8th, …
  datagram received, and never more than three times the bytes received
  (the anti-amplification limit of §8.1);
- draining: nothing is sent (§10.2.2).
"""

from __future__ import annotations

import asyncio
from typing import Optional

__all__ = ["ClosedConnection"]


class ClosedConnection:
    """The connection IDs and close datagram of a connection in its closing
    or draining period (`datagram` is None when draining)."""

    __slots__ = ("cids", "datagram", "addr", "received", "sent", "expiry")

    def __init__(self, cids: list, datagram: Optional[bytes], addr) -> None:
        self.cids = cids
        self.datagram = datagram
        self.addr = addr
        #: datagrams received for it, and close datagrams sent in answer
        self.received = 0
        self.sent = 0
        #: the timer that ends the period (set by the transport)
        self.expiry: Optional[asyncio.TimerHandle] = None

    def answer(self, received_length: int) -> Optional[bytes]:
        """Count a datagram of `received_length` bytes; return the close
        datagram when it is to be sent in answer, else None."""
        self.received += 1
        n = self.received
        datagram = self.datagram
        if datagram is None or n & (n - 1) or len(datagram) > 3 * received_length:
            return None
        self.sent += 1
        return datagram
