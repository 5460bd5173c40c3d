//! Connection and endpoint configuration, with legume's defaults.

use std::time::Duration;

use crate::channel::{self, ChannelConfig, ChannelConfigError};
use crate::sim::Conditioner;

/// Settings shared by a client and a server; `Config::default()` gives
/// legume's values where legume has one.
///
/// The knobs a game tunes most sit at the top; the rest are grouped by who
/// reads them, as quinn splits its configs: [`Limits`] (what one peer may
/// make a connection hold), [`CongestionConfig`] (how fast a connection
/// sends), [`ServerConfig`] (the server endpoint's handshake) and
/// [`DriverConfig`] (the UDP driver). Override fields with struct update
/// syntax, at either level:
///
/// ```
/// use std::time::Duration;
/// use legume_net::{Config, Limits};
///
/// let config = Config {
///     mtu: 1200,
///     timeout: Duration::from_secs(5),
///     limits: Limits { max_message_size: 64 << 10, ..Limits::default() },
///     ..Config::default()
/// };
/// assert_eq!(config.limits.max_send_queue_bytes, Limits::default().max_send_queue_bytes);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The wire protocol: legume-rs's own (default) or legume 0.5's, to talk
    /// to Python legume programs (`docs/LEGUME_COMPAT.md`). Both ends of a
    /// connection must use the same one.
    pub protocol: Protocol,
    /// App protocol id carried in the handshake; a server drops requests for
    /// another id, so two games sharing a port never connect. Default 0.
    pub protocol_id: u64,
    /// Largest UDP payload sent, in bytes. Default 1400 (legume's `MTU`);
    /// at least 576.
    pub mtu: usize,
    /// A connection with nothing received for this long closes with
    /// `TimedOut`. Default 10 s (legume's `timeout`).
    pub timeout: Duration,
    /// A client whose handshake has not completed after this long gives up
    /// with `ConnectTimedOut`. Default 10 s.
    pub connect_timeout: Duration,
    /// Delay between handshake packets while connecting: the client resends
    /// its current handshake packet at this fixed rate (no backoff, as
    /// netcode.io does) until it is answered or `connect_timeout` passes, so
    /// that even at 50% loss each way a handshake round trip gets many
    /// tries. Never shorter than 10 ms, whatever is set (a dead server gets
    /// at most 100 packets a second). Default 100 ms: 10 a second.
    pub connect_retry: Duration,
    /// A PING is sent when nothing ack-eliciting was sent for this long; it
    /// keeps the connection alive and samples the RTT. Default 2 s (legume's
    /// ping interval). Never longer than a fifth of `timeout` in effect (the
    /// defaults' ratio), so an idle connection is kept alive whatever the
    /// two are set to.
    pub ping_interval: Duration,
    /// Longest wait before acking received data when there is nothing to
    /// send back. Default 5 ms.
    pub max_ack_delay: Duration,
    /// RTT assumed before the first sample. Default 100 ms.
    pub initial_rtt: Duration,
    /// The sliding window of the rates in [`LiveStats`](crate::LiveStats)
    /// (bytes, packets and messages per second). A connection samples its
    /// counters at most every tenth of it, as they change. Default 1 s.
    pub stats_window: Duration,
    /// The connection's channels, in id order (`docs/PROTOCOL.md` section
    /// 4): each its own stream, with its kind, share of the bandwidth, queue
    /// limit, lifetime and feedback. Both ends must have the same kinds in
    /// the same order (the handshake refuses a mismatch). Default
    /// [`ChannelConfig::defaults`]: 0 unreliable, 1 reliable, 2
    /// reliable-ordered, which the [`Delivery`](crate::Delivery) sends use.
    pub channels: Vec<ChannelConfig>,
    /// What one peer may make a connection hold.
    pub limits: Limits,
    /// The rate controller and the bounds of the window and rate.
    pub congestion: CongestionConfig,
    /// The server endpoint's handshake; a client ignores it.
    pub server: ServerConfig,
    /// The UDP driver (`Client` and `Server`); the sans-IO core ignores it.
    pub driver: DriverConfig,
}

