//! Rate control (`docs/PROTOCOL.md` section 5): the bytes in flight, the
//! window and pacing rate they are held to, and the [`Controller`] that
//! sets both from acks and losses: [`Bbr`] or [`NewReno`] (the default, for now).
//!
//! [`Congestion`] owns what every controller needs: the count of bytes in
//! flight, the per-round delivery samples, the pacer, and the bounds from
//! [`CongestionConfig`] (window floor and ceiling, rate floor and cap). A
//! controller only proposes a window and a pacing rate.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{CongestionConfig, CongestionController};
use crate::pacing::Pacer;

/// An RTT shows a queue when above the min RTT by a quarter of it (at
/// least `MIN_QUEUE_DELAY`, at most `MAX_QUEUE_DELAY`, after HyStart's
/// bounds) and by twice the RTT variation.
const MIN_QUEUE_DELAY: Duration = Duration::from_millis(2);
const MAX_QUEUE_DELAY: Duration = Duration::from_millis(16);

/// How far above `min_rtt` an RTT must be to show a queue rather than
/// jitter.
pub(crate) fn queue_threshold(min_rtt: Duration, rttvar: Duration) -> Duration {
    (min_rtt / 4).clamp(MIN_QUEUE_DELAY, MAX_QUEUE_DELAY) + rttvar * 2
}

mod bbr;
mod new_reno;
mod sampler;

use bbr::Bbr;
use new_reno::NewReno;
use sampler::{DeliverySampler, RoundSample};

/// What a controller learns at the end of each ack: after all the packets
/// it acked and all it declared lost were reported.
#[derive(Clone, Debug)]
pub(crate) struct AckEvent {
    /// Bytes in flight after the ack.
    pub(crate) in_flight: usize,
    /// The RTT measured from the newest acked packet, ack delay included.
    pub(crate) rtt: Option<Duration>,
    /// The smoothed RTT.
    pub(crate) srtt: Duration,
    /// The RTT variation (RFC 6298 `rttvar`): how much of an RTT rise
    /// jitter alone explains.
    pub(crate) rttvar: Duration,
    /// The round trip this ack closed, if it closed one.
    pub(crate) round: Option<RoundSample>,
}

/// A rate controller: proposes a window and a pacing rate.
pub(crate) trait Controller: fmt::Debug + Send + Sync {
    /// The window in bytes, before the connection's bounds apply.
    fn window(&self) -> usize;
    /// Bytes per second to pace at; `None` to send as the window allows.
    fn pacing_rate(&self) -> Option<u64>;
    /// The bottleneck bandwidth estimate, bytes per second; 0 when the
    /// controller keeps none.
    fn bandwidth(&self) -> u64 {
        0
    }
    /// The controller's min RTT, if it keeps one.
    fn min_rtt(&self) -> Option<Duration> {
        None
    }
    /// A packet of `size` bytes sent at `sent_at` was newly acked.
    fn on_acked(&mut self, now: Instant, size: usize, sent_at: Instant);
    /// A packet of `size` bytes sent at `sent_at` was declared lost.
    fn on_lost(&mut self, now: Instant, size: usize, sent_at: Instant);
    /// A packet declared lost was acked after all (reordering).
    fn on_spurious_loss(&mut self);
    /// An ack was processed.
    fn on_ack_event(&mut self, now: Instant, event: &AckEvent);
}

/// One connection's rate control.
#[derive(Debug)]
pub(crate) struct Congestion {
    controller: Box<dyn Controller>,
    sampler: DeliverySampler,
    pacer: Pacer,
    in_flight: usize,
    /// The bounded window, recomputed after every event that may move it:
    /// the send path asks for it on every poll.
    window: usize,
    mtu: usize,
    min_window: usize,
    max_window: usize,
    min_rate: u64,
    max_rate: Option<u64>,
    srtt: Duration,
    /// The smallest RTT sample seen, for the stats of a controller that
    /// keeps no min RTT of its own.
    min_rtt: Option<Duration>,
    /// The newest RTT sample: whether a loss found now met a queue.
    latest_rtt: Option<Duration>,
    rttvar: Duration,
}

