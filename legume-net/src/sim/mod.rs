//! A deterministic in-memory network for tests and benchmarks.
//!
//! [`SimNetwork`] carries datagrams between [`SocketAddr`]s on a simulated
//! clock: the caller passes `now` into every call, the network never reads a
//! clock. Each direction `from → to` has its own [`LinkConditions`] (loss,
//! duplication, latency, jitter, reordering), drawn from a seeded [`Rng`], so
//! the same seed and the same sequence of calls always give the same
//! deliveries, at the same instants, in the same order. Datagrams due at the
//! same instant are delivered in the order they were scheduled. Directions
//! may share a [`Bottleneck`]: a rate-limited link with a drop-tail queue.
//!
//! # Example
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use legume_net::sim::{LinkConditions, SimNetwork};
//!
//! let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
//! let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
//! let ms = Duration::from_millis;
//! let mut net = SimNetwork::new(42);
//! net.set_default_conditions(LinkConditions::perfect().with_latency(ms(20)).with_jitter(ms(10)));
//!
//! let t0 = Instant::now();
//! net.send(t0, a, b, b"hello");
//! assert!(net.pop_due(t0 + ms(19)).is_none());
//!
//! let d = net.pop_due(t0 + ms(30)).unwrap();
//! assert_eq!((d.from, d.to, &d.bytes[..]), (a, b, &b"hello"[..]));
//! net.recycle(d.bytes); // the next send reuses this buffer
//!
//! // An event loop jumps the clock straight to the next delivery.
//! net.send(t0, b, a, b"world");
//! while let Some(now) = net.next_delivery() {
//!     while let Some(d) = net.pop_due(now) {
//!         assert_eq!(&d.bytes[..], b"world");
//!         net.recycle(d.bytes);
//!     }
//! }
//! assert_eq!(net.stats().delivered, 2);
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

mod bottleneck;

pub use bottleneck::{Bottleneck, BottleneckId, BottleneckStats};

/// A small seeded pseudo-random number generator: xoshiro256\*\* seeded
/// through SplitMix64.
///
/// Fast and reproducible across platforms, for simulations only. It is
/// **not cryptographic**: never use it for keys, nonces or cookies.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        // Four SplitMix64 outputs are never all zero.
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform `f64` in `[0, 1)`, with 53 random bits.
    pub fn gen_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `range` (`lo..hi`, `hi` excluded), without modulo
    /// bias. An empty range (`hi <= lo`) returns `lo` and draws nothing.
    pub fn gen_range(&mut self, range: Range<u64>) -> u64 {
        if range.end <= range.start {
            return range.start;
        }
        let span = range.end - range.start;
        // Lemire's multiply-and-reject method.
        let threshold = span.wrapping_neg() % span;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(span);
            if (m as u64) >= threshold {
                return range.start + (m >> 64) as u64;
            }
        }
    }

    /// `true` with probability `p`. `p` is clamped to `[0, 1]` and NaN counts
    /// as 0; `p <= 0` and `p >= 1` draw nothing.
    pub fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.gen_f64() < p
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A uniform duration in `[0, max]`, at nanosecond resolution.
    fn gen_duration(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        let n = u64::try_from(max.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1));
        Duration::from_nanos(self.gen_range(0..n + 1))
    }
}

/// The smallest reordering window, used on links whose `2 × latency + jitter`
/// is shorter (for example links with no latency at all).
pub const MIN_REORDER_WINDOW: Duration = Duration::from_millis(1);

/// Generates `const fn with_field(self, value) -> Self` builders.
macro_rules! builders {
    ($($name:ident($field:ident: $ty:ty),)*) => {$(
        #[doc = concat!("These conditions with [`", stringify!($field), "`](Self::", stringify!($field), ") set.")]
        pub const fn $name(mut self, $field: $ty) -> Self { self.$field = $field; self }
    )*};
}

