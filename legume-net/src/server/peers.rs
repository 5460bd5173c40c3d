//! The peer table: every connection of the endpoint by its peer's address,
//! and what it takes to drive many of them cheaply: a heap of their timer
//! deadlines (an update costs work for the peers that are due, not for
//! every peer), the queue of peers that may have something to send, and
//! the events they raised.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use legume_core::AnyMessage;
use tracing::debug;

use crate::connection::Connection;
use crate::delivery::Delivery;
use crate::event::{Event, SendError};

use super::LOG_TARGET;

/// An event on one peer's connection.
#[derive(Debug)]
pub struct ServerEvent {
    /// The peer.
    pub peer: SocketAddr,
    /// What happened.
    pub event: Event,
}

/// What became of a datagram offered to the peer table.
#[derive(Debug)]
pub(super) enum Offered {
    /// No peer has the sender's address.
    NotAPeer,
    /// Answered on the connection's behalf with these bytes; the
    /// connection did not see the datagram.
    Answered(Vec<u8>),
    /// The connection processed it (or dropped and counted it).
    Processed,
}

/// Every connection of the endpoint, by peer address.
#[derive(Default)]
pub(super) struct PeerTable {
    map: HashMap<SocketAddr, Peer>,
    queues: Queues,
    /// Scratch list of peers whose timers are due.
    due: Vec<SocketAddr>,
}

/// One connection and its place in the queues.
struct Peer {
    conn: Connection,
    /// The deadline of its live entry in the timer heap.
    scheduled: Option<Instant>,
    /// Whether it is in the queue of peers to poll for packets.
    dirty: bool,
}

/// Timer deadlines, earliest first. An entry whose peer has since been
/// scheduled elsewhere is stale: skipped when it comes up, dropped when the
/// heap is compacted.
type Timers = BinaryHeap<Reverse<(Instant, SocketAddr)>>;

/// The work the peers leave for the endpoint's caller.
#[derive(Default)]
struct Queues {
    timers: Timers,
    /// Peers that may have packets to send, in the order they changed.
    dirty: VecDeque<SocketAddr>,
    events: VecDeque<ServerEvent>,
}

impl PeerTable {
    /// The number of peers.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The connection of the peer at `addr`.
    pub(super) fn get(&self, addr: SocketAddr) -> Option<&Connection> {
        self.map.get(&addr).map(|p| &p.conn)
    }

