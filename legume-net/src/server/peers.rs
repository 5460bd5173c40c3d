//! The peer table: every connection of the endpoint by its peer's address,
//! with its [`ClientId`] and what the app and the connect token attached to
//! it, and what it takes to drive many of them cheaply: a heap of their
//! timer deadlines (an update costs work for the peers that are due, not
//! for every peer), the queue of peers that may have something to send, and
//! the events they raised.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use legume_core::AnyMessage;
use tracing::debug;

use crate::channel::{ChannelId, MessageHandle};
use crate::client_id::{ClientId, PeerRef};
use crate::connection::Connection;
use crate::delivery::Delivery;
use crate::event::{Event, SendError};
use crate::secure::USER_DATA_LEN;

use super::LOG_TARGET;

/// A value an app attaches to one peer ([`ServerEndpoint::set_peer_data`](super::ServerEndpoint::set_peer_data)).
pub type PeerData = Box<dyn Any + Send + Sync>;

/// An event on one peer's connection.
#[derive(Debug)]
pub struct ServerEvent {
    /// The peer's identity on this server.
    pub client: ClientId,
    /// The peer's address.
    pub peer: SocketAddr,
    /// What happened.
    pub event: Event,
    /// On [`Event::Disconnected`], the peer's last event: the value the app
    /// attached to the peer, handed back, since the server forgets the
    /// peer. `None` on every other event, and when nothing was attached.
    pub data: Option<PeerData>,
}

/// What became of a message sent to many peers at once.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// How many peers queued it.
    pub sent: usize,
    /// The peers that could not take it, and why (a full send queue, most
    /// likely): each is still connected and can be sent to again.
    pub refused: Vec<(ClientId, SendError)>,
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
    /// The address of every peer in `map`, by identity.
    ids: HashMap<ClientId, SocketAddr>,
    /// The last identity the server assigned (plain and legume v4 modes).
    last_assigned: u64,
    /// Peers gone from `map` whose `Disconnected` event the app has not
    /// polled yet: what was attached to them stays readable until then, and
    /// is handed back with that event. At most one per queued event.
    departed: HashMap<ClientId, Box<Attached>>,
    queues: Queues,
    /// Scratch list of peers whose timers are due.
    due: Vec<SocketAddr>,
}

/// What the app and the connect token attached to a peer, boxed in
/// [`Peer`] only when there is any: most peers of most servers have
/// neither, and the user data is 256 bytes.
#[derive(Default)]
struct Attached {
    /// The connect token's user data (secure mode).
    user_data: Option<[u8; USER_DATA_LEN]>,
    data: Option<PeerData>,
}

/// One connection and its place in the queues.
struct Peer {
    conn: Connection,
    id: ClientId,
    attached: Option<Box<Attached>>,
    /// Whether its `Disconnected` event has been polled (and `attached.data`
    /// handed back with it).
    farewell_polled: bool,
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

    /// The address of the peer `peer` names, if it is in the table.
    pub(super) fn resolve(&self, peer: PeerRef) -> Option<SocketAddr> {
        match peer {
            PeerRef::Addr(a) => self.map.contains_key(&a).then_some(a),
            PeerRef::Client(id) => self.ids.get(&id).copied(),
        }
    }

    /// The connection of a peer.
    pub(super) fn get(&self, peer: PeerRef) -> Option<&Connection> {
        self.peer(peer).map(|p| &p.conn)
    }

    /// A peer's entry: one map lookup by address, two by identity.
    fn peer(&self, peer: PeerRef) -> Option<&Peer> {
        self.map.get(&address_of(&self.ids, peer)?)
    }

    /// Runs `act` on a peer's connection, then takes in what it changed
    /// (events, the transmit queue, its timer). One lookup of the peer for
    /// all of it: a server echoing many small messages spent an eighth of
    /// its time hashing addresses.
    fn act_on<T>(
        &mut self,
        peer: PeerRef,
        act: impl FnOnce(&mut Connection) -> Result<T, SendError>,
    ) -> Result<T, SendError> {
        let (addr, p) = entry_mut(&mut self.map, &self.ids, peer).ok_or(SendError::NotConnected)?;
        let out = act(&mut p.conn)?;
        self.queues.touch(addr, p);
        self.compact_timers_if_stale();
        Ok(out)
    }

