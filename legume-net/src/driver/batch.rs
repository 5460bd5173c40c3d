//! Buffers for moving several datagrams per system call, and the
//! per-thread pool that lends them.
//!
//! On Linux the driver reads with `recvmmsg` and writes with `sendmmsg`, up
//! to [`BATCH`] datagrams per call (see `mmsg.rs`); elsewhere the batches
//! hold one datagram and the socket moves them one call each. Either way the
//! drivers fill and drain these buffers the same way.
//!
//! The buffers hold datagrams only for the length of one receive or flush:
//! nothing stays in them between updates. So they belong to the thread,
//! not to each `Client` or `Server`: [`RecvBatch::lend`] and
//! [`SendBatch::lend`] lend the thread's own (allocated on first use, kept
//! for the thread's life), and a thread driving 10,000 clients holds one set
//! instead of 10,000 (about 45 KB of send slots and the touched pages of
//! 0.5-1 MiB of receive slots each).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::thread::LocalKey;

use std::net::SocketAddr;

use crate::Config;

/// Datagrams moved per system call at most.
pub(crate) const BATCH: usize = if cfg!(target_os = "linux") { 32 } else { 1 };

/// Receive slot size without GRO: one byte over the largest datagram any
/// peer may send ([`Config::MAX_MTU`]), so a longer one shows up as
/// `MAX_MTU + 1` bytes (truncated by the kernel) and the endpoint drops it
/// as invalid.
pub(crate) const RECV_SLOT: usize = Config::MAX_MTU + 1;

/// Receive slot size with GRO: the kernel may hand over up to 64 KiB of
/// coalesced datagrams from one source in one slot.
#[cfg(target_os = "linux")]
pub(crate) const GRO_SLOT: usize = 1 << 16;

/// Receive slots with GRO: each may carry many datagrams, so fewer do.
#[cfg(target_os = "linux")]
pub(crate) const GRO_SLOTS: usize = 16;

/// One datagram of a [`RecvBatch`]: where it lies in the buffer, and whence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
}

/// Datagrams read by one receive call.
pub(crate) struct RecvBatch {
    /// `slots` slots of `slot` bytes. Allocated zeroed, so the pages a slot
    /// never touches are never committed.
    pub(crate) buf: Vec<u8>,
    pub(crate) slot: usize,
    pub(crate) slots: usize,
    /// The datagrams read, in order; a GRO slot splits into several.
    pub(crate) datagrams: Vec<Received>,
}

thread_local! {
    /// This thread's receive buffers, while no driver has them.
    static RECV_POOL: Cell<Option<RecvBatch>> = const { Cell::new(None) };
    /// This thread's send buffers, while no driver has them.
    static SEND_POOL: Cell<Option<SendBatch>> = const { Cell::new(None) };
}

/// Buffers lent from this thread's pool; they go back when dropped.
pub(crate) struct Lease<T: 'static> {
    batch: Option<T>,
    pool: &'static LocalKey<Cell<Option<T>>>,
}

impl<T: 'static> Lease<T> {
    /// The pool's buffers if `fits` them, or new ones from `make`.
    fn take(
        pool: &'static LocalKey<Cell<Option<T>>>,
        fits: impl FnOnce(&T) -> bool,
        make: impl FnOnce() -> T,
    ) -> Self {
        // `try_with` fails only while the thread is being torn down.
        let pooled = pool.try_with(Cell::take).ok().flatten();
        let batch = pooled.filter(fits).unwrap_or_else(make);
        Lease {
            batch: Some(batch),
            pool,
        }
    }
}

impl<T: 'static> Deref for Lease<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Set in `take`, taken only in `drop`.
        self.batch
            .as_ref()
            .expect("a lease holds its buffers until dropped")
    }
}

impl<T: 'static> DerefMut for Lease<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.batch
            .as_mut()
            .expect("a lease holds its buffers until dropped")
    }
}

impl<T: 'static> Drop for Lease<T> {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            // Another lease's buffers returned first (a nested lease) are
            // replaced; they would be the same kind.
            let _ = self.pool.try_with(|p| p.set(Some(batch)));
        }
    }
}

impl RecvBatch {
    /// The slot size and count for a socket with or without GRO.
    fn shape(gro: bool) -> (usize, usize) {
        #[cfg(target_os = "linux")]
        let shape = if gro {
            (GRO_SLOT, GRO_SLOTS)
        } else {
            (RECV_SLOT, BATCH)
        };
        #[cfg(not(target_os = "linux"))]
        let shape = {
            let _ = gro;
            (RECV_SLOT, BATCH)
        };
        shape
    }