/// Bytes and sizes one connection may hold, so that no peer can grow a
/// process's memory without bound (a field of [`Config`]).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Limits {
    /// Largest message accepted by `send` or reassembled, in bytes. Default 1 MiB.
    pub max_message_size: usize,
    /// Bytes of messages a connection may hold queued or unacked; `send`
    /// past it returns `QueueFull`. Default 16 MiB.
    pub max_send_queue_bytes: usize,
    /// Bytes a connection may hold in partly received fragmented messages.
    /// Default 4 MiB. Keep it at least `max_message_size` times the number
    /// of reliable channels: each reliable channel keeps at most its share
    /// of this in flight past its oldest unacked message
    /// (`docs/PROTOCOL.md` 5, "Byte window"), assuming the peer is
    /// configured alike, but that oldest message may always go.
    pub max_reassembly_bytes: usize,
    /// Bytes of complete ordered messages a connection may hold while they
    /// wait for an earlier one; a peer that makes it overflow is
    /// disconnected with `LimitExceeded`. Default 16 MiB.
    pub max_reorder_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 1 << 20,
            max_send_queue_bytes: 16 << 20,
            max_reassembly_bytes: 4 << 20,
            max_reorder_bytes: 16 << 20,
        }
    }
}

/// How fast a connection sends: its rate controller, the bounds of its
/// congestion window and of its rate (a field of [`Config`];
/// `docs/PROTOCOL.md` section 5).
///
/// ```
/// use legume_net::{Config, CongestionConfig, CongestionController};
///
/// // At most 256 KiB/s per connection, whatever the link could carry.
/// let config = Config {
///     congestion: CongestionConfig { max_rate: Some(256 << 10), ..CongestionConfig::default() },
///     ..Config::default()
/// };
/// assert_eq!(config.congestion.controller, CongestionController::NewReno);
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct CongestionConfig {
    /// The rate controller. Default [`CongestionController::NewReno`] for
    /// now: [`CongestionController::Bbr`] keeps its throughput under random
    /// loss (Wi-Fi, mobile) where NewReno collapses to its floor, but still
    /// costs up to half the echo rate of many connections on a clean link
    /// (`docs/PERFORMANCE.md`); it becomes the default once that is fixed.
    pub controller: CongestionController,
    /// Upper bound of the congestion window, in bytes. Default 4 MiB; in
    /// effect never above 960 datagrams, what the 1024-packet sent ring can
    /// track in flight.
    pub max_window: usize,
    /// Lower bound of the congestion window, in bytes (at least 2 × MTU),
    /// for either controller. Loss on game networks is often random rather
    /// than congestion, so NewReno's window never shrinks below this: about
    /// 16 datagrams per round trip. Default 22,400 (16 × 1400).
    pub min_window: usize,
    /// Most bytes per second the connection sends (UDP payload), like
    /// renet's bandwidth budget: it caps the pacing rate of either
    /// controller. Default `None` (no cap).
    pub max_rate: Option<u64>,
    /// Bytes per second the BBR controller's pacing rate never falls below,
    /// and its window never below this rate times the smoothed RTT: for a
    /// stream the game needs whatever the estimate says. A floor above the
    /// bottleneck's rate defeats congestion control. Default 0 (none).
    pub min_rate: u64,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        CongestionConfig {
            controller: CongestionController::NewReno,
            max_window: 4 << 20,
            min_window: 16 * MTU,
            max_rate: None,
            min_rate: 0,
        }
    }
}

/// Which rate controller a connection uses (`docs/PROTOCOL.md` section 5).
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum CongestionController {
    /// Model-based, after BBR: paces at the measured bottleneck bandwidth
    /// and keeps about two bandwidth-delay products in flight. Random loss
    /// does not slow it; loss with a standing queue does. Choose it for
    /// lossy links.
    Bbr,
    /// NewReno (RFC 9002 section 7): halves the window on every loss
    /// event, down to `min_window`; unpaced unless `max_rate` is set. The
    /// default.
    #[default]
    NewReno,
}

/// What a server endpoint checks and allows during handshakes (a field of
/// [`Config`]; a client ignores it).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ServerConfig {
    /// Refuse a client whose message schema (its factory's
    /// [`fingerprint`](legume_core::MessageFactory::fingerprint), sent in the
    /// handshake) differs from the server's, with a reason naming the
    /// messages that differ. Default true; turn it off when clients
    /// legitimately register other messages than the server. Native
    /// protocol only (legume v4 has no room for it).
    pub check_schema: bool,
    /// How long a server accepts a challenge cookie. Default 10 s.
    pub challenge_lifetime: Duration,
    /// Handshake packets (connect requests and challenge responses) a server
    /// answers per source IP address per second; more are dropped and
    /// counted. Default 256 (players behind one NAT share an address).
    pub connect_rate_per_source: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            check_schema: true,
            challenge_lifetime: Duration::from_secs(10),
            connect_rate_per_source: 256,
        }
    }
}

