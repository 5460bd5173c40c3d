//! A client `Connection` and a `ServerEndpoint` joined by two one-way links
//! that can be slow as well as lossy: each link serialises datagrams at a
//! fixed byte rate through a drop-tail queue, then delays them, so a sender
//! that offers more than the rate sees queueing and then loss, as on a real
//! bottleneck. Driven on a virtual clock in 1 ms steps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume_net::sim::Rng;
use legume_net::{Config, Connection, Event, ServerEndpoint};

use crate::util::{client_addr, factory};

pub const MS: Duration = Duration::from_millis(1);
pub const SEC: Duration = Duration::from_secs(1);

/// One direction of the path.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    /// Bytes per second, or `None` for no limit.
    pub rate: Option<u64>,
    /// Propagation delay after serialisation.
    pub delay: Duration,
    /// Chance that a datagram is lost (before the queue).
    pub loss: f64,
    /// The longest a datagram may wait in the bottleneck queue; longer
    /// ones are dropped (drop-tail).
    pub max_queue: Duration,
}

impl LinkSpec {
    pub fn plain(delay: Duration, loss: f64) -> Self {
        LinkSpec {
            rate: None,
            delay,
            loss,
            max_queue: Duration::ZERO,
        }
    }
}

struct Link {
    spec: LinkSpec,
    rng: Rng,
    /// When the bottleneck is free again.
    busy_until: Instant,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    dropped_queue: u64,
}

impl Link {
    fn send(&mut self, now: Instant, bytes: &[u8]) {
        if self.rng.chance(self.spec.loss) {
            return;
        }
        let at = match self.spec.rate {
            None => now + self.spec.delay,
            Some(rate) => {
                let start = self.busy_until.max(now);
                if start - now > self.spec.max_queue {
                    self.dropped_queue += 1;
                    return;
                }
                let serialise = Duration::from_nanos(bytes.len() as u64 * 1_000_000_000 / rate);
                self.busy_until = start + serialise;
                self.busy_until + self.spec.delay
            }
        };
        // Arrival times only grow: the queue is FIFO and the delay fixed.
        self.in_flight.push_back((at, bytes.to_vec()));
    }

    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            return self.in_flight.pop_front().map(|(_, b)| b);
        }
        None
    }
}

/// A connected pair on two links.
pub struct Pair {
    pub now: Instant,
    pub client: Connection,
    pub server: ServerEndpoint,
    /// The client's address, as the server names its peer.
    pub peer: SocketAddr,
    up: Link,
    down: Link,
    /// Events with the time they were polled.
    pub client_events: Vec<(Instant, Event)>,
    pub server_events: Vec<(Instant, Event)>,
    buf: Vec<u8>,
}

impl Pair {
    /// A pair with `config` on both ends and `up` (client to server) and
    /// `down` links, connected (panics if the handshake fails in 5 s).
    pub fn connected(seed: u64, config: Config, up: LinkSpec, down: LinkSpec) -> Self {
        Self::connected_with(seed, config.clone(), config, up, down)
    }

    pub fn connected_with(
        seed: u64,
        client_config: Config,
        server_config: Config,
        up: LinkSpec,
        down: LinkSpec,
    ) -> Self {
        let mut p = Self::new(seed, client_config, server_config, up, down);
        assert!(
            p.run_until(5 * SEC, |p| p.client.is_connected()),
            "no connection: {:?}",
            p.client_events
        );
        p.client_events.clear();
        p.server_events.clear();
        p
    }

    pub fn new(
        seed: u64,
        client_config: Config,
        server_config: Config,
        up: LinkSpec,
        down: LinkSpec,
    ) -> Self {
        let start = Instant::now();
        let server = ServerEndpoint::with_insecure_seed(server_config, factory(), start, seed);
        let client = Connection::connect(client_config, factory(), start, seed ^ 0xC11E);
        let link = |spec, salt| Link {
            spec,
            rng: Rng::new(seed ^ salt),
            busy_until: start,
            in_flight: VecDeque::new(),
            dropped_queue: 0,
        };
        Pair {
            now: start,
            client,
            server,
            peer: client_addr(0),
            up: link(up, 0x0A),
            down: link(down, 0x0B),
            client_events: Vec::new(),
            server_events: Vec::new(),
            buf: vec![0; 65_536],
        }
    }

    /// Datagrams the client-to-server bottleneck queue dropped.
    pub fn up_queue_drops(&self) -> u64 {
        self.up.dropped_queue
    }

    /// Sends what both ends have to send now, and collects events.
    pub fn flush(&mut self) {
        let now = self.now;
        while let Some(n) = self.client.poll_transmit(now, &mut self.buf) {
            self.up.send(now, &self.buf[..n]);
        }
        while let Some((_, n)) = self.server.poll_transmit(now, &mut self.buf) {
            self.down.send(now, &self.buf[..n]);
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push((now, e));
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push((now, e.event));
        }
    }

    /// One millisecond: deliveries, due timers, then transmits.
    pub fn tick(&mut self) {
        self.flush();
        self.now += MS;
        let (now, peer) = (self.now, self.peer);
        while let Some(d) = self.up.pop_due(now) {
            self.server.handle_datagram(now, peer, &d);
        }
        while let Some(d) = self.down.pop_due(now) {
            self.client.handle_datagram(now, &d);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        self.flush();
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.tick();
        }
    }

    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&mut Pair) -> bool) -> bool {
        let end = self.now + max;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }
}