/// How one direction of a simulated link treats datagrams.
///
/// Probabilities outside `[0, 1]` behave as if clamped to it, and NaN as 0;
/// nothing panics. The default is [`LinkConditions::perfect`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkConditions {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram that was not dropped is delivered twice;
    /// the copy gets its own independently drawn delay (and reordering).
    pub duplicate: f64,
    /// One-way base delay of every datagram.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` for every datagram.
    /// Jitter alone reorders datagrams sent less than `jitter` apart.
    pub jitter: Duration,
    /// Probability that a datagram is held back by a further delay drawn
    /// uniformly from `[0, max(2 × latency + jitter, MIN_REORDER_WINDOW)]`,
    /// so that it usually arrives after datagrams sent after it.
    pub reorder: f64,
}

impl LinkConditions {
    /// No loss, no duplication, no delay, no reordering.
    pub const fn perfect() -> Self {
        LinkConditions {
            loss: 0.0,
            duplicate: 0.0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
        }
    }

    /// A link with no delay that drops datagrams with probability `loss`.
    pub const fn lossy(loss: f64) -> Self {
        Self::perfect().with_loss(loss)
    }

    builders! {
        with_loss(loss: f64),
        with_duplicate(duplicate: f64),
        with_latency(latency: Duration),
        with_jitter(jitter: Duration),
        with_reorder(reorder: f64),
    }
}

/// A datagram delivered by [`SimNetwork::pop_due`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDatagram {
    /// The sender's address.
    pub from: SocketAddr,
    /// The receiver's address.
    pub to: SocketAddr,
    /// The payload; hand it back with [`SimNetwork::recycle`] to reuse it.
    pub bytes: Vec<u8>,
    /// The instant the network scheduled the delivery for (at most the `now`
    /// passed to `pop_due`).
    pub deliver_at: Instant,
}

/// Counters kept by a [`SimNetwork`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls to [`SimNetwork::send`].
    pub sent: u64,
    /// Datagrams dropped by [`LinkConditions::loss`] (oversize ones excluded).
    pub dropped: u64,
    /// Extra copies scheduled by [`LinkConditions::duplicate`].
    pub duplicated: u64,
    /// Scheduled datagrams (copies included) held back by
    /// [`LinkConditions::reorder`].
    pub reordered: u64,
    /// Datagrams returned by [`SimNetwork::pop_due`] (copies included).
    pub delivered: u64,
    /// Payload bytes passed to [`SimNetwork::send`].
    pub bytes_sent: u64,
    /// Payload bytes returned by [`SimNetwork::pop_due`].
    pub bytes_delivered: u64,
    /// Datagrams dropped for exceeding [`SimNetwork::set_max_datagram`].
    pub oversize: u64,
    /// Datagrams (copies included) dropped by a full bottleneck queue.
    pub dropped_by_bottleneck: u64,
    /// The largest payload passed to [`SimNetwork::send`], in bytes.
    pub max_datagram_seen: usize,
}

/// At most this many buffers are kept for reuse.
const MAX_FREE_BUFFERS: usize = 4096;

/// A datagram in flight. The derived order compares `deliver_at`, then the
/// unique `seq`, so the fields after them never decide it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    deliver_at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// A deterministic in-memory datagram network; see the [module docs](self).
///
/// Random draws per [`send`](Self::send), in order: loss; then for the
/// datagram its jitter, reorder chance and reorder delay; then the duplicate
/// chance and, for a copy, its own jitter and reordering. Draws with a
/// probability of 0 or 1, or a zero-length range, consume no randomness, so a
/// perfect link never touches the generator.
#[derive(Debug)]
pub struct SimNetwork {
    rng: Rng,
    default: LinkConditions,
    links: HashMap<(SocketAddr, SocketAddr), LinkConditions>,
    heap: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    free: Vec<Vec<u8>>,
    max_datagram: usize,
    stats: SimStats,
    bottlenecks: Vec<bottleneck::Queue>,
    routes: HashMap<(SocketAddr, SocketAddr), BottleneckId>,
}

