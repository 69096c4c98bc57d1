"""What an input made the agent accept must go on the wire: the check the config, API and control
targets share."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fleetbgp.session import Peer
from fleetbgp.wire.attributes import EncodeContext
from fleetbgp.wire.constants import HEADER_LEN
from fleetbgp.wire.messages import MessageReader

from .base import require, watched_logs


def sends_everything(peers: Iterable[Peer]) -> None:
    """Each peer's whole adj-rib-out, encoded as a fresh session would send it: whole messages
    within the maximum size, and no route dropped with an error."""
    with watched_logs(max_records=1000) as records:
        for peer in peers:
            neighbor = peer.neighbor
            size = 65535 if neighbor.capabilities.extended_message else 4096
            ctx = EncodeContext(local_as=neighbor.local_as, peer_as=neighbor.peer_as,
                                next_hop_self_v4="192.0.2.2", next_hop_self_v6="2001:db8::2",
                                max_size=size)
            peer.rib_out.mark_all(neighbor.families, fresh=True)
            wire = b"".join(peer.rib_out.flush(ctx, neighbor.families))
            for _, body in MessageReader(size).feed(wire):
                require(len(body) + HEADER_LEN <= size, "an UPDATE larger than the maximum")
    errors = [r.getMessage()[:300] for r in records if r.levelno >= logging.ERROR]
    require(not errors, f"an accepted route could not be sent: {errors[:1]}")