impl Congestion {
    /// Rate control per `config` for datagrams of up to `mtu` bytes, its
    /// window at most `window_limit` (what the sent ring can track) and
    /// never below 2 datagrams; `seed` varies the BBR gain cycle's start.
    pub(crate) fn new(
        now: Instant,
        mtu: usize,
        config: &CongestionConfig,
        window_limit: usize,
        initial_rtt: Duration,
        seed: u64,
    ) -> Self {
        let min_window = config.min_window.max(2 * mtu);
        let max_window = config.max_window.min(window_limit).max(min_window);
        let controller: Box<dyn Controller> = match config.controller {
            CongestionController::Bbr => Box::new(Bbr::new(mtu, min_window, initial_rtt, seed)),
            CongestionController::NewReno => Box::new(NewReno::new(mtu, min_window, max_window)),
        };
        let mut cc = Congestion {
            controller,
            sampler: DeliverySampler::default(),
            pacer: Pacer::new(mtu),
            in_flight: 0,
            window: 0,
            mtu,
            min_window,
            max_window,
            min_rate: config.min_rate,
            max_rate: config.max_rate,
            srtt: initial_rtt,
            min_rtt: None,
            latest_rtt: None,
            rttvar: initial_rtt / 2,
        };
        cc.update(now);
        cc
    }

    /// The congestion window in bytes: the controller's, within the bounds.
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    fn bounded_window(&self) -> usize {
        let rate_floor = (self.min_rate as f64 * self.srtt.as_secs_f64()) as usize;
        let floor = self.min_window.max(rate_floor).min(self.max_window);
        self.controller.window().clamp(floor, self.max_window)
    }

    /// Bytes sent in ack-eliciting packets, neither acked nor lost.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether the window has room for a packet of `size` bytes.
    pub(crate) fn can_send(&self, size: usize) -> bool {
        self.in_flight + size <= self.window
    }

    /// Whether the pacer lets a packet of `size` bytes leave at `now`.
    pub(crate) fn pacing_ready(&mut self, now: Instant, size: usize) -> bool {
        self.pacer.ready(now, size)
    }

    /// When the pacer will let a packet of `size` bytes leave, if it holds
    /// one back now.
    pub(crate) fn next_paced_send(&self, size: usize) -> Option<Instant> {
        self.pacer.next_send(size)
    }

    /// An ack-eliciting packet of `size` bytes left at `now`.
    pub(crate) fn on_sent(&mut self, now: Instant, size: usize) {
        self.in_flight += size;
        self.pacer.on_sent(now, size);
    }

    /// The sender had nothing to send: delivery samples of this round may
    /// understate the path. Only counts while the window has room.
    pub(crate) fn on_app_limited(&mut self) {
        if self.in_flight + self.mtu <= self.window {
            self.sampler.on_app_limited();
        }
    }

    /// A packet of `size` bytes sent at `sent_at` was newly acked.
    pub(crate) fn on_acked(&mut self, now: Instant, size: usize, sent_at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(size);
        self.sampler.on_acked(size, sent_at);
        self.controller.on_acked(now, size, sent_at);
        self.window = self.bounded_window();
    }

    /// An RTT sample (ack delay included) from the newest packet an ack
    /// acked, before the losses that ack reveals are declared, with the
    /// RTT variation after it.
    pub(crate) fn on_rtt_sample(&mut self, rtt: Duration, rttvar: Duration) {
        self.latest_rtt = Some(rtt);
        self.rttvar = rttvar;
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// Whether the newest RTT sample may show a queue: above the min RTT by
    /// more than a quarter of it (at least 2 ms) and twice the RTT
    /// variation, which jitter alone explains. The packets acked just after
    /// a lost one went through the queue it met (loss differentiation by
    /// delay, as in Veno).
    fn queue_visible(&self) -> bool {
        match (self.latest_rtt, self.min_rtt()) {
            (Some(latest), Some(min)) => latest > min + queue_threshold(min, self.rttvar),
            _ => false,
        }
    }

    /// A packet of `size` bytes sent at `sent_at` was declared lost at `now`.
    pub(crate) fn on_lost(&mut self, now: Instant, size: usize, sent_at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(size);
        let congestive = self.queue_visible();
        self.sampler.on_lost(size, congestive);
        self.controller.on_lost(now, size, sent_at);
        self.window = self.bounded_window();
    }

    /// A packet of `size` bytes declared lost was acked after all.
    pub(crate) fn on_spurious_loss(&mut self, size: usize) {
        self.sampler.on_spurious_loss(size);
        self.controller.on_spurious_loss();
        self.window = self.bounded_window();
    }

    /// The end of an ack's processing, with the RTT measured from its newest
    /// acked packet (if it acked one) and the smoothed RTT.
    pub(crate) fn on_ack_event(&mut self, now: Instant, rtt: Option<Duration>, srtt: Duration) {
        self.srtt = srtt;
        let event = AckEvent {
            in_flight: self.in_flight,
            rtt,
            srtt,
            rttvar: self.rttvar,
            round: self.sampler.on_ack_event(now, rtt),
        };
        self.controller.on_ack_event(now, &event);
        self.update(now);
    }

    /// Takes the controller's window, within the bounds, and its rate, at
    /// least `min_rate` and at most `max_rate`.
    fn update(&mut self, now: Instant) {
        self.window = self.bounded_window();
        let rate = self.controller.pacing_rate().map(|r| r.max(self.min_rate));
        let rate = match (rate, self.max_rate) {
            (Some(r), Some(cap)) => Some(r.min(cap)),
            (None, cap) => cap,
            (r, None) => r,
        };
        self.pacer.set_rate(now, rate);
    }

    /// The bottleneck bandwidth estimate in bytes per second (0 if none).
    pub(crate) fn bandwidth(&self) -> u64 {
        self.controller.bandwidth()
    }

    /// The pacing rate in bytes per second (0 when unpaced).
    pub(crate) fn pacing_rate(&self) -> u64 {
        self.pacer.rate().unwrap_or(0)
    }

    /// The min RTT, once there is a sample.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        self.controller.min_rtt().or(self.min_rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn config(controller: CongestionController) -> CongestionConfig {
        CongestionConfig {
            controller,
            ..CongestionConfig::default()
        }
    }