impl SimNetwork {
    /// An empty network with perfect links, no size limit, and its random
    /// draws seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        SimNetwork {
            rng: Rng::new(seed),
            default: LinkConditions::perfect(),
            links: HashMap::new(),
            heap: BinaryHeap::new(),
            next_seq: 0,
            free: Vec::new(),
            max_datagram: usize::MAX,
            stats: SimStats::default(),
            bottlenecks: Vec::new(),
            routes: HashMap::new(),
        }
    }

    /// Adds a rate-limited link with a drop-tail queue; route directions
    /// through it with [`route_through`](Self::route_through). A datagram
    /// first meets the direction's random loss, then the bottleneck's
    /// queue, then the direction's latency and jitter after it leaves the
    /// bottleneck. It draws no randomness, so adding one changes no other
    /// draw.
    pub fn add_bottleneck(&mut self, bottleneck: Bottleneck) -> BottleneckId {
        self.bottlenecks.push(bottleneck::Queue::new(bottleneck));
        BottleneckId(self.bottlenecks.len() - 1)
    }

    /// Sends the direction `from → to` through `bottleneck` from now on,
    /// sharing it with every other direction routed there.
    ///
    /// # Panics
    ///
    /// If `bottleneck` is not one of this network's.
    pub fn route_through(&mut self, from: SocketAddr, to: SocketAddr, bottleneck: BottleneckId) {
        assert!(bottleneck.0 < self.bottlenecks.len(), "no such bottleneck");
        self.routes.insert((from, to), bottleneck);
    }

    /// What `bottleneck` forwarded and dropped since it was added or since
    /// [`reset_bottleneck_stats`](Self::reset_bottleneck_stats).
    ///
    /// # Panics
    ///
    /// If `bottleneck` is not one of this network's.
    pub fn bottleneck_stats(&self, bottleneck: BottleneckId) -> &BottleneckStats {
        &self.bottlenecks[bottleneck.0].stats
    }

    /// Zeroes `bottleneck`'s counters, to measure from now on (after a
    /// warm-up, say); its queue is unaffected.
    ///
    /// # Panics
    ///
    /// If `bottleneck` is not one of this network's.
    pub fn reset_bottleneck_stats(&mut self, bottleneck: BottleneckId) {
        self.bottlenecks[bottleneck.0].reset_stats();
    }

    /// Sets the conditions of every direction without its own conditions.
    pub fn set_default_conditions(&mut self, c: LinkConditions) {
        self.default = c;
    }

    /// Sets the conditions of the direction `from → to` only; the reverse
    /// direction is unaffected. Applies to datagrams sent from now on.
    pub fn set_conditions(&mut self, from: SocketAddr, to: SocketAddr, c: LinkConditions) {
        self.links.insert((from, to), c);
    }

    /// The conditions that apply to the direction `from → to`.
    pub fn conditions(&self, from: SocketAddr, to: SocketAddr) -> LinkConditions {
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    /// Drops (and counts in [`SimStats::oversize`]) every datagram longer
    /// than `max` bytes, in all directions. Pass `usize::MAX` (the default)
    /// for no limit; with a limit of the MTU, `stats().oversize == 0`
    /// asserts that no endpoint sent a datagram larger than the MTU.
    pub fn set_max_datagram(&mut self, max: usize) {
        self.max_datagram = max;
    }

    /// Sends `bytes` from `from` to `to` at `now`, applying the direction's
    /// conditions. The payload is copied into a recycled buffer when one is
    /// available.
    ///
    /// # Panics
    ///
    /// If `now` plus the drawn delay overflows [`Instant`] (delays of
    /// centuries).
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.stats.sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.stats.max_datagram_seen = self.stats.max_datagram_seen.max(bytes.len());
        if bytes.len() > self.max_datagram {
            self.stats.oversize += 1;
            return;
        }
        let c = self.conditions(from, to);
        if self.rng.chance(c.loss) {
            self.stats.dropped += 1;
            return;
        }
        self.forward(now, from, to, &c, bytes);
        if self.rng.chance(c.duplicate) {
            self.stats.duplicated += 1;
            self.forward(now, from, to, &c, bytes);
        }
    }

    /// Schedules one copy: through the direction's bottleneck, if any, then
    /// its delay.
    fn forward(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        c: &LinkConditions,
        bytes: &[u8],
    ) {
        let mut leaves = now;
        if let Some(&id) = self.routes.get(&(from, to)) {
            match self.bottlenecks[id.0].enqueue(now, bytes.len()) {
                Some(at) => leaves = at,
                None => {
                    self.stats.dropped_by_bottleneck += 1;
                    return;
                }
            }
        }
        let at = leaves + self.delay(c);
        self.schedule(at, from, to, bytes);
    }

    /// Draws one datagram's delay: latency, jitter and perhaps reordering.
    fn delay(&mut self, c: &LinkConditions) -> Duration {
        let delay = c.latency.saturating_add(self.rng.gen_duration(c.jitter));
        if !self.rng.chance(c.reorder) {
            return delay;
        }
        self.stats.reordered += 1;
        let window = c.latency.saturating_mul(2).saturating_add(c.jitter);
        delay.saturating_add(self.rng.gen_duration(window.max(MIN_REORDER_WINDOW)))
    }

    fn schedule(&mut self, at: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let mut buf = self.free.pop().unwrap_or_default();
        buf.extend_from_slice(bytes);
        let seq = self.next_seq;
        self.next_seq += 1;
        let (deliver_at, bytes) = (at, buf);
        self.heap.push(Reverse(InFlight {
            deliver_at,
            seq,
            from,
            to,
            bytes,
        }));
    }

    /// When the earliest datagram in flight is due, if any.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.deliver_at)
    }

    /// Removes and returns the earliest datagram due at or before `now`;
    /// datagrams due at the same instant come out in the order they were
    /// scheduled.
    pub fn pop_due(&mut self, now: Instant) -> Option<SimDatagram> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(d) = self.heap.pop()?;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += d.bytes.len() as u64;
        Some(SimDatagram {
            from: d.from,
            to: d.to,
            bytes: d.bytes,
            deliver_at: d.deliver_at,
        })
    }

    /// Hands a payload buffer back for reuse by later sends, so that a
    /// steady-state simulation does not allocate. At most 4096 are kept.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.free.len() < MAX_FREE_BUFFERS {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Datagrams scheduled but not yet delivered (copies included).
    pub fn in_flight(&self) -> usize {
        self.heap.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }
}

