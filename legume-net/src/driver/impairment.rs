//! The network conditioner's delay lines: the seeded loss, duplication,
//! latency, jitter and reordering a [`Conditioner`] describes, applied by the
//! UDP driver on top of real sockets, so anyone can watch the protocol under
//! bad conditions without a proxy.

use std::net::SocketAddr;
use std::time::Instant;

use crate::sim::{Conditioner, SimDatagram, SimNetwork};
use crate::time::earliest;

/// Datagrams held back by the conditioner at most, per direction; more are
/// dropped (and counted as loss), so a flood cannot grow memory without bound.
const MAX_HELD: usize = 65_536;

/// The driver's two delay lines.
#[derive(Debug)]
pub(crate) struct Impairment {
    outgoing: SimNetwork,
    incoming: SimNetwork,
    local: SocketAddr,
}

impl Impairment {
    pub(crate) fn new(c: &Conditioner, local: SocketAddr) -> Self {
        let mut outgoing = SimNetwork::new(c.seed);
        outgoing.set_default_conditions(c.outgoing);
        let mut incoming = SimNetwork::new(c.seed ^ 0x9E37_79B9_7F4A_7C15);
        incoming.set_default_conditions(c.incoming);
        Impairment {
            outgoing,
            incoming,
            local,
        }
    }

    /// Queues a datagram to send to `to` once its drawn delay passes.
    pub(crate) fn send(&mut self, now: Instant, to: SocketAddr, bytes: &[u8]) {
        if self.outgoing.in_flight() < MAX_HELD {
            self.outgoing.send(now, self.local, to, bytes);
        }
    }

    /// Queues a received datagram to process once its drawn delay passes.
    pub(crate) fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if self.incoming.in_flight() < MAX_HELD {
            self.incoming.send(now, from, self.local, bytes);
        }
    }

    /// The next outgoing datagram due at `now`.
    pub(crate) fn due_outgoing(&mut self, now: Instant) -> Option<SimDatagram> {
        self.outgoing.pop_due(now)
    }

    /// The next incoming datagram due at `now`.
    pub(crate) fn due_incoming(&mut self, now: Instant) -> Option<SimDatagram> {
        self.incoming.pop_due(now)
    }

    /// Hands a sent datagram's buffer back for reuse.
    pub(crate) fn recycle_outgoing(&mut self, bytes: Vec<u8>) {
        self.outgoing.recycle(bytes);
    }

    /// Hands a processed datagram's buffer back for reuse.
    pub(crate) fn recycle_incoming(&mut self, bytes: Vec<u8>) {
        self.incoming.recycle(bytes);
    }

    /// When the next held datagram is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        earliest(self.outgoing.next_delivery(), self.incoming.next_delivery())
    }
}