    /// Every peer with its connection.
    pub(super) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Connection)> + '_ {
        self.map.iter().map(|(a, p)| (*a, &p.conn))
    }

    /// The peers' addresses, collected (for a pass that changes the table).
    pub(super) fn addrs(&self) -> Vec<SocketAddr> {
        self.map.keys().copied().collect()
    }

    /// Adds a new connection and takes in its first events and timer.
    pub(super) fn insert(&mut self, addr: SocketAddr, conn: Connection) {
        self.map.insert(
            addr,
            Peer {
                conn,
                scheduled: None,
                dirty: false,
            },
        );
        if let Some(p) = self.map.get_mut(&addr) {
            self.queues.touch(addr, p);
        }
        self.compact_timers_if_stale();
    }

    /// Keeps a stats sample for every peer that is due one.
    pub(super) fn sample_stats(&mut self, now: Instant) {
        for p in self.map.values_mut() {
            p.conn.sample_stats(now);
        }
    }

    /// Queues a message to one peer.
    pub(super) fn send(
        &mut self,
        addr: SocketAddr,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        let p = self.map.get_mut(&addr).ok_or(SendError::NotConnected)?;
        p.conn.send(msg, delivery)?;
        // One map lookup per send: a server echoing many small messages
        // spent an eighth of its time hashing addresses.
        self.queues.touch(addr, p);
        self.compact_timers_if_stale();
        Ok(())
    }

    /// Disconnects one peer with a reason.
    pub(super) fn disconnect(&mut self, addr: SocketAddr, reason: &str) {
        if let Some(p) = self.map.get_mut(&addr) {
            p.conn.disconnect(reason);
            self.queues.touch(addr, p);
            self.compact_timers_if_stale();
        }
    }

    /// Hands a datagram from `addr` to its connection, unless `answer`
    /// answers it on the connection's behalf (a repeated ACCEPT); one map
    /// lookup for all of it.
    pub(super) fn handle_datagram(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        datagram: &[u8],
        answer: impl FnOnce(&Connection) -> Option<Vec<u8>>,
    ) -> Offered {
        let Some(p) = self.map.get_mut(&addr) else {
            return Offered::NotAPeer;
        };
        if let Some(reply) = answer(&p.conn) {
            return Offered::Answered(reply);
        }
        p.conn.handle_datagram(now, datagram);
        self.queues.touch(addr, p);
        self.compact_timers_if_stale();
        Offered::Processed
    }

    /// Runs the timers of every peer that is due, each once.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(&Reverse((t, addr))) = self.queues.timers.peek() {
            if t > now {
                break;
            }
            self.queues.timers.pop();
            if let Some(p) = self.map.get_mut(&addr) {
                if p.scheduled == Some(t) {
                    p.scheduled = None;
                    due.push(addr);
                }
            }
        }
        for &addr in &due {
            if let Some(p) = self.map.get_mut(&addr) {
                p.conn.handle_timeout(now);
                self.queues.touch(addr, p);
            }
        }
        self.compact_timers_if_stale();
        due.clear();
        self.due = due;
    }

    /// The next packet of the first peer in the queue that has one, as
    /// destination and length in `buf`. A peer with nothing more leaves the
    /// queue, and the table once its connection is drained.
    pub(super) fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        while let Some(&addr) = self.queues.dirty.front() {
            let Some(p) = self.map.get_mut(&addr) else {
                self.queues.dirty.pop_front();
                continue;
            };
            if let Some(n) = p.conn.poll_transmit(now, buf) {
                return Some((addr, n));
            }
            self.queues.dirty.pop_front();
            p.dirty = false;
            if p.conn.is_drained() {
                self.map.remove(&addr);
                debug!(target: LOG_TARGET, peer = %addr, peers = self.map.len(), "removed {addr}");
                continue;
            }
            // Sending moves timers (acks cleared, probes armed).
            schedule(&mut self.queues.timers, addr, p);
            self.compact_timers_if_stale();
        }
        None
    }

    /// The next event, if any.
    pub(super) fn poll_event(&mut self) -> Option<ServerEvent> {
        self.queues.events.pop_front()
    }

    /// The earliest deadline in the timer heap.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.queues.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Drops stale heap entries when they pile up, by rebuilding the heap
    /// from the live schedules.
    fn compact_timers_if_stale(&mut self) {
        if self.queues.timers.len() > 4 * self.map.len() + 1024 {
            self.queues.timers = self
                .map
                .iter()
                .filter_map(|(a, p)| p.scheduled.map(|t| Reverse((t, *a))))
                .collect();
        }
    }
}

impl Queues {
    /// After any change to a peer: collect its events, queue it for
    /// transmission and reschedule its timer. Takes the peer the caller
    /// looked up, so one map lookup serves for all of it.
    fn touch(&mut self, addr: SocketAddr, p: &mut Peer) {
        while let Some(event) = p.conn.poll_event() {
            self.events.push_back(ServerEvent { peer: addr, event });
        }
        if !p.dirty {
            p.dirty = true;
            self.dirty.push_back(addr);
        }
        schedule(&mut self.timers, addr, p);
    }
}

/// Puts the peer's next deadline in the heap when it is earlier than the one
/// already there (a later one is found when the earlier fires).
fn schedule(timers: &mut Timers, addr: SocketAddr, p: &mut Peer) {
    if let Some(t) = p.conn.poll_timeout() {
        if p.scheduled.is_none_or(|s| t < s) {
            p.scheduled = Some(t);
            timers.push(Reverse((t, addr)));
        }
    }
}