    /// Buffers for a socket with or without GRO (`DriverSocket::gro`).
    pub(crate) fn new(gro: bool) -> Self {
        let (slot, slots) = Self::shape(gro);
        RecvBatch {
            buf: vec![0; slots * slot],
            slot,
            slots,
            datagrams: Vec::with_capacity(slots),
        }
    }

    /// This thread's receive buffers for a socket with or without GRO, for
    /// one receive.
    pub(crate) fn lend(gro: bool) -> Lease<RecvBatch> {
        let shape = Self::shape(gro);
        Lease::take(
            &RECV_POOL,
            |b| (b.slot, b.slots) == shape,
            || RecvBatch::new(gro),
        )
    }

    /// Records `len` bytes from `from` in slot `index`; with a GRO segment
    /// size, as that many datagrams of `segment` bytes (the last shorter).
    pub(crate) fn push_slot(
        &mut self,
        index: usize,
        len: usize,
        segment: Option<usize>,
        from: SocketAddr,
    ) {
        let start = index * self.slot;
        let len = len.min(self.slot);
        let segment = segment.filter(|&s| s > 0).unwrap_or(len.max(1));
        let mut offset = 0;
        loop {
            let n = segment.min(len - offset);
            self.datagrams.push(Received {
                start: start + offset,
                len: n,
                from,
            });
            offset += n;
            if offset >= len {
                break;
            }
        }
    }

    /// The `i`th datagram read and its source.
    pub(crate) fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let d = self.datagrams[i];
        (&self.buf[d.start..d.start + d.len], d.from)
    }
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slot", &self.slot)
            .field("slots", &self.slots)
            .field("datagrams", &self.datagrams.len())
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
    /// This thread's send buffers with slots of `slot` bytes, empty, for
    /// one flush.
    pub(crate) fn lend(slot: usize) -> Lease<SendBatch> {
        let mut lease = Lease::take(&SEND_POOL, |b| b.slot == slot, || SendBatch::new(slot));
        lease.clear();
        lease
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_coalesced_slot_splits_into_its_segments() {
        let mut b = RecvBatch::new(false);
        b.push_slot(0, 10, None, addr(1));
        // 3 segments of 4 bytes and a last one of 2, from another source.
        b.push_slot(1, 14, Some(4), addr(2));
        // An empty datagram is still a datagram.
        b.push_slot(2, 0, None, addr(3));
        let got: Vec<(usize, usize, u16)> = b
            .datagrams
            .iter()
            .map(|d| (d.start, d.len, d.from.port()))
            .collect();
        let s = b.slot;
        assert_eq!(
            got,
            [
                (0, 10, 1),
                (s, 4, 2),
                (s + 4, 4, 2),
                (s + 8, 4, 2),
                (s + 12, 2, 2),
                (2 * s, 0, 3)
            ]
        );
        assert_eq!(b.get(4).0.len(), 2);
    }

    #[test]
    fn a_slot_never_reaches_past_itself() {
        let mut b = RecvBatch::new(false);
        b.push_slot(0, RECV_SLOT + 100, Some(0), addr(1));
        assert_eq!(b.datagrams.len(), 1);
        assert_eq!(b.get(0).0.len(), RECV_SLOT);
    }

    #[test]
    fn a_thread_lends_its_own_buffers_again() {
        let first = {
            let mut tx = SendBatch::lend(100);
            tx.commit(3, None);
            tx.buf.as_ptr()
        };
        // The same storage comes back, emptied.
        let tx = SendBatch::lend(100);
        assert_eq!(tx.buf.as_ptr(), first);
        assert!(tx.is_empty());
        // A second lease while the first is out gets buffers of its own.
        let nested = SendBatch::lend(100);
        assert_ne!(nested.buf.as_ptr(), first);
        drop((tx, nested));
        // Another slot size gets buffers of that size.
        assert_eq!(SendBatch::lend(200).slot, 200);
        let rx = RecvBatch::lend(false);
        assert_eq!((rx.slot, rx.slots), RecvBatch::shape(false));
        // Another thread has its own.
        let other = std::thread::spawn(|| SendBatch::lend(100).buf.as_ptr() as usize)
            .join()
            .expect("thread");
        assert_ne!(other, first as usize);
    }

    #[test]
    fn send_slots_hold_what_was_committed() {
        let mut b = SendBatch::new(8);
        for i in 0..BATCH {
            assert!(!b.is_full());
            b.free_slot()[..3].copy_from_slice(&[i as u8; 3]);
            b.commit(3, Some(addr(i as u16)));
        }
        assert!(b.is_full());
        assert_eq!(
            b.get(BATCH - 1),
            (&[(BATCH - 1) as u8; 3][..], Some(addr(BATCH as u16 - 1)))
        );
        b.clear();
        assert!(b.is_empty());
    }
}
