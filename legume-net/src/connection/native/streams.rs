//! The native engine's message channels, allocated on first use: the send
//! side (`Outbound`) when the app first sends, the receive side
//! (`Inbound`) when the first message frame arrives. A connection that only
//! keeps alive holds neither (about 600 bytes less per idle peer); once
//! allocated they stay, since their message ids carry on.

use crate::channel::{Reassembly, RecvChannel, SendChannel, UnreliableQueue};
use crate::config::Config;
use crate::packet::Channel;
use crate::recovery::Outcome;

/// The send side: the reliable and ordered channels and the unreliable queue.
pub(super) struct Outbound {
    pub(super) reliable: SendChannel,
    pub(super) ordered: SendChannel,
    pub(super) unreliable: UnreliableQueue,
}

/// The receive side: the reliable and ordered channels and their shared
/// reassembly budget.
pub(super) struct Inbound {
    pub(super) reliable: RecvChannel,
    pub(super) ordered: RecvChannel,
    pub(super) reassembly: Reassembly,
}

impl Outbound {
    /// The send side in `slot`, created there if it is not yet.
    pub(super) fn get<'a>(
        slot: &'a mut Option<Box<Outbound>>,
        config: &Config,
        frag_size: usize,
    ) -> &'a mut Outbound {
        slot.get_or_insert_with(|| {
            // Half the peer's buffers (assumed configured like ours): what
            // is in flight past the oldest unacked message always fits at
            // the receiver.
            let byte_window = config
                .limits
                .max_reassembly_bytes
                .min(config.limits.max_reorder_bytes)
                / 2;
            Box::new(Outbound {
                reliable: SendChannel::new(Channel::Reliable, frag_size, byte_window),
                ordered: SendChannel::new(Channel::Ordered, frag_size, byte_window),
                unreliable: UnreliableQueue::default(),
            })
        })
    }

    /// Bytes queued or awaiting an ack.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.reliable.buffered_bytes()
            + self.ordered.buffered_bytes()
            + self.unreliable.buffered_bytes()
    }

    /// Whether anything waits for a packet.
    pub(super) fn has_sendable(&self) -> bool {
        !self.unreliable.is_empty() || self.reliable.has_sendable() || self.ordered.has_sendable()
    }

    /// Hands an acked or lost message part back to its channel.
    pub(super) fn apply(&mut self, o: Outcome) {
        let (r, lost_in) = match o {
            Outcome::Acked(r) => (r, None),
            Outcome::Lost(seq, r) => (r, Some(seq)),
        };
        let ch = match r.channel {
            Channel::Reliable => &mut self.reliable,
            Channel::Ordered => &mut self.ordered,
        };
        match lost_in {
            None => ch.on_acked(r.id, r.frag),
            Some(seq) => ch.on_lost(r.id, r.frag, seq),
        }
    }
}

impl Inbound {
    /// The receive side in `slot`, created there if it is not yet.
    pub(super) fn get<'a>(slot: &'a mut Option<Box<Inbound>>, config: &Config) -> &'a mut Inbound {
        slot.get_or_insert_with(|| {
            Box::new(Inbound {
                reliable: RecvChannel::new(false, 0),
                ordered: RecvChannel::new(true, config.limits.max_reorder_bytes),
                reassembly: Reassembly {
                    max_message_size: config.limits.max_message_size,
                    max_bytes: config.limits.max_reassembly_bytes,
                    in_use: 0,
                },
            })
        })
    }

    /// The channel a message frame belongs to.
    pub(super) fn channel(&mut self, channel: Channel) -> (&mut RecvChannel, &mut Reassembly) {
        let ch = match channel {
            Channel::Reliable => &mut self.reliable,
            Channel::Ordered => &mut self.ordered,
        };
        (ch, &mut self.reassembly)
    }
}