    #[test]
    fn the_bounds_apply_to_either_controller() {
        let t = Instant::now();
        for controller in [CongestionController::Bbr, CongestionController::NewReno] {
            let c = CongestionConfig {
                min_window: 0,
                max_window: 5000,
                ..config(controller)
            };
            let cc = Congestion::new(t, 1000, &c, usize::MAX, 100 * MS, 0);
            // 10 datagrams proposed, 5000 allowed.
            assert_eq!(cc.window(), 5000, "{controller:?}");
            assert!(cc.can_send(5000) && !cc.can_send(5001));
        }
    }

    #[test]
    fn new_reno_is_unpaced_unless_capped() {
        let t = Instant::now();
        let cc = Congestion::new(
            t,
            1000,
            &config(CongestionController::NewReno),
            usize::MAX,
            100 * MS,
            0,
        );
        assert_eq!(cc.pacing_rate(), 0);
        let capped = CongestionConfig {
            max_rate: Some(50_000),
            ..config(CongestionController::NewReno)
        };
        let cc = Congestion::new(t, 1000, &capped, usize::MAX, 100 * MS, 0);
        assert_eq!(cc.pacing_rate(), 50_000);
    }

    #[test]
    fn the_rate_floor_and_cap_bound_bbr() {
        let t = Instant::now();
        let floor = CongestionConfig {
            min_rate: 10_000_000,
            controller: CongestionController::Bbr,
            ..CongestionConfig::default()
        };
        let cc = Congestion::new(t, 1000, &floor, usize::MAX, 100 * MS, 0);
        assert_eq!(cc.pacing_rate(), 10_000_000);
        // And the window holds the floor rate for a smoothed RTT.
        assert_eq!(cc.window(), 1_000_000);
        let cap = CongestionConfig {
            max_rate: Some(1000),
            controller: CongestionController::Bbr,
            ..CongestionConfig::default()
        };
        let mut cc = Congestion::new(t, 1000, &cap, usize::MAX, 100 * MS, 0);
        assert_eq!(cc.pacing_rate(), 1000);
        assert!(cc.pacing_ready(t, 1000));
        cc.on_sent(t, 1000);
        cc.on_sent(t, 1000);
        assert!(!cc.pacing_ready(t, 1000));
        assert_eq!(cc.next_paced_send(1000), Some(t + Duration::from_secs(1)));
    }

    #[test]
    fn acks_feed_the_rounds_and_the_estimate() {
        let t = Instant::now();
        let mut cc = Congestion::new(
            t,
            1000,
            &CongestionConfig {
                controller: CongestionController::Bbr,
                ..CongestionConfig::default()
            },
            usize::MAX,
            100 * MS,
            0,
        );
        assert_eq!(cc.bandwidth(), 0);
        // 10 packets a round, each round 40 ms.
        let mut now = t;
        for round in 0..5u32 {
            let sent = now;
            for _ in 0..10 {
                cc.on_sent(sent, 1000);
            }
            now = sent + 40 * MS;
            for _ in 0..10 {
                cc.on_acked(now, 1000, sent);
                cc.on_rtt_sample(40 * MS, MS);
                cc.on_ack_event(now, Some(40 * MS), 40 * MS);
            }
            assert_eq!(cc.in_flight(), 0, "round {round}");
        }
        assert_eq!(cc.bandwidth(), 250_000);
        assert_eq!(cc.min_rtt(), Some(40 * MS));
        assert!(cc.pacing_rate() > 0);
    }
}
