//! A rate-limited link with a drop-tail queue, for the simulated network:
//! datagrams routed through it wait their turn to be serialized at its
//! rate, and a datagram that would overflow its queue is dropped. Several
//! directions may share one, as flows share a real bottleneck.

use std::time::{Duration, Instant};

/// A bottleneck's rate and queue (see [`SimNetwork::add_bottleneck`](super::SimNetwork::add_bottleneck)).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Bottleneck {
    /// Bytes per second it forwards (UDP payload bytes; 0 counts as 1).
    pub rate: u64,
    /// Bytes it can hold waiting, the datagram being sent included; a
    /// datagram that would take it past this is dropped (drop-tail).
    pub queue: usize,
}

/// Which bottleneck of a [`SimNetwork`](super::SimNetwork).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub struct BottleneckId(pub(super) usize);

/// Queueing delays are counted in buckets of this width...
const DELAY_BUCKET: Duration = Duration::from_micros(100);
/// ...up to this many; longer delays share the last bucket.
const DELAY_BUCKETS: usize = 20_000;

/// What a bottleneck did since it was added (or its counters reset).
#[derive(Clone, Debug, PartialEq)]
pub struct BottleneckStats {
    /// Datagrams it forwarded.
    pub forwarded: u64,
    /// Bytes it forwarded.
    pub forwarded_bytes: u64,
    /// Datagrams dropped because the queue was full.
    pub dropped: u64,
    /// The most bytes queued at once.
    pub max_queue: usize,
    /// How long it was busy forwarding (serialization time of the
    /// forwarded datagrams).
    pub busy: Duration,
    /// Forwarded datagrams by the time they waited, in 100 µs buckets.
    delays: Vec<u64>,
}

impl BottleneckStats {
    fn new() -> Self {
        BottleneckStats {
            forwarded: 0,
            forwarded_bytes: 0,
            dropped: 0,
            max_queue: 0,
            busy: Duration::ZERO,
            delays: vec![0; DELAY_BUCKETS],
        }
    }

    /// The time within which a fraction `q` (0 to 1) of the forwarded
    /// datagrams got through the queue (waiting for the link, not counting
    /// their own serialization), rounded up to 100 µs; zero if none was.
    pub fn queue_delay_quantile(&self, q: f64) -> Duration {
        let target = (self.forwarded as f64 * q.clamp(0.0, 1.0)).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.delays.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return DELAY_BUCKET * (i as u32 + 1);
            }
        }
        Duration::ZERO
    }
}

/// A bottleneck's state: when it is free again, and its counters.
#[derive(Clone, Debug)]
pub(super) struct Queue {
    config: Bottleneck,
    /// When the last datagram queued will have been sent.
    busy_until: Option<Instant>,
    pub(super) stats: BottleneckStats,
}

impl Queue {
    pub(super) fn new(config: Bottleneck) -> Self {
        Queue {
            config,
            busy_until: None,
            stats: BottleneckStats::new(),
        }
    }

    pub(super) fn reset_stats(&mut self) {
        self.stats = BottleneckStats::new();
    }

    fn serialization(&self, bytes: u64) -> Duration {
        let rate = u128::from(self.config.rate.max(1));
        let nanos = (u128::from(bytes) * 1_000_000_000).div_ceil(rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A datagram of `len` bytes arrives at `now`: when its last byte
    /// leaves the bottleneck, or `None` if the queue drops it.
    pub(super) fn enqueue(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let start = self.busy_until.map_or(now, |t| t.max(now));
        let waiting = start - now;
        let rate = u128::from(self.config.rate.max(1));
        let backlog =
            usize::try_from(waiting.as_nanos() * rate / 1_000_000_000).unwrap_or(usize::MAX);
        if backlog.saturating_add(len) > self.config.queue {
            self.stats.dropped += 1;
            return None;
        }
        let serialization = self.serialization(len as u64);
        let done = start + serialization;
        self.busy_until = Some(done);
        let s = &mut self.stats;
        s.forwarded += 1;
        s.forwarded_bytes += len as u64;
        s.busy += serialization;
        s.max_queue = s.max_queue.max(backlog + len);
        let bucket = (waiting.as_nanos() / DELAY_BUCKET.as_nanos()) as usize;
        s.delays[bucket.min(DELAY_BUCKETS - 1)] += 1;
        Some(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn datagrams_wait_their_turn_and_the_tail_is_dropped() {
        let t = Instant::now();
        // 1 MB/s: 1000 bytes take 1 ms; the queue holds 3000 bytes.
        let mut q = Queue::new(Bottleneck {
            rate: 1_000_000,
            queue: 3000,
        });
        assert_eq!(q.enqueue(t, 1000), Some(t + MS));
        assert_eq!(q.enqueue(t, 1000), Some(t + 2 * MS));
        assert_eq!(q.enqueue(t, 1000), Some(t + 3 * MS));
        assert_eq!(q.enqueue(t, 1000), None, "3000 bytes queued");
        // Half a millisecond later 2500 bytes are left: 500 more fit.
        assert_eq!(q.enqueue(t + MS / 2, 1000), None);
        assert_eq!(q.enqueue(t + MS / 2, 500), Some(t + 3 * MS + MS / 2));
        // An idle link sends at once.
        assert_eq!(q.enqueue(t + 10 * MS, 1000), Some(t + 11 * MS));
        let s = &q.stats;
        assert_eq!((s.forwarded, s.dropped, s.max_queue), (5, 2, 3000));
        assert_eq!(s.forwarded_bytes, 4500);
        assert_eq!(s.busy, 4 * MS + MS / 2);
        // Waits: 0, 1, 2, 2.5 and 0 ms.
        assert_eq!(s.queue_delay_quantile(0.4), DELAY_BUCKET);
        assert_eq!(s.queue_delay_quantile(0.6), MS + DELAY_BUCKET);
        assert_eq!(s.queue_delay_quantile(1.0), 2 * MS + MS / 2 + DELAY_BUCKET);
        q.reset_stats();
        assert_eq!(q.stats.queue_delay_quantile(0.5), Duration::ZERO);
    }
}
