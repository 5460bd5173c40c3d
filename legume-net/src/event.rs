//! What a connection reports to the app: events, reasons, errors, state and metrics.

use legume_core::{AnyMessage, DecodeError, EncodeError};
use thiserror::Error;

use crate::channel::{ChannelConfigError, ChannelKind, MessageHandle};
use crate::delivery::Delivery;

/// Something that happened on a connection, drained with `poll_event`.
///
/// One variant per legume event: `Connected` is `OnConnectRequestAccepted`,
/// `Rejected` is `OnConnectRequestRejected`, `Message` is `OnMessage`,
/// `Disconnected` is `OnDisconnect` (and, for timeouts, `OnError`), and
/// `Error` is `OnError` for a fault the connection survives.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; messages can flow.
    Connected,
    /// The server refused the connection, with its reason.
    Rejected {
        /// The reason the server's app gave.
        reason: String,
    },
    /// A message arrived (exactly once for reliable deliveries).
    Message(Box<dyn AnyMessage>),
    /// The connection ended.
    Disconnected(DisconnectReason),
    /// A received message was dropped; the connection goes on.
    Error(MessageError),
    /// A message sent on a channel with feedback arrived: every fragment of
    /// a reliable message, or the packet of an unreliable one, was
    /// acknowledged (`docs/PROTOCOL.md` 4, "Delivery feedback"). At most one
    /// `Acked` or `Lost` per handle.
    Acked(MessageHandle),
    /// An unreliable message sent on a channel with feedback will not be
    /// acknowledged: its packet was declared lost, or it was dropped for its
    /// lifetime before being sent. It may still have arrived (a loss can be
    /// spurious), but it is never reported `Acked` after this.
    Lost(MessageHandle),
    /// The socket reported an error (UDP driver only), such as an ICMP
    /// "port unreachable" surfacing as connection refused. The connection
    /// goes on; if the peer is really gone it times out.
    Io(IoError),
}

/// A socket error, kept as its kind and text so that events stay `Clone`-free of OS handles.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct IoError {
    /// The error's kind.
    pub kind: std::io::ErrorKind,
    /// The error's text.
    pub message: String,
}

impl From<&std::io::Error> for IoError {
    fn from(e: &std::io::Error) -> Self {
        IoError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

/// Why a connection ended.
///
/// Its `Display` is a sentence for logs and players ("timed out: nothing
/// received from the peer"); as an `Error` it lets a failed connection
/// travel through `?` and `Box<dyn Error>`.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// This side called `disconnect`.
    #[error("disconnected locally: {0}")]
    Local(String),
    /// The peer disconnected, with its reason.
    #[error("disconnected by the peer: {0}")]
    Remote(String),
    /// Nothing arrived from the peer within the timeout.
    #[error("timed out: nothing received from the peer within the timeout")]
    TimedOut,
    /// The server never answered the handshake within the connect timeout.
    #[error("connect timed out: the server did not answer the handshake")]
    ConnectTimedOut,
    /// The peer made this side pass one of its memory limits (named), which
    /// a correct peer does not do; the connection was closed.
    #[error("closed: the peer passed a memory limit ({0})")]
    LimitExceeded(String),
    /// The connection's config failed [`Config::validate`](crate::Config::validate):
    /// it was closed as soon as it was made.
    #[error("invalid config: {0}")]
    InvalidConfig(ChannelConfigError),
}

impl DisconnectReason {
    /// Whether the connection ended in error (legume's `ERRORED` state).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            DisconnectReason::TimedOut | DisconnectReason::ConnectTimedOut
        )
    }
}

/// Why a received message was dropped.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum MessageError {
    /// The bytes did not decode (for example an unregistered type id).
    #[error("undecodable message: {0}")]
    Decode(#[from] DecodeError),
    /// A fragmented message exceeded `max_message_size`.
    #[error("fragmented message is over the maximum message size")]
    TooLarge,
    /// Reassembly would exceed `max_reassembly_bytes`.
    #[error("reassembly buffer is full")]
    ReassemblyFull,
    /// Fragments of one message disagreed about their count.
    #[error("inconsistent fragments")]
    BadFragment,
}

/// Why `send` refused a message. Nothing was queued.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not connected (not yet, or no longer).
    #[error("not connected")]
    NotConnected,
    /// The message is longer than `max_message_size`, or an unreliable
    /// message does not fit in one packet.
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit for this delivery kind.
        max: usize,
    },
    /// The send queue is full (`max_send_queue_bytes`).
    #[error("send queue is full ({queued} bytes queued, limit {max})")]
    QueueFull {
        /// Bytes already queued.
        queued: usize,
        /// The configured limit.
        max: usize,
    },
    /// The message could not be encoded.
    #[error("message does not encode: {0}")]
    Encode(#[from] EncodeError),
    /// No channel has this id.
    #[error("no channel {channel} (the connection has {count})")]
    UnknownChannel {
        /// The id asked for.
        channel: u8,
        /// The connection's channels.
        count: usize,
    },
    /// The channel list has no channel of the kind this delivery sends on.
    #[error("no channel of the kind {0:?} sends on")]
    NoChannel(Delivery),
}

/// A connection's state (legume's endpoint states).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum State {
    /// The handshake is in progress.
    Connecting,
    /// Messages flow.
    Connected,
    /// Closed normally, refused, or never connected.
    Disconnected,
    /// Closed by a timeout.
    Errored,
}

