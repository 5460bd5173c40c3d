//! Channels on the simulated link (`docs/PROTOCOL.md` section 4): no
//! head-of-line blocking across channels, sequenced delivery that never
//! goes backwards, lifetimes that bound the age of snapshots on a link
//! slower than the offered rate, weighted fairness between two reliable
//! channels, delivery feedback exactly once per handle, and the channel
//! list in the handshake. Each test has a fixed seed and runs in a second
//! or two of a debug build; the figures they print are the ones in
//! `docs/CHANNELS.md`.

#[path = "../util/mod.rs"]
mod util;

mod feedback;
mod link;
mod scheduling;
mod setup;

use legume_net::{ChannelConfig, ChannelKind, Event};

use util::Num;

/// A message's number is `channel * CHANNEL_BASE + i`.
pub const CHANNEL_BASE: u32 = 1_000_000;

/// A `Num` of `len` encoded bytes or more, numbered `i` on `channel`.
pub fn msg(channel: u8, i: u32, len: usize) -> Num {
    Num {
        n: u32::from(channel) * CHANNEL_BASE + i,
        // Type id 1, `n` 4, the vector's varint count 1 or 2.
        pad: vec![0xA5; len.saturating_sub(7)],
    }
}

/// The numbers of the `Num` messages in `events`, with their times.
pub fn nums<'a>(
    events: impl IntoIterator<Item = &'a (std::time::Instant, Event)>,
) -> Vec<(std::time::Instant, u32)> {
    events
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::Message(m) => m.downcast_ref::<Num>().map(|m| (*t, m.n)),
            _ => None,
        })
        .collect()
}

/// A channel list: the default three, then `extra`.
pub fn channels_with(extra: &[ChannelConfig]) -> Vec<ChannelConfig> {
    let mut c = ChannelConfig::defaults();
    c.extend_from_slice(extra);
    c
}

/// A channel of `kind` with default settings.
pub fn ch(kind: ChannelKind) -> ChannelConfig {
    ChannelConfig::new(kind)
}
