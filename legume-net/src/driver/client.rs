//! `Client`: one connection to a server over a UDP socket (legume's `Client`).

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory};
use thiserror::Error;

use super::batch::{RecvBatch, SendBatch};
use super::impairment::Impairment;
use super::socket::{is_would_block, random_u64, BufferSizes, DriverSocket};
use crate::channel::{ChannelId, MessageHandle};
use crate::config::Config;
use crate::connection::Connection;
use crate::delivery::Delivery;
use crate::event::{DisconnectReason, Event, IoError, SendError, State, Stats};
use crate::live::LiveStats;
use crate::secure::ConnectToken;
use crate::time::earliest;

/// Why [`Client::connect`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address did not parse or resolve.
    #[error("cannot resolve server address: {0}")]
    Resolve(#[source] io::Error),
    /// The address resolved to nothing.
    #[error("server address resolved to no address")]
    NoAddress,
    /// The client is already connecting or connected.
    #[error("already connecting or connected; disconnect first")]
    AlreadyConnected,
    /// The socket could not be created or connected.
    #[error("socket error: {0}")]
    Socket(#[source] io::Error),
    /// No server address has the family (IPv4 or IPv6) of the local address
    /// set with [`Client::set_local_addr`].
    #[error("no server address is of the local address {local}'s family")]
    AddressFamily {
        /// The local address the client is set to bind.
        local: SocketAddr,
    },
}

/// A client of a legume-rs server, driven by calling [`update`](Self::update)
/// every frame (or [`update_timeout`](Self::update_timeout) without a frame loop).
///
/// ```no_run
/// use std::sync::Arc;
/// use legume_core::MessageFactory;
/// use legume_net::{Client, Config, Event};
///
/// let mut client = Client::new(Arc::new(MessageFactory::new()), Config::default());
/// client.connect("127.0.0.1:9000")?;
/// for _frame in 0..600 {
///     client.update();
///     while let Some(event) = client.poll_event() {
///         match event {
///             Event::Connected => println!("connected"),
///             Event::Message(msg) => println!("got {msg:?}"),
///             Event::Disconnected(reason) => println!("gone: {reason:?}"),
///             other => println!("{other:?}"),
///         }
///     }
///     std::thread::sleep(std::time::Duration::from_millis(16));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    config: Config,
    factory: Arc<MessageFactory>,
    socket: Option<DriverSocket>,
    conn: Option<Connection>,
    server: Option<SocketAddr>,
    impairment: Option<Impairment>,
    events: VecDeque<Event>,
    /// The time of the last update, for `live_stats`.
    last_update: Option<Instant>,
    /// The address to bind at the next connect; `None` binds an ephemeral
    /// port of the unspecified address.
    local: Option<SocketAddr>,
    /// The current attempt's server addresses not tried yet, in order.
    untried: VecDeque<SocketAddr>,
    /// The current attempt's token, kept to try the next address with it.
    token: Option<ConnectToken>,
    /// The current server address failed the handshake (or the OS reported
    /// it unreachable): the update moves on to the next untried one.
    fail_over: bool,
    /// The current attempt's failure event, held back while another address
    /// is tried, and reported if none is left.
    held_failure: Option<Event>,
    /// Whether the app gave the client its socket (`use_socket`): every
    /// attempt then reuses it instead of binding a new one.
    uses_given_socket: bool,
    /// The app's socket while no attempt holds it in `socket`.
    given_socket: Option<DriverSocket>,
}

impl Client {
    /// A client that decodes with `factory` (shared, not copied).
    pub fn new(factory: Arc<MessageFactory>, config: Config) -> Self {
        Client {
            factory,
            socket: None,
            conn: None,
            server: None,
            impairment: None,
            events: VecDeque::new(),
            last_update: None,
            local: None,
            untried: VecDeque::new(),
            token: None,
            fail_over: false,
            held_failure: None,
            uses_given_socket: false,
            given_socket: None,
            config,
        }
    }