/// A connection's metrics, all measured (legume's `Metrics` and more).
///
/// The counters are cumulative since the connection began; [`LiveStats`](crate::LiveStats)
/// turns them into rates over a sliding window.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// Smoothed round-trip time in milliseconds (legume's `latency`).
    pub latency_ms: f64,
    /// Round-trip time variation in milliseconds (RFC 6298 `rttvar`), a jitter measure.
    pub latency_variation_ms: f64,
    /// Packets declared lost over packets sent, recent-weighted (0 to 1).
    pub packet_loss: f64,
    /// UDP payload bytes received.
    pub in_bytes: u64,
    /// UDP payload bytes sent.
    pub out_bytes: u64,
    /// Valid packets received.
    pub in_packets: u64,
    /// Packets sent.
    pub out_packets: u64,
    /// Messages delivered to the app.
    pub in_messages: u64,
    /// Messages accepted by `send`.
    pub out_messages: u64,
    /// Message (or fragment) retransmissions.
    pub resends: u64,
    /// Reliable messages sent and not yet acked.
    pub pending_acks: usize,
    /// Bytes queued to send or sent and awaiting an ack.
    pub out_buffer_bytes: usize,
    /// Keep-alive pings sent plus received.
    pub keepalive_count: u64,
    /// Ordered messages received early, waiting for earlier ones.
    pub reorder_queue: usize,
    /// Bytes held for partly received fragmented messages, as charged to
    /// `Limits::max_reassembly_bytes`.
    pub reassembly_bytes: usize,
    /// Datagrams dropped as invalid (bad header, bad frames, wrong session,
    /// or a sequence number beyond the 4,096-packet sequence window that no
    /// correct peer sends: `docs/PROTOCOL.md` 4).
    pub dropped_invalid: u64,
    /// Packets dropped as duplicates or too old.
    pub dropped_duplicate: u64,
    /// Secure mode: packets that failed authentication (forged, corrupted,
    /// or sealed with another key), dropped unread.
    pub dropped_unauthenticated: u64,
    /// Frames dropped inside otherwise valid packets: message ids outside
    /// the receive window, which a correct peer never sends.
    pub dropped_frames: u64,
    /// Packets declared lost (not counting those later acked after all).
    pub lost_packets: u64,
    /// Packets declared lost and then acked: reordering, not loss. Each
    /// widens the loss-detection thresholds and undoes the window cut.
    pub spurious_losses: u64,
    /// The congestion window in bytes.
    pub congestion_window: usize,
    /// Bytes in flight (sent, neither acked nor lost).
    pub bytes_in_flight: usize,
    /// The rate controller's estimate of the path's bottleneck bandwidth,
    /// in bytes per second (0 before the first round trip, and always 0
    /// with NewReno, which keeps none).
    pub bandwidth_estimate: u64,
    /// The rate DATA packets are paced at, in bytes per second (0 when
    /// unpaced: NewReno without `max_rate`).
    pub pacing_rate: u64,
    /// The smallest round-trip time measured recently (BBR: within 10 s),
    /// in milliseconds; 0 before the first sample.
    pub min_rtt_ms: f64,
    /// legume v4 mode: reliable messages whose ack the peer is proved to
    /// have lost (a Pong to a Ping sent after the message's last copy came
    /// back first). legume 0.5 acks a message once and never again, so the
    /// message ids then move on, and a legume 0.5 peer may deliver such a
    /// message twice once its memory of 1,000 ids has passed it. Always 0
    /// in native mode.
    pub lost_acks: u64,
    /// legume v4 mode: copies sent of the messages counted in `lost_acks`,
    /// after their ack was proved lost. A legume 0.5 peer delivers a message
    /// a second time only from such a copy (every other copy arrives while
    /// the message is still among the ids it remembers), so it delivers at
    /// most this many duplicates. Always 0 in native mode.
    pub lost_ack_resends: u64,
    /// Each channel's counters, in id order (`Config::channels`); empty
    /// in legume v4 mode.
    pub channels: Vec<ChannelStats>,
}

/// One channel's counters (an entry of [`Stats::channels`]).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ChannelStats {
    /// The channel's kind.
    pub kind: ChannelKind,
    /// Messages queued that have not been sent in full once.
    pub queued_messages: usize,
    /// Bytes the channel holds queued or (reliable kinds) sent and not yet
    /// acked, as charged to its `max_queued_bytes`.
    pub queued_bytes: usize,
    /// Messages sent (in full, the first time).
    pub sent: u64,
    /// Messages received on the channel and delivered to the app.
    pub delivered: u64,
    /// Unreliable kinds: messages dropped before sending for their lifetime.
    pub dropped_lifetime: u64,
    /// Unreliable-sequenced: messages received older than one delivered,
    /// and dropped.
    pub dropped_stale: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error> {
        Box::new(e)
    }

    #[test]
    fn disconnect_reasons_are_errors_that_say_why() {
        let cases = [
            (
                DisconnectReason::Local("bye".into()),
                "disconnected locally: bye",
            ),
            (
                DisconnectReason::Remote("kicked".into()),
                "disconnected by the peer: kicked",
            ),
            (
                DisconnectReason::TimedOut,
                "timed out: nothing received from the peer within the timeout",
            ),
            (
                DisconnectReason::ConnectTimedOut,
                "connect timed out: the server did not answer the handshake",
            ),
            (
                DisconnectReason::LimitExceeded("reorder buffer".into()),
                "closed: the peer passed a memory limit (reorder buffer)",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(as_error(reason).to_string(), text);
        }
    }

    #[test]
    fn io_errors_are_errors() {
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let io = IoError::from(&e);
        assert_eq!(io.kind, std::io::ErrorKind::ConnectionRefused);
        assert_eq!(as_error(io).to_string(), "refused");
    }
}
