//! The public face of channels: [`ChannelConfig`] (what `Config::channels`
//! lists), [`ChannelKind`], [`ChannelId`], the [`MessageHandle`] a send
//! returns, and the checks a channel list must pass
//! (`docs/PROTOCOL.md` section 4).

use std::time::Duration;

use thiserror::Error;

use crate::config::Protocol;

/// The most channels a connection may have.
pub const MAX_CHANNELS: usize = 32;

/// The guarantees of one channel.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ChannelKind {
    /// At most once, in any order; may be lost.
    Unreliable,
    /// At most once, and never older than a message already delivered on
    /// the channel: late messages are dropped (and counted as stale).
    UnreliableSequenced,
    /// Exactly once, in any order.
    Reliable,
    /// Exactly once, in the order sent on the channel.
    ReliableOrdered,
}

impl ChannelKind {
    /// Whether messages are resent until acknowledged.
    pub fn is_reliable(self) -> bool {
        matches!(self, ChannelKind::Reliable | ChannelKind::ReliableOrdered)
    }

    /// The kind byte of the handshake's channel list (`docs/PROTOCOL.md` 2.3).
    pub(crate) fn wire_byte(self) -> u8 {
        match self {
            ChannelKind::Unreliable => 0,
            ChannelKind::UnreliableSequenced => 1,
            ChannelKind::Reliable => 2,
            ChannelKind::ReliableOrdered => 3,
        }
    }

    /// The kind of a handshake kind byte, if it is one.
    pub(crate) fn from_wire_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => ChannelKind::Unreliable,
            1 => ChannelKind::UnreliableSequenced,
            2 => ChannelKind::Reliable,
            3 => ChannelKind::ReliableOrdered,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelKind::Unreliable => "unreliable",
            ChannelKind::UnreliableSequenced => "unreliable-sequenced",
            ChannelKind::Reliable => "reliable",
            ChannelKind::ReliableOrdered => "reliable-ordered",
        })
    }
}

/// A channel's id: its index in [`Config::channels`](crate::Config::channels).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ChannelId(pub u8);

impl ChannelId {
    /// Channel 0 of the default list: unreliable (`Delivery::Unreliable`).
    pub const UNRELIABLE: ChannelId = ChannelId(0);
    /// Channel 1 of the default list: reliable (`Delivery::Reliable`).
    pub const RELIABLE: ChannelId = ChannelId(1);
    /// Channel 2 of the default list: reliable-ordered (`Delivery::ReliableOrdered`).
    pub const ORDERED: ChannelId = ChannelId(2);
}

/// One message sent on a channel: the channel and the message's number on
/// it (0 for its first message, then 1, 2, ...). Returned by `send_on`, and
/// carried by [`Event::Acked`](crate::Event::Acked) and
/// [`Event::Lost`](crate::Event::Lost) on channels with feedback.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct MessageHandle {
    /// The channel it was sent on.
    pub channel: ChannelId,
    /// Its number on the channel.
    pub number: u64,
}

/// One channel of a connection (an entry of [`Config::channels`](crate::Config::channels)).
///
/// Start from [`ChannelConfig::new`] and override fields with struct update
/// syntax:
///
/// ```
/// use std::time::Duration;
/// use legume_net::{ChannelConfig, ChannelKind};
///
/// let snapshots = ChannelConfig {
///     lifetime: Some(Duration::from_millis(50)),
///     feedback: true,
///     ..ChannelConfig::new(ChannelKind::UnreliableSequenced)
/// };
/// assert_eq!(snapshots.weight, 1);
/// ```
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ChannelConfig {
    /// The channel's guarantees.
    pub kind: ChannelKind,
    /// Breaks ties in the scheduler: 0 is the most urgent. A channel that
    /// has just got something to send goes ahead of every channel of a
    /// higher number that is not behind its share. Default 0.
    pub priority: u8,
    /// The channel's share of the bytes sent while several channels have
    /// data, against the other channels' weights; at least 1. Default 1.
    pub weight: u16,
    /// Bytes the channel may hold queued or unacknowledged; a send past it
    /// returns `SendError::QueueFull`. Default 16 MiB.
    pub max_queued_bytes: usize,
    /// Unreliable kinds only: a message not sent within this long of being
    /// queued is dropped before it is sent, and counted. Default `None`
    /// (messages wait for the congestion window).
    pub lifetime: Option<Duration>,
    /// Report each message's fate as `Event::Acked` or (unreliable kinds)
    /// `Event::Lost`. Default off.
    pub feedback: bool,
}

impl ChannelConfig {
    /// A channel of `kind` with the default settings.
    pub const fn new(kind: ChannelKind) -> Self {
        ChannelConfig {
            kind,
            priority: 0,
            weight: 1,
            max_queued_bytes: 16 << 20,
            lifetime: None,
            feedback: false,
        }
    }

    /// The default channel list: 0 unreliable, 1 reliable, 2 reliable-ordered.
    pub fn defaults() -> Vec<ChannelConfig> {
        DEFAULT_KINDS
            .iter()
            .map(|&k| ChannelConfig::new(k))
            .collect()
    }
}

