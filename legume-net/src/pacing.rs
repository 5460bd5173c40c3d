//! Pacing: DATA packets leave at the controller's pacing rate, a few at a
//! time, instead of a whole window at once (`docs/PROTOCOL.md` section 5).
//!
//! A token bucket filled at the pacing rate, holding at most
//! max(2 datagrams, 1 ms at the rate) and never more than 64 KiB: bursts
//! short enough not to fill a bottleneck's queue, long enough that the
//! driver's GSO batches stay whole and a fast connection is not held to one
//! datagram per timer wake-up. Sans-IO: the caller passes `now` in.

use std::time::{Duration, Instant};

/// The bucket holds at most this long at the pacing rate...
const BURST_TIME: Duration = Duration::from_millis(1);
/// ...but at least this many datagrams...
const MIN_BURST_DATAGRAMS: u64 = 2;
/// ...and never more than this many bytes (one GSO batch).
const MAX_BURST_BYTES: u64 = 64 << 10;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A token bucket in bytes.
#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    /// Bytes per second; `None` when unpaced.
    rate: Option<u64>,
    tokens: u64,
    capacity: u64,
    /// Tokens are counted up to this instant.
    filled_at: Option<Instant>,
    mtu: u64,
}

impl Pacer {
    /// An unpaced pacer for datagrams of up to `mtu` bytes, with a full bucket.
    pub(crate) fn new(mtu: usize) -> Self {
        let mtu = mtu as u64;
        Pacer {
            rate: None,
            tokens: MIN_BURST_DATAGRAMS * mtu,
            capacity: MIN_BURST_DATAGRAMS * mtu,
            filled_at: None,
            mtu,
        }
    }

    /// The rate in bytes per second, `None` when unpaced.
    pub(crate) fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Sets the rate (a zero rate counts as one byte a second); tokens
    /// already in the bucket stay, up to the new capacity.
    pub(crate) fn set_rate(&mut self, now: Instant, rate: Option<u64>) {
        self.refill(now);
        self.rate = rate.map(|r| r.max(1));
        let burst = rate.map_or(0, |r| {
            u64::try_from(u128::from(r) * BURST_TIME.as_nanos() / NANOS_PER_SEC).unwrap_or(u64::MAX)
        });
        self.capacity = burst
            .min(MAX_BURST_BYTES)
            .max(MIN_BURST_DATAGRAMS * self.mtu);
        self.tokens = self.tokens.min(self.capacity);
    }

    /// Whether `size` bytes may leave at `now`.
    pub(crate) fn ready(&mut self, now: Instant, size: usize) -> bool {
        self.refill(now);
        self.rate.is_none() || self.tokens >= (size as u64).min(self.capacity)
    }

    /// `size` bytes left at `now`.
    pub(crate) fn on_sent(&mut self, now: Instant, size: usize) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(size as u64);
    }

    /// When `size` bytes may leave, if not at once (given the tokens as of
    /// the last call): strictly after that call's instant.
    pub(crate) fn next_send(&self, size: usize) -> Option<Instant> {
        let rate = self.rate?;
        let missing = (size as u64).min(self.capacity).checked_sub(self.tokens)?;
        if missing == 0 {
            return None;
        }
        let nanos = (u128::from(missing) * NANOS_PER_SEC).div_ceil(u128::from(rate));
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Some(self.filled_at? + wait)
    }

    /// Adds the tokens earned since the last refill. Only whole bytes are
    /// added, and the clock of the bucket moves only by the time they took,
    /// so no fraction is lost between frequent calls.
    fn refill(&mut self, now: Instant) {
        let Some(filled_at) = self.filled_at else {
            self.filled_at = Some(now);
            return;
        };
        let Some(rate) = self.rate else {
            self.tokens = self.capacity;
            self.filled_at = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(filled_at).as_nanos();
        let earned = elapsed * u128::from(rate) / NANOS_PER_SEC;
        let room = u128::from(self.capacity - self.tokens);
        if earned >= room {
            self.tokens = self.capacity;
            self.filled_at = Some(now.max(filled_at));
            return;
        }
        // earned < room <= u64::MAX
        self.tokens += earned as u64;
        let used = (earned * NANOS_PER_SEC).div_ceil(u128::from(rate));
        self.filled_at = Some(filled_at + Duration::from_nanos(used as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_unpaced_pacer_never_waits() {
        let t = Instant::now();
        let mut p = Pacer::new(1200);
        for _ in 0..100 {
            assert!(p.ready(t, 1200));
            p.on_sent(t, 1200);
        }
        assert_eq!(p.next_send(1200), None);
    }

    #[test]
    fn packets_leave_at_the_rate_in_small_bursts() {
        let t = Instant::now();
        let mut p = Pacer::new(1000);
        // 1 MB/s: 1 ms holds 1000 bytes, less than two datagrams.
        p.set_rate(t, Some(1_000_000));
        let mut now = t;
        let mut sent = 0u64;
        let end = t + 100 * MS;
        while now < end {
            while p.ready(now, 1000) {
                p.on_sent(now, 1000);
                sent += 1000;
            }
            now = p.next_send(1000).expect("paced");
            assert!(now > t);
        }
        // 100 ms at 1 MB/s plus the first burst of two datagrams.
        assert!((100_000..=103_000).contains(&sent), "{sent}");
    }

    #[test]
    fn the_burst_grows_with_the_rate_up_to_64_kib() {
        let t = Instant::now();
        let mut p = Pacer::new(1000);
        p.set_rate(t, Some(10_000_000));
        assert_eq!(p.capacity, 10_000);
        p.set_rate(t, Some(1_000_000_000));
        assert_eq!(p.capacity, 64 << 10);
        // A long idle time fills the bucket no further than its capacity.
        assert!(p.ready(t + Duration::from_secs(10), 1000));
        assert_eq!(p.tokens, 64 << 10);
        p.set_rate(t, Some(0));
        assert_eq!(p.rate(), Some(1));
        assert_eq!(p.capacity, 2000);
    }
}
