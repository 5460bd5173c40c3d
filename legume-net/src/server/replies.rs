//! Handshake replies to addresses that are not peers (challenges, ACCEPTs,
//! REJECTs), queued until the caller polls them out. The queue is bounded,
//! so a flood of requests cannot grow it without limit: past the bound a
//! reply is dropped and counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::packet::{Packet, HANDSHAKE_LEN};

use super::ServerEndpoint;

/// Handshake replies waiting to be sent, at most.
pub(super) const MAX_PENDING_REPLIES: usize = 4096;

/// Handshake replies waiting to be sent, oldest first.
#[derive(Debug, Default)]
pub(super) struct ReplyQueue(VecDeque<(SocketAddr, Vec<u8>)>);

impl ReplyQueue {
    /// The number waiting.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Queues a reply; `false` (and the reply dropped) when the queue is full.
    fn push(&mut self, to: SocketAddr, bytes: Vec<u8>) -> bool {
        if self.0.len() >= MAX_PENDING_REPLIES {
            return false;
        }
        self.0.push_back((to, bytes));
        true
    }

    /// Writes the oldest reply that fits into `buf`; returns its destination
    /// and length. Replies larger than `buf` are dropped.
    pub(super) fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        while let Some((to, bytes)) = self.0.pop_front() {
            if bytes.len() <= buf.len() {
                buf[..bytes.len()].copy_from_slice(&bytes);
                return Some((to, bytes.len()));
            }
        }
        None
    }
}

/// A native handshake packet's bytes; `None` if it does not fit a handshake
/// datagram.
pub(super) fn handshake_bytes(packet: &Packet<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; HANDSHAKE_LEN];
    let n = packet.emit(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

impl ServerEndpoint {
    /// Queues a native handshake packet to `to`.
    pub(super) fn reply(&mut self, now: Instant, to: SocketAddr, packet: &Packet<'_>) {
        if let Some(bytes) = handshake_bytes(packet) {
            self.reply_bytes(now, to, bytes);
        }
    }

    /// Queues a datagram to `to`, or counts and logs it dropped when too
    /// many are waiting.
    pub(super) fn reply_bytes(&mut self, now: Instant, to: SocketAddr, bytes: Vec<u8>) {
        if !self.replies.push(to, bytes) {
            self.stats.dropped_replies += 1;
            self.log_dropped_reply(now, to);
        }
    }
}