/// The kinds of the default channel list, in id order.
pub(crate) const DEFAULT_KINDS: [ChannelKind; 3] = [
    ChannelKind::Unreliable,
    ChannelKind::Reliable,
    ChannelKind::ReliableOrdered,
];

/// Why a channel list was refused.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum ChannelConfigError {
    /// The list has no channel.
    #[error("the channel list is empty")]
    Empty,
    /// The list has more than [`MAX_CHANNELS`] channels.
    #[error("{count} channels, more than the {max} allowed")]
    TooMany {
        /// Channels in the list.
        count: usize,
        /// [`MAX_CHANNELS`].
        max: usize,
    },
    /// A channel has weight 0.
    #[error("channel {0} has weight 0")]
    ZeroWeight(u8),
    /// A channel may hold no bytes at all.
    #[error("channel {0} has a queue limit of 0 bytes")]
    ZeroQueue(u8),
    /// A reliable channel has a lifetime; its messages are never dropped.
    #[error("channel {0} is reliable and cannot have a lifetime")]
    LifetimeOnReliable(u8),
    /// legume v4 mode carries only the default channel list, with the
    /// default settings and without feedback.
    #[error("legume v4 supports only the default channels (channel {0} differs)")]
    NotInLegumeV4(u8),
}

/// Checks a channel list for a connection speaking `protocol`.
pub(crate) fn validate(
    channels: &[ChannelConfig],
    protocol: Protocol,
) -> Result<(), ChannelConfigError> {
    if channels.is_empty() {
        return Err(ChannelConfigError::Empty);
    }
    if channels.len() > MAX_CHANNELS {
        return Err(ChannelConfigError::TooMany {
            count: channels.len(),
            max: MAX_CHANNELS,
        });
    }
    for (i, c) in channels.iter().enumerate() {
        // Invariant: at most MAX_CHANNELS (32) entries, so the index fits.
        let id = i as u8;
        if c.weight == 0 {
            return Err(ChannelConfigError::ZeroWeight(id));
        }
        if c.max_queued_bytes == 0 {
            return Err(ChannelConfigError::ZeroQueue(id));
        }
        if c.kind.is_reliable() && c.lifetime.is_some() {
            return Err(ChannelConfigError::LifetimeOnReliable(id));
        }
        if protocol == Protocol::LegumeV4 {
            let default = DEFAULT_KINDS
                .get(i)
                .map(|&k| ChannelConfig::new(k))
                .filter(|d| d.kind == c.kind && d.weight == c.weight);
            let plain = c.lifetime.is_none() && !c.feedback;
            if default.is_none() || !plain {
                return Err(ChannelConfigError::NotInLegumeV4(id));
            }
        }
    }
    if protocol == Protocol::LegumeV4 && channels.len() != DEFAULT_KINDS.len() {
        // Invariant: fewer than 3 channels here (more failed above).
        return Err(ChannelConfigError::NotInLegumeV4(channels.len() as u8));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_is_valid_everywhere() {
        let d = ChannelConfig::defaults();
        assert_eq!(validate(&d, Protocol::Native), Ok(()));
        assert_eq!(validate(&d, Protocol::LegumeV4), Ok(()));
    }

    #[test]
    fn bad_lists_are_refused_with_the_channel_named() {
        let mut c = ChannelConfig::defaults();
        assert_eq!(
            validate(&[], Protocol::Native),
            Err(ChannelConfigError::Empty)
        );
        let many = vec![ChannelConfig::new(ChannelKind::Reliable); 33];
        assert_eq!(
            validate(&many, Protocol::Native),
            Err(ChannelConfigError::TooMany { count: 33, max: 32 })
        );
        c[1].weight = 0;
        assert_eq!(
            validate(&c, Protocol::Native),
            Err(ChannelConfigError::ZeroWeight(1))
        );
        c[1].weight = 3;
        c[2].lifetime = Some(Duration::from_millis(5));
        assert_eq!(
            validate(&c, Protocol::Native),
            Err(ChannelConfigError::LifetimeOnReliable(2))
        );
        c[2].lifetime = None;
        c[0].max_queued_bytes = 0;
        assert_eq!(
            validate(&c, Protocol::Native),
            Err(ChannelConfigError::ZeroQueue(0))
        );
    }

    #[test]
    fn legume_v4_takes_only_the_default_list() {
        let mut c = ChannelConfig::defaults();
        c.push(ChannelConfig::new(ChannelKind::Reliable));
        assert_eq!(validate(&c, Protocol::Native), Ok(()));
        assert_eq!(
            validate(&c, Protocol::LegumeV4),
            Err(ChannelConfigError::NotInLegumeV4(3))
        );
        let mut c = ChannelConfig::defaults();
        c[0].feedback = true;
        assert_eq!(
            validate(&c, Protocol::LegumeV4),
            Err(ChannelConfigError::NotInLegumeV4(0))
        );
        let c = vec![ChannelConfig::new(ChannelKind::Unreliable)];
        assert_eq!(
            validate(&c, Protocol::LegumeV4),
            Err(ChannelConfigError::NotInLegumeV4(1))
        );
    }
}
