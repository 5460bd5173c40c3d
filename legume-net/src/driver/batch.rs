//! Buffers for moving several datagrams per system call.
//!
//! On Linux the driver reads with `recvmmsg` and writes with `sendmmsg`, up
//! to [`BATCH`] datagrams per call (see `mmsg.rs`); elsewhere the batches
//! hold one datagram and the socket moves them one call each. Either way the
//! drivers fill and drain these buffers the same way.

use std::net::{Ipv4Addr, SocketAddr};

use crate::Config;

/// Datagrams moved per system call at most.
pub(crate) const BATCH: usize = if cfg!(target_os = "linux") { 32 } else { 1 };

/// Receive slot size: one byte over the largest datagram any peer may send
/// ([`Config::MAX_MTU`]), so a longer one shows up as `MAX_MTU + 1` bytes
/// (truncated by the kernel) and the endpoint drops it as invalid.
pub(crate) const RECV_SLOT: usize = Config::MAX_MTU + 1;

const UNSPECIFIED: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Datagrams read by one receive call.
pub(crate) struct RecvBatch {
    /// `BATCH` slots of `RECV_SLOT` bytes. Allocated zeroed, so the pages a
    /// slot never touches are never committed.
    pub(crate) buf: Vec<u8>,
    pub(crate) lens: [usize; BATCH],
    pub(crate) from: [SocketAddr; BATCH],
    pub(crate) count: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        RecvBatch {
            buf: vec![0; BATCH * RECV_SLOT],
            lens: [0; BATCH],
            from: [UNSPECIFIED; BATCH],
            count: 0,
        }
    }

    /// The `i`th datagram read and its source.
    pub(crate) fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let start = i * RECV_SLOT;
        (&self.buf[start..start + self.lens[i]], self.from[i])
    }
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// Datagrams written by the state machine, waiting for one send call.
pub(crate) struct SendBatch {
    /// `BATCH` slots of `slot` bytes.
    pub(crate) buf: Vec<u8>,
    pub(crate) slot: usize,
    pub(crate) lens: [usize; BATCH],
    /// Destinations; `None` on a connected socket.
    pub(crate) to: [Option<SocketAddr>; BATCH],
    pub(crate) count: usize,
}

impl SendBatch {
    /// Slots of `slot` bytes: the configured MTU, the most `poll_transmit`
    /// writes. A smaller slot would only make it write smaller packets.
    pub(crate) fn new(slot: usize) -> Self {
        SendBatch {
            buf: vec![0; BATCH * slot],
            slot,
            lens: [0; BATCH],
            to: [None; BATCH],
            count: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count == BATCH
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next free slot, to write a datagram into; call only when not full.
    pub(crate) fn free_slot(&mut self) -> &mut [u8] {
        let start = self.count * self.slot;
        &mut self.buf[start..start + self.slot]
    }

    /// Keeps the first `len` bytes written into the free slot, for `to`.
    pub(crate) fn commit(&mut self, len: usize, to: Option<SocketAddr>) {
        self.lens[self.count] = len.min(self.slot);
        self.to[self.count] = to;
        self.count += 1;
    }

    /// The `i`th datagram and its destination.
    pub(crate) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let start = i * self.slot;
        (&self.buf[start..start + self.lens[i]], self.to[i])
    }

    pub(crate) fn clear(&mut self) {
        self.count = 0;
    }
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("count", &self.count)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