/// Settings of the UDP driver, `Client` and `Server` (a field of
/// [`Config`]; the sans-IO core ignores it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriverConfig {
    /// The most datagrams one `update()` reads, so that a peer flooding the
    /// socket cannot starve the frame loop (legume 0.5 reads until the
    /// socket is empty). Default 4096.
    pub recv_budget: usize,
    /// Linux: let the kernel split runs of equal-sized datagrams to one peer
    /// from one buffer (GSO, `UDP_SEGMENT`) and coalesce received ones (GRO,
    /// `UDP_GRO`), which saves most of the per-datagram cost of the network
    /// stack. Used only where the kernel supports it; the datagrams on the
    /// wire are the same either way. Default `true`.
    pub udp_offload: bool,
    /// Simulated loss, duplication, latency, jitter and reordering applied
    /// to this endpoint's real traffic, for watching the protocol under bad
    /// conditions. Default `None` (off).
    pub conditioner: Option<Conditioner>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            recv_budget: 4096,
            udp_offload: true,
            conditioner: None,
        }
    }
}

/// The default largest UDP payload, in bytes, as in legume.
pub const MTU: usize = 1400;

/// The shortest delay between a client's handshake packets, whatever
/// [`Config::connect_retry`] says.
const MIN_CONNECT_RETRY: Duration = Duration::from_millis(10);

/// Keep-alives sent per idle timeout, at least.
const KEEPALIVES_PER_TIMEOUT: u32 = 5;

/// The shortest keep-alive interval, whatever the config says.
const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(1);

/// The wire protocol a connection speaks.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum Protocol {
    /// legume-rs's protocol (`docs/PROTOCOL.md`): packet acks, fragmentation,
    /// congestion control, a stateless cookie handshake.
    #[default]
    Native,
    /// Python legume 0.5's protocol (its `PROTOCOL_VERSION` 4), for talking
    /// to legume programs: no fragmentation (a message must fit in one
    /// datagram), no address proof in the handshake, no rejection reason
    /// (`docs/LEGUME_COMPAT.md` lists every difference).
    LegumeV4,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: Protocol::Native,
            protocol_id: 0,
            mtu: MTU,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            connect_retry: Duration::from_millis(100),
            ping_interval: Duration::from_secs(2),
            max_ack_delay: Duration::from_millis(5),
            initial_rtt: Duration::from_millis(100),
            stats_window: Duration::from_secs(1),
            channels: ChannelConfig::defaults(),
            limits: Limits::default(),
            congestion: CongestionConfig::default(),
            server: ServerConfig::default(),
            driver: DriverConfig::default(),
        }
    }
}

impl Config {
    /// The smallest MTU accepted.
    pub const MIN_MTU: usize = 576;

    /// The largest MTU used, whatever is configured: frame lengths fit in
    /// two varint bytes. A datagram longer than this is invalid.
    pub const MAX_MTU: usize = 16_384;

    /// Checks what a connection cannot run with: the channel list (empty,
    /// too long, a weight or queue limit of 0, a lifetime on a reliable
    /// channel, or, in legume v4 mode, anything but the default list). A connection made with a config that fails closes at once
    /// with [`DisconnectReason::InvalidConfig`](crate::DisconnectReason::InvalidConfig).
    pub fn validate(&self) -> Result<(), ChannelConfigError> {
        channel::validate(&self.channels, self.protocol)
    }

    /// The MTU actually used: the configured one, at least [`Config::MIN_MTU`]
    /// and at most [`Config::MAX_MTU`].
    pub(crate) fn effective_mtu(&self) -> usize {
        self.mtu.clamp(Self::MIN_MTU, Self::MAX_MTU)
    }

    /// The delay between a client's handshake packets: `connect_retry`, at
    /// least [`MIN_CONNECT_RETRY`], so the rate a server (maybe a dead one)
    /// receives them at stays bounded.
    pub(crate) fn effective_connect_retry(&self) -> Duration {
        self.connect_retry.max(MIN_CONNECT_RETRY)
    }

    /// The keep-alive interval actually used: `ping_interval`, but at most a
    /// fifth of `timeout`, the defaults' ratio (2 s and 10 s), so that an
    /// idle, healthy connection times out only if five keep-alives in a row
    /// and the acks of the peer's are all lost, whatever the two are set
    /// to. (A third does on a clean link, but in the simulated tests a
    /// 300 ms timeout at 10% loss each way then ended an idle connection
    /// after 44 s: three lost in a row.) At
    /// least 1 ms, so that a zero setting cannot make a connection send
    /// pings in a loop.
    pub(crate) fn keepalive_interval(&self) -> Duration {
        self.ping_interval
            .min(self.timeout / KEEPALIVES_PER_TIMEOUT)
            .max(MIN_KEEPALIVE_INTERVAL)
    }
}