    /// Every peer with its connection.
    pub(super) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Connection)> + '_ {
        self.map.iter().map(|(a, p)| (*a, &p.conn))
    }

    /// Every peer's identity and address.
    pub(super) fn clients(&self) -> impl Iterator<Item = (ClientId, SocketAddr)> + '_ {
        self.ids.iter().map(|(id, a)| (*id, *a))
    }

    /// The identity of the peer at `addr`.
    pub(super) fn client_id(&self, addr: SocketAddr) -> Option<ClientId> {
        self.map.get(&addr).map(|p| p.id)
    }

    /// Whether a peer in the table has this identity.
    pub(super) fn has_client(&self, id: ClientId) -> bool {
        self.ids.contains_key(&id)
    }

    /// What is attached to a peer, in the table or departed with its
    /// `Disconnected` event not yet polled.
    fn attached(&self, peer: PeerRef) -> Option<&Attached> {
        match (self.peer(peer), peer) {
            (Some(p), _) => p.attached.as_deref(),
            (None, PeerRef::Client(id)) => self.departed.get(&id).map(|a| &**a),
            (None, PeerRef::Addr(_)) => None,
        }
    }

    /// The connect token's user data of a peer (secure mode).
    pub(super) fn user_data(&self, peer: PeerRef) -> Option<&[u8; USER_DATA_LEN]> {
        self.attached(peer)?.user_data.as_ref()
    }

    /// The app's value attached to a peer, if it is a `T`.
    pub(super) fn peer_data<T: Any>(&self, peer: PeerRef) -> Option<&T> {
        self.attached(peer)?.data.as_ref()?.downcast_ref()
    }

    /// The app's value attached to a peer, mutably, if it is a `T`.
    pub(super) fn peer_data_mut<T: Any>(&mut self, peer: PeerRef) -> Option<&mut T> {
        let attached = match (entry_mut(&mut self.map, &self.ids, peer), peer) {
            (Some((_, p)), _) => p.attached.as_deref_mut(),
            (None, PeerRef::Client(id)) => self.departed.get_mut(&id).map(|a| &mut **a),
            (None, PeerRef::Addr(_)) => None,
        }?;
        attached.data.as_mut()?.downcast_mut()
    }

    /// Attaches the app's value to a peer in the table, replacing any
    /// earlier one; false when there is no such peer.
    pub(super) fn set_peer_data(&mut self, peer: PeerRef, data: PeerData) -> bool {
        let Some((_, p)) = entry_mut(&mut self.map, &self.ids, peer) else {
            return false;
        };
        p.attached.get_or_insert_with(Box::default).data = Some(data);
        true
    }

    /// Adds a new connection and takes in its first events and timer. Its
    /// identity is the connect token's client id (secure mode; the caller
    /// has refused one already in use) or the next one the table assigns.
    pub(super) fn insert(
        &mut self,
        addr: SocketAddr,
        conn: Connection,
        token: Option<(u64, [u8; USER_DATA_LEN])>,
    ) -> ClientId {
        let (id, user_data) = match token {
            Some((id, user_data)) => (ClientId::new(id), Some(user_data)),
            None => (self.assign_id(), None),
        };
        if let Some(old) = self.map.remove(&addr) {
            // The caller replaces a connection only once it is over.
            self.ids.remove(&old.id);
        }
        self.ids.insert(id, addr);
        self.map.insert(
            addr,
            Peer {
                conn,
                id,
                attached: user_data.map(|user_data| {
                    Box::new(Attached {
                        user_data: Some(user_data),
                        data: None,
                    })
                }),
                farewell_polled: false,
                scheduled: None,
                dirty: false,
            },
        );
        if let Some(p) = self.map.get_mut(&addr) {
            self.queues.touch(addr, p);
        }
        self.compact_timers_if_stale();
        id
    }

    /// The next server-assigned identity: counting up from 1, skipping any
    /// in use (a token's, on a server that turned the secure mode on while
    /// plain peers were connected).
    fn assign_id(&mut self) -> ClientId {
        loop {
            self.last_assigned = self.last_assigned.wrapping_add(1).max(1);
            let id = ClientId::new(self.last_assigned);
            if !self.ids.contains_key(&id) && !self.departed.contains_key(&id) {
                return id;
            }
        }
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
        peer: PeerRef,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        self.act_on(peer, |c| c.send(msg, delivery))
    }

    /// Queues a message to one peer on a channel of `Config::channels`.
    pub(super) fn send_on(
        &mut self,
        peer: PeerRef,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        self.act_on(peer, |c| c.send_on(channel, msg))
    }

    /// Queues an encoded message to every open connection but `except`'s.
    pub(super) fn broadcast(
        &mut self,
        except: Option<SocketAddr>,
        message: &[u8],
        delivery: Delivery,
    ) -> Broadcast {
        let mut result = Broadcast::default();
        for (&addr, p) in &mut self.map {
            if Some(addr) == except || p.conn.is_closed() {
                continue;
            }
            match p.conn.send_encoded(message, delivery) {
                Ok(()) => {
                    result.sent += 1;
                    self.queues.touch(addr, p);
                }
                Err(e) => result.refused.push((p.id, e)),
            }
        }
        self.compact_timers_if_stale();
        result
    }

    /// Disconnects one peer with a reason.
    pub(super) fn disconnect(&mut self, peer: PeerRef, reason: &str) {
        // No such peer: nothing to end.
        let _ = self.act_on(peer, |c| {
            c.disconnect(reason);
            Ok(())
        });
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
                self.remove(addr);
                debug!(target: LOG_TARGET, peer = %addr, peers = self.map.len(), "removed {addr}");
                continue;
            }
            // Sending moves timers (acks cleared, probes armed).
            schedule(&mut self.queues.timers, addr, p);
            self.compact_timers_if_stale();
        }
        None
    }

    /// Takes a drained connection out of the table. What was attached to
    /// it stays readable until its `Disconnected` event is polled.
    fn remove(&mut self, addr: SocketAddr) {
        let Some(p) = self.map.remove(&addr) else {
            return;
        };
        self.ids.remove(&p.id);
        if !p.farewell_polled {
            if let Some(attached) = p.attached {
                self.departed.insert(p.id, attached);
            }
        }
    }

    /// The next event, if any; a `Disconnected` one carries the data the
    /// app attached to the peer.
    pub(super) fn poll_event(&mut self) -> Option<ServerEvent> {
        let mut e = self.queues.events.pop_front()?;
        if matches!(e.event, Event::Disconnected(_)) {
            e.data = match self.departed.remove(&e.client) {
                Some(attached) => attached.data,
                None => self
                    .ids
                    .get(&e.client)
                    .and_then(|a| self.map.get_mut(a))
                    .and_then(|p| {
                        p.farewell_polled = true;
                        p.attached.as_mut()?.data.take()
                    }),
            };
        }
        Some(e)
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

/// The address `peer` names: itself, or the address of that identity.
/// Whether a peer is there is for the map lookup that follows.
fn address_of(ids: &HashMap<ClientId, SocketAddr>, peer: PeerRef) -> Option<SocketAddr> {
    match peer {
        PeerRef::Addr(a) => Some(a),
        PeerRef::Client(id) => ids.get(&id).copied(),
    }
}

/// A peer's address and entry, mutably (the table's fields apart, so the
/// caller can still reach its queues).
fn entry_mut<'a>(
    map: &'a mut HashMap<SocketAddr, Peer>,
    ids: &HashMap<ClientId, SocketAddr>,
    peer: PeerRef,
) -> Option<(SocketAddr, &'a mut Peer)> {
    let addr = address_of(ids, peer)?;
    map.get_mut(&addr).map(|p| (addr, p))
}

impl Queues {
    /// After any change to a peer: collect its events, queue it for
    /// transmission and reschedule its timer. Takes the peer the caller
    /// looked up, so one map lookup serves for all of it.
    fn touch(&mut self, addr: SocketAddr, p: &mut Peer) {
        while let Some(event) = p.conn.poll_event() {
            self.events.push_back(ServerEvent {
                client: p.id,
                peer: addr,
                event,
                data: None,
            });
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
