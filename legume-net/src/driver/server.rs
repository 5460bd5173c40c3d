//! `Server`: many connections behind one UDP socket (legume's `Server`).

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory};
use thiserror::Error;

use super::batch::{RecvBatch, SendBatch};
use super::impairment::Impairment;
use super::socket::{is_would_block, BufferSizes, DriverSocket, SocketStats};
use crate::channel::{ChannelId, MessageHandle};
use crate::client_id::{ClientId, PeerRef};
use crate::config::Config;
use crate::connection::Connection;
use crate::delivery::Delivery;
use crate::event::{Event, IoError, SendError};
use crate::live::LiveStats;
use crate::observe::Tally;
use crate::secure::token::unix_now;
use crate::secure::{PrivateKey, RandomError, USER_DATA_LEN};
use crate::server::{
    Broadcast, ConnectRequest, Decision, EndpointStats, ServerEndpoint, ServerEvent,
};
use crate::time::earliest;

/// Why [`Server::listen`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address did not parse or resolve.
    #[error("cannot resolve listen address: {0}")]
    Resolve(#[source] io::Error),
    /// The address resolved to nothing.
    #[error("listen address resolved to no address")]
    NoAddress,
    /// The server is already listening.
    #[error("already listening")]
    AlreadyListening,
    /// The socket could not be bound.
    #[error("cannot bind: {0}")]
    Bind(#[source] io::Error),
    /// The operating system could not supply the random bits that key the
    /// server's cookies and session ids.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A legume-rs server, driven by calling [`update`](Self::update) every frame.
///
/// ```no_run
/// use std::sync::Arc;
/// use legume_core::MessageFactory;
/// use legume_net::{Config, Decision, Event, Server};
///
/// let mut server = Server::new(Arc::new(MessageFactory::new()), Config::default());
/// server.set_connect_hook(|req| {
///     if req.peer_count < 16 { Decision::Accept } else { Decision::Reject("full".into()) }
/// });
/// server.listen("127.0.0.1:9000")?;
/// for _tick in 0..1000 {
///     server.update_timeout(std::time::Duration::from_millis(50));
///     while let Some(e) = server.poll_event() {
///         if let Event::Message(msg) = e.event {
///             println!("{} sent {msg:?}", e.peer);
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    config: Config,
    factory: Arc<MessageFactory>,
    socket: Option<DriverSocket>,
    endpoint: Option<ServerEndpoint>,
    impairment: Option<Impairment>,
    hook: Option<crate::server::HeldHook>,
    accept_new: bool,
    max_peers: usize,
    security: Option<(PrivateKey, SocketAddr)>,
    events: VecDeque<ServerEvent>,
    io_errors: u64,
    last_io_error: Option<IoError>,
    socket_stats: SocketStats,
    io_error_log: Tally,
    /// The time of the last update, for the live stats.
    last_update: Option<Instant>,
    /// When the endpoint's log summaries are next checked.
    next_sample: Option<Instant>,
}

impl Server {
    /// A server that decodes with `factory` (shared, not copied).
    pub fn new(factory: Arc<MessageFactory>, config: Config) -> Self {
        Server {
            factory,
            socket: None,
            endpoint: None,
            impairment: None,
            hook: None,
            accept_new: true,
            max_peers: usize::MAX,
            security: None,
            events: VecDeque::new(),
            io_errors: 0,
            last_io_error: None,
            socket_stats: SocketStats::default(),
            io_error_log: Tally::default(),
            last_update: None,
            next_sample: None,
            config,
        }
    }

    /// Binds the UDP socket and starts accepting connections.
    pub fn listen<A: ToSocketAddrs>(&mut self, addr: A) -> Result<(), ListenError> {
        if self.socket.is_some() {
            return Err(ListenError::AlreadyListening);
        }
        let addr = addr
            .to_socket_addrs()
            .map_err(ListenError::Resolve)?
            .next()
            .ok_or(ListenError::NoAddress)?;
        let socket =
            DriverSocket::bind(addr, self.config.driver.udp_offload).map_err(ListenError::Bind)?;
        self.serve(socket)
    }

    /// Starts accepting connections on a UDP socket the app bound itself
    /// (to share a port with its own protocol's setup, to set options
    /// legume-rs does not, or to get one from a launcher). The server makes
    /// it non-blocking and owns it from now on; its buffer sizes are left
    /// as the app set them.
    pub fn listen_on(&mut self, socket: std::net::UdpSocket) -> Result<(), ListenError> {
        if self.socket.is_some() {
            return Err(ListenError::AlreadyListening);
        }
        let socket = DriverSocket::from_std(socket, self.config.driver.udp_offload)
            .map_err(ListenError::Bind)?;
        self.serve(socket)
    }

    /// Serves on `socket`: the endpoint, its settings so far, the
    /// conditioner.
    fn serve(&mut self, socket: DriverSocket) -> Result<(), ListenError> {
        let mut endpoint = ServerEndpoint::new(
            self.config.clone(),
            Arc::clone(&self.factory),
            Instant::now(),
        )?;
        endpoint.set_accept_new_connections(self.accept_new);
        endpoint.set_max_peers(self.max_peers);
        if let Some((key, public_addr)) = &self.security {
            endpoint.require_connect_tokens(key.clone(), *public_addr, Instant::now(), unix_now());
        }
        if let Some(hook) = self.hook.take() {
            endpoint.set_connect_hook(hook.into_inner());
        }
        let local = socket.local_addr().map_err(ListenError::Bind)?;
        tracing::info!(local = %local, protocol = ?self.config.protocol,
            recv_buffer = socket.buffers.recv, send_buffer = socket.buffers.send,
            "listening on {local}");
        self.impairment = self
            .config
            .driver
            .conditioner
            .map(|c| Impairment::new(&c, local));
        self.socket = Some(socket);
        self.endpoint = Some(endpoint);
        Ok(())
    }

    /// Turns on the secure mode (`docs/PROTOCOL.md` section 8): only clients
    /// with a valid connect token sealed with `key` and naming `public_addr`
    /// (this server's address as the backend writes it in tokens, which may
    /// differ from the bound address behind NAT) are admitted, and every
    /// packet after the handshake is encrypted and authenticated. Token
    /// expiry uses the system clock. Call before or after `listen`; the
    /// connect hook then sees each client's id and user data.
    pub fn require_connect_tokens(&mut self, key: PrivateKey, public_addr: SocketAddr) {
        if let Some(endpoint) = &mut self.endpoint {
            endpoint.require_connect_tokens(key.clone(), public_addr, Instant::now(), unix_now());
        }
        self.security = Some((key, public_addr));
    }

    /// Whether `listen` succeeded (legume's `LISTENING` state).
    pub fn is_listening(&self) -> bool {
        self.socket.is_some()
    }

    /// Always true (legume's `is_server`).
    pub fn is_server(&self) -> bool {
        true
    }

    /// Sets the hook that accepts or rejects each connect request
    /// (legume's `OnConnectRequest`). Without one, every request is accepted.
    pub fn set_connect_hook(
        &mut self,
        hook: impl FnMut(&ConnectRequest) -> Decision + Send + 'static,
    ) {
        match &mut self.endpoint {
            Some(e) => e.set_connect_hook(Box::new(hook)),
            None => self.hook = Some(crate::server::HeldHook::new(Box::new(hook))),
        }
    }

    /// Turns acceptance of new connections on or off (legume's `accept_new_connections`).
    pub fn set_accept_new_connections(&mut self, accept: bool) {
        self.accept_new = accept;
        if let Some(e) = &mut self.endpoint {
            e.set_accept_new_connections(accept);
        }
    }

    /// Whether new connections are accepted.
    pub fn accept_new_connections(&self) -> bool {
        self.accept_new
    }

    /// Caps the number of peers; connect requests beyond it are rejected.
    pub fn set_max_peers(&mut self, max: usize) {
        self.max_peers = max;
        if let Some(e) = &mut self.endpoint {
            e.set_max_peers(max);
        }
    }

    /// Reads what arrived (up to `DriverConfig::recv_budget` datagrams), runs due
    /// timers, sends what is due. Call once per frame, then drain
    /// [`poll_event`](Self::poll_event).
    pub fn update(&mut self) {
        let now = Instant::now();
        self.receive(now);
        if let Some(e) = &mut self.endpoint {
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
        }
        self.flush(now);
        self.sample(now);
        self.last_update = Some(now);
    }

    /// Writes the endpoint's log summaries that are due, at most every
    /// tenth of the stats window. Never a pass over the peers: each
    /// connection samples its own stats as its counters change (see
    /// `Connection::live_stats`), so an update costs work for the peers
    /// that had traffic or a timer, not for every peer.
    fn sample(&mut self, now: Instant) {
        let Some(e) = &mut self.endpoint else {
            return;
        };
        if self.next_sample.is_some_and(|t| now < t) {
            return;
        }
        e.write_due_logs(now);
        let interval = (self.config.stats_window / 10).max(Duration::from_millis(1));
        self.next_sample = Some(now + interval);
    }

    /// When the server next needs an [`update`](Self::update) even if
    /// nothing arrives: a peer's timer or a datagram the conditioner holds.
    /// `None` when nothing is pending (not listening, or no peers and no
    /// held datagrams). A program with its own event loop waits on the
    /// socket until then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(
            self.endpoint
                .as_ref()
                .and_then(ServerEndpoint::poll_timeout),
            self.impairment.as_ref().and_then(Impairment::next_due),
        )
    }

    /// Waits until a datagram arrives, a timer is due, or `max_wait` passes,
    /// then updates. For programs without a frame loop.
    pub fn update_timeout(&mut self, max_wait: Duration) {
        let now = Instant::now();
        let next = self.poll_timeout();
        let wait = next.map_or(max_wait, |t| t.saturating_duration_since(now).min(max_wait));
        if let Some(socket) = &self.socket {
            if let Err(e) = socket.wait_readable(wait) {
                self.note_io_error(&e);
            }
        }
        self.update();
    }

    fn note_io_error(&mut self, e: &io::Error) {
        self.io_errors += 1;
        self.last_io_error = Some(IoError::from(e));
        let now = Instant::now();
        if let Some((n, secs)) = self.io_error_log.due(now, now, self.io_errors) {
            tracing::debug!(count = n, secs, error = %e,
                "{n} socket errors in the last {secs:.1} s (latest: {e})");
        }
    }

    fn receive(&mut self, now: Instant) {
        let (Some(socket), Some(endpoint)) = (&self.socket, &mut self.endpoint) else {
            return;
        };
        let mut errors = Vec::new();
        let (impairment, stats) = (&mut self.impairment, &mut self.socket_stats);
        socket.receive(
            &mut RecvBatch::lend(socket.gro),
            self.config.driver.recv_budget,
            |bytes, from| {
                stats.datagrams_received += 1;
                stats.bytes_received += bytes.len() as u64;
                match impairment {
                    Some(imp) => imp.receive(now, from, bytes),
                    None => endpoint.handle_datagram(now, from, bytes),
                }
            },
            // An ICMP report about one peer does not stop the others.
            |e| errors.push(e),
        );
        if let Some(imp) = &mut self.impairment {
            while let Some(d) = imp.due_incoming(now) {
                endpoint.handle_datagram(now, d.from, &d.bytes);
                imp.recycle_incoming(d.bytes);
            }
        }
        for e in &errors {
            self.note_io_error(e);
        }
    }

    fn flush(&mut self, now: Instant) {
        let (Some(socket), Some(endpoint)) = (&self.socket, &mut self.endpoint) else {
            return;
        };
        let stats = &mut self.socket_stats;
        // Send errors by destination, turned into the peers' events below
        // (the endpoint is busy giving datagrams while they happen).
        let mut failed: Vec<(SocketAddr, IoError)> = Vec::new();
        let mut report = |to: Option<SocketAddr>, result: io::Result<usize>| match result {
            Ok(sent) => {
                stats.datagrams_sent += 1;
                stats.bytes_sent += sent as u64;
            }
            Err(e) => {
                if let Some(peer) = to {
                    failed.push((peer, IoError::from(&e)));
                }
            }
        };
        // Up to `BATCH` datagrams per system call. A full socket buffer drops
        // the rest of a batch; the protocol resends. Other peers' datagrams
        // still get their turn in the next batches.
        let mut tx = SendBatch::lend(self.config.effective_mtu());
        while let Some((to, n)) = endpoint.poll_transmit(now, tx.free_slot()) {
            if let Some(imp) = &mut self.impairment {
                imp.send(now, to, &tx.free_slot()[..n]);
                continue;
            }
            tx.commit(n, Some(to));
            if tx.is_full() {
                socket.send_batch(&mut tx, &mut report);
            }
        }
        if !tx.is_empty() {
            socket.send_batch(&mut tx, &mut report);
        }
        if let Some(imp) = &mut self.impairment {
            while let Some(d) = imp.due_outgoing(now) {
                match socket.send_to(&d.bytes, d.to) {
                    Ok(sent) => report(Some(d.to), Ok(sent)),
                    Err(e) if is_would_block(&e) => {}
                    Err(e) => report(Some(d.to), Err(e)),
                }
                imp.recycle_outgoing(d.bytes);
            }
        }
        for (peer, error) in failed {
            // A datagram to a peer that has since left is nobody's event.
            if let Some(client) = endpoint.client_id(peer) {
                self.events.push_back(ServerEvent {
                    client,
                    peer,
                    event: Event::Io(error),
                    data: None,
                });
            }
        }
    }

    /// The next event, if any (drain after each update).
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        // The endpoint's own events stay in the endpoint until polled, so
        // that what the app attached to a peer is readable while it handles
        // every event of that peer (`peer_data`).
        self.events
            .pop_front()
            .or_else(|| self.endpoint.as_mut()?.poll_event())
    }

    /// The peers and their connections (legume's `peers`).
    pub fn peers(&self) -> impl Iterator<Item = (SocketAddr, &Connection)> + '_ {
        self.endpoint.iter().flat_map(ServerEndpoint::peers)
    }

    /// The number of peers (legume's `peercount`).
    pub fn peer_count(&self) -> usize {
        self.endpoint.as_ref().map_or(0, ServerEndpoint::peer_count)
    }

    /// A peer's connection, by identity or address (legume's
    /// `get_peer_by_address`).
    pub fn peer(&self, peer: impl Into<PeerRef>) -> Option<&Connection> {
        self.endpoint.as_ref().and_then(|e| e.peer(peer))
    }

    /// Every peer's identity and address.
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, SocketAddr)> + '_ {
        self.endpoint.iter().flat_map(ServerEndpoint::clients)
    }

    /// The identity of the peer at `addr`.
    pub fn client_id(&self, addr: SocketAddr) -> Option<ClientId> {
        self.endpoint.as_ref()?.client_id(addr)
    }

    /// The address of a peer.
    pub fn peer_addr(&self, peer: impl Into<PeerRef>) -> Option<SocketAddr> {
        self.endpoint.as_ref()?.peer_addr(peer)
    }

    /// The user data of a peer's connect token (secure mode), for the life
    /// of the connection (see [`ServerEndpoint::user_data`]).
    pub fn user_data(&self, peer: impl Into<PeerRef>) -> Option<&[u8; USER_DATA_LEN]> {
        self.endpoint.as_ref()?.user_data(peer)
    }

    /// Attaches a value of the app's to a peer; false when there is no such
    /// peer (see [`ServerEndpoint::set_peer_data`]).
    pub fn set_peer_data<T: Any + Send + Sync>(
        &mut self,
        peer: impl Into<PeerRef>,
        data: T,
    ) -> bool {
        self.endpoint
            .as_mut()
            .is_some_and(|e| e.set_peer_data(peer, data))
    }

    /// The value attached to a peer, if it is a `T` (see
    /// [`ServerEndpoint::peer_data`]).
    pub fn peer_data<T: Any>(&self, peer: impl Into<PeerRef>) -> Option<&T> {
        self.endpoint.as_ref()?.peer_data(peer)
    }

    /// The value attached to a peer, mutably.
    pub fn peer_data_mut<T: Any>(&mut self, peer: impl Into<PeerRef>) -> Option<&mut T> {
        self.endpoint.as_mut()?.peer_data_mut(peer)
    }

    /// The live statistics of a peer, with rates over the last
    /// [`Config::stats_window`], as of the last [`update`](Self::update).
    pub fn peer_live_stats(&self, peer: impl Into<PeerRef>) -> Option<LiveStats> {
        let at = self.last_update?;
        self.peer(peer).map(|c| c.live_stats(at))
    }

    /// Every peer with its live statistics, as of the last
    /// [`update`](Self::update), in no particular order.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use legume_net::{Config, Server};
    /// # let server = Server::new(Arc::new(legume_core::MessageFactory::new()), Config::default());
    /// for (peer, live) in server.live_stats() {
    ///     println!(
    ///         "{peer}: rtt {:.0} ms, {:.0} B/s in, {:.0} B/s out",
    ///         live.rtt_ms, live.in_bytes_per_s, live.out_bytes_per_s
    ///     );
    /// }
    /// ```
    pub fn live_stats(&self) -> impl Iterator<Item = (SocketAddr, LiveStats)> + '_ {
        let at = self.last_update;
        self.peers()
            .filter_map(move |(addr, c)| at.map(|at| (addr, c.live_stats(at))))
    }

    /// Queues a message to one peer, named by identity or address.
    pub fn send(
        &mut self,
        peer: impl Into<PeerRef>,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        self.endpoint
            .as_mut()
            .ok_or(SendError::NotConnected)?
            .send(peer, msg, delivery)
    }

    /// Queues a message to one peer on a channel of
    /// [`Config::channels`](crate::Config::channels); returns its handle
    /// (see [`ServerEndpoint::send_on`]).
    pub fn send_on(
        &mut self,
        peer: impl Into<PeerRef>,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        self.endpoint
            .as_mut()
            .ok_or(SendError::NotConnected)?
            .send_on(peer, channel, msg)
    }

    /// Queues a message to every connected peer, encoded once (legume's
    /// `send_message_to_all` and `send_reliable_message_to_all`); the result
    /// names the peers that could not take it (see
    /// [`ServerEndpoint::send_to_all`]).
    pub fn send_to_all(
        &mut self,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<Broadcast, SendError> {
        match &mut self.endpoint {
            Some(e) => e.send_to_all(msg, delivery),
            None => Ok(Broadcast::default()),
        }
    }

    /// [`send_to_all`](Self::send_to_all) but one peer.
    pub fn send_to_all_except(
        &mut self,
        except: impl Into<PeerRef>,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<Broadcast, SendError> {
        match &mut self.endpoint {
            Some(e) => e.send_to_all_except(except, msg, delivery),
            None => Ok(Broadcast::default()),
        }
    }

    /// Disconnects one peer with a reason.
    pub fn disconnect(&mut self, peer: impl Into<PeerRef>, reason: &str) {
        if let Some(e) = &mut self.endpoint {
            e.disconnect(peer, reason);
        }
        self.flush(Instant::now());
    }

    /// Disconnects every peer.
    pub fn disconnect_all(&mut self, reason: &str) {
        if let Some(e) = &mut self.endpoint {
            e.disconnect_all(reason);
        }
        self.flush(Instant::now());
    }

    /// The endpoint's counters (handshakes, invalid datagrams).
    pub fn stats(&self) -> EndpointStats {
        self.endpoint
            .as_ref()
            .map(ServerEndpoint::stats)
            .unwrap_or_default()
    }

    /// Datagrams and bytes the socket read and sent since `listen`.
    pub fn socket_stats(&self) -> SocketStats {
        self.socket_stats
    }

    /// Socket errors not tied to one peer, and the latest of them.
    pub fn io_errors(&self) -> (u64, Option<&IoError>) {
        (self.io_errors, self.last_io_error.as_ref())
    }

    /// The bound address, once listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Socket buffer sizes the OS granted, once listening.
    pub fn socket_buffers(&self) -> Option<BufferSizes> {
        self.socket.as_ref().map(|s| s.buffers)
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr())
            .field("peers", &self.peer_count())
            .field("accept_new", &self.accept_new)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening() -> Server {
        let mut server = Server::new(Arc::new(MessageFactory::new()), Config::default());
        server.listen("127.0.0.1:0").expect("loopback bind");
        server
    }

    #[test]
    fn udp_servers_key_their_cookies_from_the_operating_system() {
        let fingerprints: Vec<[u8; 16]> = (0..4)
            .map(|_| {
                let server = listening();
                let endpoint = server.endpoint.as_ref().expect("listening");
                endpoint.cookie_key_fingerprint()
            })
            .collect();
        for (i, a) in fingerprints.iter().enumerate() {
            for b in &fingerprints[i + 1..] {
                assert_ne!(a, b, "two servers share a cookie key");
            }
        }
    }
}