/// Impairments for one endpoint's traffic, per direction (`DriverDriverConfig::conditioner`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Conditioner {
    /// Applied to datagrams this endpoint sends.
    pub outgoing: LinkConditions,
    /// Applied to datagrams this endpoint receives, before it processes them.
    pub incoming: LinkConditions,
    /// Seed of the random draws; the same seed and traffic give the same impairments.
    pub seed: u64,
}

impl Conditioner {
    /// The same conditions in both directions.
    pub fn symmetric(conditions: LinkConditions, seed: u64) -> Self {
        Conditioner {
            outgoing: conditions,
            incoming: conditions,
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Sends `n` datagrams `1 → 2`, one per `gap`, each carrying its index,
    /// delivering as the clock advances; returns `(index, delay)` in
    /// delivery order.
    fn run(net: &mut SimNetwork, n: u32, gap: Duration) -> Vec<(u32, Duration)> {
        let t0 = Instant::now();
        let mut log = Vec::new();
        for i in 0..=n {
            // After the last send, take everything still in flight.
            let now = t0
                + if i < n {
                    gap * i
                } else {
                    Duration::from_secs(3600)
                };
            while let Some(d) = net.pop_due(now) {
                let j = u32::from_le_bytes(d.bytes[..4].try_into().unwrap());
                log.push((j, d.deliver_at - (t0 + gap * j)));
                net.recycle(d.bytes);
            }
            if i < n {
                net.send(now, addr(1), addr(2), &i.to_le_bytes());
            }
        }
        assert_eq!(net.in_flight(), 0);
        log
    }

    fn inversions(log: &[(u32, Duration)]) -> usize {
        log.windows(2).filter(|w| w[1].0 < w[0].0).count()
    }

    #[test]
    fn rng_ranges_and_edge_cases() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            assert!((10..17).contains(&rng.gen_range(10..17)));
            assert!((0.0..1.0).contains(&rng.gen_f64()));
        }
        assert_eq!((rng.gen_range(5..5), rng.gen_range(0..1)), (5, 0));
        assert!(!rng.chance(0.0) && !rng.chance(-1.0) && !rng.chance(f64::NAN));
        assert!(rng.chance(1.0) && rng.chance(2.0));
        let mut buf = [0u8; 13];
        rng.fill_bytes(&mut buf);
        assert!(buf[8..].iter().any(|&b| b != 0));
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn same_seed_same_deliveries() {
        let c = LinkConditions::lossy(0.2)
            .with_duplicate(0.1)
            .with_latency(20 * MS)
            .with_jitter(15 * MS)
            .with_reorder(0.05);
        let go = |seed| {
            let mut net = SimNetwork::new(seed);
            net.set_default_conditions(c);
            (run(&mut net, 10_000, MS), net.stats())
        };
        let (log, s) = go(9);
        assert_eq!((&log, s), (&go(9).0, go(9).1));
        assert_ne!(log, go(10).0);
        assert!(s.dropped > 0 && s.duplicated > 0 && s.reordered > 0 && inversions(&log) > 0);
        assert_eq!(s.delivered, s.sent - s.dropped + s.duplicated);
        assert_eq!(log.len() as u64, s.delivered);
    }

    #[test]
    fn loss_and_duplication_rates_within_bounds() {
        let mut net = SimNetwork::new(1);
        net.set_default_conditions(LinkConditions::lossy(0.2));
        run(&mut net, 20_000, MS);
        let s = net.stats();
        let rate = s.dropped as f64 / s.sent as f64;
        assert!((0.18..=0.22).contains(&rate), "loss rate {rate}");
        assert_eq!(
            (s.delivered, s.duplicated, s.reordered),
            (s.sent - s.dropped, 0, 0)
        );

        let mut net = SimNetwork::new(2);
        net.set_default_conditions(LinkConditions::perfect().with_duplicate(0.1));
        let log = run(&mut net, 20_000, MS);
        let s = net.stats();
        let rate = s.duplicated as f64 / s.sent as f64;
        assert!((0.09..=0.11).contains(&rate), "duplication rate {rate}");
        assert_eq!(log.len() as u64, s.sent + s.duplicated);
        assert_eq!(s.bytes_delivered, 4 * s.delivered);
    }

    #[test]
    fn latency_and_jitter_bounds() {
        let (lat, jit) = (50 * MS, 20 * MS);
        let c = LinkConditions::perfect().with_latency(lat).with_jitter(jit);
        let mut net = SimNetwork::new(3);
        net.set_default_conditions(c);
        let log = run(&mut net, 5_000, MS);
        assert_eq!(log.len(), 5_000);
        assert!(log.iter().all(|&(_, d)| (lat..=lat + jit).contains(&d)));
        // Jitter spreads the delays over the whole window.
        assert!(log.iter().any(|&(_, d)| d < lat + 2 * MS));
        assert!(log.iter().any(|&(_, d)| d > lat + jit - 2 * MS));

        // Reordered datagrams are late by at most 2 × latency + jitter more.
        let mut net = SimNetwork::new(3);
        net.set_default_conditions(c.with_reorder(0.1));
        let log = run(&mut net, 5_000, MS);
        let late = log.iter().filter(|&&(_, d)| d > lat + jit).count();
        assert!(late > 0 && late as u64 <= net.stats().reordered);
        assert!(log
            .iter()
            .all(|&(_, d)| (lat..=3 * lat + 2 * jit).contains(&d)));
    }

    #[test]
    fn reorder_reorders_and_perfect_preserves_order() {
        let c = LinkConditions::perfect().with_latency(10 * MS);
        let mut net = SimNetwork::new(4);
        net.set_default_conditions(c.with_reorder(0.1));
        let log = run(&mut net, 2_000, MS);
        assert_eq!(log.len(), 2_000);
        assert!(inversions(&log) > 50, "{} inversions", inversions(&log));

        // Without reordering, fixed delays keep order, even for sends at one
        // instant (all due at once), and zero latency is due immediately.
        let mut net = SimNetwork::new(4);
        net.set_default_conditions(c);
        assert_eq!(inversions(&run(&mut net, 2_000, MS)), 0);
        let mut net = SimNetwork::new(4);
        assert_eq!(net.conditions(addr(1), addr(2)), LinkConditions::default());
        let log = run(&mut net, 2_000, Duration::ZERO);
        assert_eq!((log.len(), inversions(&log)), (2_000, 0));
        assert!(log.iter().all(|&(_, d)| d.is_zero()));
    }

    #[test]
    fn conditions_are_per_direction() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let mut net = SimNetwork::new(5);
        net.set_default_conditions(LinkConditions::perfect().with_latency(5 * MS));
        net.set_conditions(a, b, LinkConditions::lossy(1.0));
        net.set_conditions(b, a, LinkConditions::perfect().with_latency(30 * MS));
        let t0 = Instant::now();
        for _ in 0..100 {
            net.send(t0, a, b, b"ab");
            net.send(t0, b, a, b"ba");
            net.send(t0, a, c, b"ac");
        }
        assert_eq!((net.stats().dropped, net.in_flight()), (100, 200));
        let mut got = Vec::new();
        while let Some(at) = net.next_delivery() {
            let d = net.pop_due(at).unwrap();
            got.push((d.deliver_at - t0, d.bytes));
        }
        assert!(got[..100].iter().all(|(t, b)| *t == 5 * MS && b == b"ac"));
        assert!(got[100..].iter().all(|(t, b)| *t == 30 * MS && b == b"ba"));
    }