    /// Sets the local address the client's socket binds at the next
    /// [`connect`](Self::connect) (port 0 lets the OS pick one), for a chosen
    /// interface or a fixed port. Without it the client binds an ephemeral
    /// port of the unspecified address of the server's family. Server
    /// addresses of the other family are skipped.
    pub fn set_local_addr(&mut self, local: SocketAddr) {
        self.local = Some(local);
    }

    /// Connects from now on through a UDP socket the app bound itself (to
    /// set options legume-rs does not, or to get one from a launcher),
    /// instead of binding one per [`connect`](Self::connect). The client
    /// makes it non-blocking, points it at each server address it tries,
    /// and keeps it across attempts; its address decides which server
    /// addresses are tried (those of its family). Its buffer sizes are
    /// left as the app set them. Takes effect at the next `connect`.
    pub fn use_socket(&mut self, socket: std::net::UdpSocket) -> io::Result<()> {
        let local = socket.local_addr()?;
        let socket = DriverSocket::from_std(socket, self.config.driver.udp_offload)?;
        self.local = Some(local);
        self.uses_given_socket = true;
        self.given_socket = Some(socket);
        Ok(())
    }

    /// The app's socket for the next attempt, if it gave one: waiting, or
    /// taken back from the attempt before. An error if it was lost (an
    /// attempt failed after taking it), rather than quietly binding another.
    fn caller_socket(&mut self) -> io::Result<Option<DriverSocket>> {
        if !self.uses_given_socket {
            return Ok(None);
        }
        match self.given_socket.take().or_else(|| self.socket.take()) {
            Some(socket) => Ok(Some(socket)),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket given with use_socket was closed by a failed attempt",
            )),
        }
    }

    /// Starts connecting to a server. `addr` is anything `ToSocketAddrs`
    /// takes (`"host:port"`, `("host", port)`, a `SocketAddr`, a slice of
    /// them). Progress is reported by events.
    ///
    /// When `addr` resolves to several addresses (a name with both an IPv6
    /// and an IPv4 address, say), they are tried in order: the client moves
    /// on to the next when the operating system reports the current one
    /// unreachable (an ICMP "port unreachable") or when it does not answer
    /// the handshake within `Config::connect_timeout`. A rejection by a
    /// server is final. Only the last address's failure is reported.
    pub fn connect<A: ToSocketAddrs>(&mut self, addr: A) -> Result<(), ConnectError> {
        if self.conn.as_ref().is_some_and(|c| !c.is_closed()) {
            return Err(ConnectError::AlreadyConnected);
        }
        let servers: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(ConnectError::Resolve)?
            .collect();
        self.begin(servers, None)
    }

    /// Starts connecting in the secure mode (`docs/PROTOCOL.md` section 8)
    /// with a connect token from the game's backend. Every packet after the
    /// handshake is encrypted and authenticated; a refused token is reported
    /// as [`Event::Rejected`] with the reason where the server tells it
    /// (expired, wrong server), or as a connect timeout (forged).
    ///
    /// The token's server addresses are tried in order, as netcode.io
    /// clients do: the client moves on to the next when the current one is
    /// unreachable, does not answer within `Config::connect_timeout`, or
    /// rejects the token (a full server, say). Only the last address's
    /// failure is reported.
    pub fn connect_with_token(&mut self, token: &ConnectToken) -> Result<(), ConnectError> {
        if self.conn.as_ref().is_some_and(|c| !c.is_closed()) {
            return Err(ConnectError::AlreadyConnected);
        }
        self.begin(token.server_addresses().to_vec(), Some(token.clone()))
    }

    /// Starts an attempt over `servers` in order, skipping those of the
    /// wrong family for the local address, and those whose socket cannot be
    /// made (the last such error is returned when none can).
    fn begin(
        &mut self,
        servers: Vec<SocketAddr>,
        token: Option<ConnectToken>,
    ) -> Result<(), ConnectError> {
        if servers.is_empty() {
            return Err(ConnectError::NoAddress);
        }
        let mut untried: VecDeque<SocketAddr> = servers
            .into_iter()
            .filter(|a| self.local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
            .collect();
        if untried.is_empty() {
            return Err(ConnectError::AddressFamily {
                local: self.local.expect("only a local address filters"),
            });
        }
        self.token = token;
        self.fail_over = false;
        self.held_failure = None;
        let mut last_error = None;
        while let Some(server) = untried.pop_front() {
            match self.start(server) {
                Ok(()) => {
                    self.untried = untried;
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
        }
        self.untried.clear();
        self.token = None;
        Err(ConnectError::Socket(
            last_error.expect("at least one address was tried"),
        ))
    }

    /// Moves on to the next untried server address after the current one
    /// failed the handshake. Addresses whose socket cannot be made are
    /// reported as [`Event::Io`] and skipped; when none is left, the held
    /// failure is reported (or, after an unreachable report, the current
    /// attempt goes on until its own timeout).
    fn fail_over(&mut self) {
        self.fail_over = false;
        while let Some(server) = self.untried.pop_front() {
            tracing::debug!(peer = %server, "trying the next server address, {server}");
            match self.start(server) {
                Ok(()) => {
                    self.held_failure = None;
                    return;
                }
                Err(e) => self.events.push_back(Event::Io(IoError::from(&e))),
            }
        }
        if let Some(failure) = self.held_failure.take() {
            self.events.push_back(failure);
        } else if self.socket.is_none() && self.conn.as_ref().is_some_and(|c| !c.is_closed()) {
            // The fixed local port was let go for the next address and
            // could not be bound again: this attempt cannot go on.
            self.conn = None;
            self.events
                .push_back(Event::Disconnected(DisconnectReason::Local(
                    "no server address left to try and the local address could not be bound again"
                        .into(),
                )));
        }
    }

    fn start(&mut self, server: SocketAddr) -> io::Result<()> {
        let socket = match self.caller_socket()? {
            Some(socket) => {
                if let Err(e) = socket.connect(server) {
                    self.given_socket = Some(socket);
                    return Err(e);
                }
                socket
            }
            None => {
                if self.local.is_some_and(|l| l.port() != 0) {
                    // A fixed local port must be free before the next socket binds it.
                    self.socket = None;
                }
                DriverSocket::connect_to(self.local, server, self.config.driver.udp_offload)?
            }
        };
        let (config, factory, now) = (
            self.config.clone(),
            Arc::clone(&self.factory),
            Instant::now(),
        );
        let mut conn = match &self.token {
            Some(token) => {
                Connection::connect_with_token(config, factory, now, random_u64(), token)
            }
            None => Connection::connect(config, factory, now, random_u64()),
        };
        conn.set_peer_addr(server);
        tracing::debug!(peer = %server, protocol = ?self.config.protocol,
            secure = self.token.is_some(), local = ?socket.local_addr().ok(),
            "connecting to {server}");
        self.impairment = match &self.config.driver.conditioner {
            Some(c) => Some(Impairment::new(c, socket.local_addr()?)),
            None => None,
        };
        self.socket = Some(socket);
        self.conn = Some(conn);
        self.server = Some(server);
        self.last_update = Some(now);
        self.flush(now);
        Ok(())
    }

    /// Disconnects with no particular reason.
    pub fn disconnect(&mut self) {
        self.disconnect_with("client disconnected");
    }

    /// Disconnects, telling the server `reason`.
    pub fn disconnect_with(&mut self, reason: &str) {
        if let Some(conn) = &mut self.conn {
            conn.disconnect(reason);
        }
        self.flush(Instant::now());
    }

    /// Reads what arrived (up to `DriverConfig::recv_budget` datagrams), runs
    /// timers, sends what is due. Call once per frame, then drain
    /// [`poll_event`](Self::poll_event).
    pub fn update(&mut self) {
        let now = Instant::now();
        self.receive(now);
        if let Some(conn) = &mut self.conn {
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
        }
        self.flush(now);
        if self.fail_over {
            self.fail_over();
        }
        if let Some(conn) = &mut self.conn {
            conn.sample_stats(now);
        }
        self.last_update = Some(now);
    }

    /// Waits until a datagram arrives, a timer is due, or `max_wait` passes,
    /// then updates. For programs without a frame loop.
    pub fn update_timeout(&mut self, max_wait: Duration) {
        let now = Instant::now();
        let wait = self
            .poll_timeout()
            .map_or(max_wait, |t| t.saturating_duration_since(now).min(max_wait));
        if let Some(socket) = &self.socket {
            if let Err(e) = socket.wait_readable(wait) {
                self.events.push_back(Event::Io(IoError::from(&e)));
            }
        }
        self.update();
    }

    /// When the connection next needs an update even if nothing arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(
            self.conn.as_ref().and_then(Connection::poll_timeout),
            self.impairment.as_ref().and_then(Impairment::next_due),
        )
    }

    fn receive(&mut self, now: Instant) {
        let (Some(socket), Some(conn), Some(server)) = (&self.socket, &mut self.conn, self.server)
        else {
            return;
        };
        let (impairment, events) = (&mut self.impairment, &mut self.events);
        let may_fail_over = is_handshaking(conn) && !self.untried.is_empty();
        let fail_over = &mut self.fail_over;
        socket.receive(
            &mut RecvBatch::lend(socket.gro),
            self.config.driver.recv_budget,
            |bytes, _| match impairment {
                Some(imp) => imp.receive(now, server, bytes),
                None => conn.handle_datagram(now, bytes),
            },
            |e| {
                *fail_over |= may_fail_over && is_unreachable(&e);
                events.push_back(Event::Io(IoError::from(&e)));
            },
        );
        if let Some(imp) = &mut self.impairment {
            while let Some(d) = imp.due_incoming(now) {
                conn.handle_datagram(now, &d.bytes);
                imp.recycle_incoming(d.bytes);
            }
        }
    }

    fn flush(&mut self, now: Instant) {
        let (Some(socket), Some(conn), Some(server)) = (&self.socket, &mut self.conn, self.server)
        else {
            return;
        };
        let events = &mut self.events;
        let may_fail_over = is_handshaking(conn) && !self.untried.is_empty();
        let fail_over = &mut self.fail_over;
        let mut report = |_: Option<SocketAddr>, result: std::io::Result<usize>| {
            if let Err(e) = result {
                *fail_over |= may_fail_over && is_unreachable(&e);
                events.push_back(Event::Io(IoError::from(&e)));
            }
        };
        // Datagrams go out in batches of up to `BATCH` per system call. A
        // full socket buffer drops them: the protocol sees a loss and resends
        // reliable data; nothing more is written until the next update.
        let mut tx = SendBatch::lend(self.config.effective_mtu());
        while let Some(n) = conn.poll_transmit(now, tx.free_slot()) {
            if let Some(imp) = &mut self.impairment {
                imp.send(now, server, &tx.free_slot()[..n]);
                continue;
            }
            tx.commit(n, None);
            if tx.is_full() && socket.send_batch(&mut tx, &mut report) {
                break;
            }
        }
        if !tx.is_empty() {
            socket.send_batch(&mut tx, &mut report);
        }
        if let Some(imp) = &mut self.impairment {
            while let Some(d) = imp.due_outgoing(now) {
                if let Err(e) = socket.send(&d.bytes) {
                    if !is_would_block(&e) {
                        report(None, Err(e));
                    }
                }
                imp.recycle_outgoing(d.bytes);
            }
        }
        while let Some(e) = conn.poll_event() {
            if !self.untried.is_empty() && ends_attempt(&e, self.token.is_some()) {
                // Another address is left: try it before reporting this.
                self.held_failure = Some(e);
                self.fail_over = true;
            } else {
                self.events.push_back(e);
            }
        }
    }

    /// The next event, if any (drain after each update).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues a message with the chosen delivery.
    pub fn send(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> Result<(), SendError> {
        self.conn
            .as_mut()
            .ok_or(SendError::NotConnected)?
            .send(msg, delivery)
    }

    /// Queues a message on a channel of [`Config::channels`]; returns its
    /// handle (see [`Connection::send_on`](crate::Connection::send_on)).
    pub fn send_on(
        &mut self,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        self.conn
            .as_mut()
            .ok_or(SendError::NotConnected)?
            .send_on(channel, msg)
    }

    /// Queues an unreliable message (legume's `send_message`).
    pub fn send_message(&mut self, msg: &dyn AnyMessage) -> Result<(), SendError> {
        self.send(msg, Delivery::Unreliable)
    }

    /// Queues a reliable message (legume's `send_reliable_message`).
    pub fn send_reliable_message(&mut self, msg: &dyn AnyMessage) -> Result<(), SendError> {
        self.send(msg, Delivery::Reliable)
    }

    /// Queues a reliable, ordered message.
    pub fn send_ordered_message(&mut self, msg: &dyn AnyMessage) -> Result<(), SendError> {
        self.send(msg, Delivery::ReliableOrdered)
    }

    /// The connection's state; `Disconnected` before `connect`.
    pub fn state(&self) -> State {
        self.conn
            .as_ref()
            .map_or(State::Disconnected, Connection::state)
    }

    /// Whether the state is `Connected`.
    pub fn connected(&self) -> bool {
        self.state() == State::Connected
    }

    /// Whether the state is `Disconnected`.
    pub fn disconnected(&self) -> bool {
        self.state() == State::Disconnected
    }

    /// Whether the state is `Errored` (a timeout).
    pub fn errored(&self) -> bool {
        self.state() == State::Errored
    }

    /// Always false: this is the client (legume's `is_server`).
    pub fn is_server(&self) -> bool {
        false
    }

    /// The connection's metrics (all zero before `connect`).
    pub fn stats(&self) -> Stats {
        self.conn
            .as_ref()
            .map(Connection::stats)
            .unwrap_or_default()
    }

    /// The connection's metrics with rates over the last
    /// [`Config::stats_window`] (one second by default), as of the last
    /// [`update`](Self::update); all zero before `connect`.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use legume_net::{Client, Config};
    /// # let client = Client::new(Arc::new(legume_core::MessageFactory::new()), Config::default());
    /// let live = client.live_stats();
    /// println!(
    ///     "rtt {:.0} ms, loss {:.1}%, in {:.0} B/s, out {:.0} B/s, {:.1} resends/s",
    ///     live.rtt_ms,
    ///     live.packet_loss * 100.0,
    ///     live.in_bytes_per_s,
    ///     live.out_bytes_per_s,
    ///     live.resends_per_s
    /// );
    /// ```
    pub fn live_stats(&self) -> LiveStats {
        match (&self.conn, self.last_update) {
            (Some(conn), Some(at)) => conn.live_stats(at),
            _ => LiveStats::default(),
        }
    }

    /// Round-trip latency in milliseconds (legume's `latency`).
    pub fn latency(&self) -> f64 {
        self.stats().latency_ms
    }

    /// The server's address, once `connect` was called.
    pub fn server_addr(&self) -> Option<SocketAddr> {
        self.server
    }

    /// The local socket address, once `connect` was called.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Socket buffer sizes the OS granted, once `connect` was called.
    pub fn socket_buffers(&self) -> Option<BufferSizes> {
        self.socket.as_ref().map(|s| s.buffers)
    }
}

/// Whether the connection is still in its handshake.
fn is_handshaking(conn: &Connection) -> bool {
    !conn.is_connected() && !conn.is_closed()
}

/// Whether a socket error says the server address is unreachable (an ICMP
/// "port unreachable" on a connected socket, or no route).
fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// Whether `event` ends a connection attempt that another server address
/// may still rescue: no answer in time, or, with a token (whose servers are
/// interchangeable, as in netcode.io), a rejection.
fn ends_attempt(event: &Event, with_token: bool) -> bool {
    match event {
        Event::Disconnected(DisconnectReason::ConnectTimedOut) => true,
        Event::Rejected { .. } => with_token,
        _ => false,
    }
}
