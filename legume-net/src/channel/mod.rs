//! Message channels: the unreliable queue, and the send and receive sides of
//! the reliable and reliable-ordered channels.

mod recv;
mod send;

use std::collections::VecDeque;

use legume_core::{EncodeError, Writer};

use crate::packet::{self, FrameKind};

pub(crate) use recv::{Arrival, Reassembly, Received, RecvChannel};
pub(crate) use send::{MsgRef, SendChannel};

/// Unreliable messages waiting for a packet, stored back to back in one ring.
#[derive(Debug, Default)]
pub(crate) struct UnreliableQueue {
    bytes: VecDeque<u8>,
    lens: VecDeque<usize>,
}

impl UnreliableQueue {
    pub(crate) fn push(&mut self, msg: &[u8]) {
        self.bytes.extend(msg);
        self.lens.push_back(msg.len());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Writes queued messages while they fit; returns whether any was written.
    pub(crate) fn write_frames(&mut self, w: &mut Writer<'_>) -> Result<bool, EncodeError> {
        let mut wrote = false;
        while let Some(&len) = self.lens.front() {
            if packet::frame_overhead(FrameKind::Unreliable, len) + len > w.remaining() {
                break;
            }
            packet::write_unreliable_header(w, len)?;
            let out = w.reserve(len)?;
            for (dst, src) in out.iter_mut().zip(self.bytes.drain(..len)) {
                *dst = src;
            }
            self.lens.pop_front();
            wrote = true;
        }
        Ok(wrote)
    }
}