    #[test]
    fn buffers_are_recycled_and_oversize_dropped() {
        let mut net = SimNetwork::new(6);
        let t0 = Instant::now();
        net.send(t0, addr(1), addr(2), &[1; 100]);
        let d = net.pop_due(t0).unwrap();
        let ptr = d.bytes.as_ptr();
        net.recycle(d.bytes);
        for _ in 0..10 {
            net.send(t0, addr(1), addr(2), &[2; 50]);
            let d = net.pop_due(t0).unwrap();
            assert_eq!((d.bytes.as_ptr(), &d.bytes[..]), (ptr, &[2; 50][..]));
            net.recycle(d.bytes);
        }

        let mut net = SimNetwork::new(7);
        net.set_max_datagram(crate::config::MTU);
        net.send(t0, addr(1), addr(2), &[0; crate::config::MTU]);
        net.send(t0, addr(1), addr(2), &[0; crate::config::MTU + 1]);
        let s = net.stats();
        assert_eq!(
            (s.sent, s.oversize, s.dropped, s.max_datagram_seen),
            (2, 1, 0, crate::config::MTU + 1)
        );
        assert_eq!(s.bytes_sent, 2 * crate::config::MTU as u64 + 1);
        assert_eq!(net.pop_due(t0).unwrap().bytes.len(), crate::config::MTU);
        assert!(net.pop_due(t0).is_none());
    }
}
