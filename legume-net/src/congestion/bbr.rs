//! The model-based controller, after BBR (Cardwell et al. 2016;
//! draft-cardwell-iccrg-bbr-congestion-control): a model of the path's
//! bottleneck bandwidth and minimum RTT sets the pacing rate and the window.
//! Loss changes the model only when the RTT shows a standing queue
//! (`docs/PROTOCOL.md` section 5).

use std::time::{Duration, Instant};

use super::sampler::RoundSample;
use super::{queue_threshold, AckEvent, Controller};

/// Startup's pacing gain, 2/ln 2: the rate doubles each round.
const STARTUP_GAIN: f64 = 2.77;
/// The window gain after Startup: two bandwidth-delay products.
const CWND_GAIN: f64 = 2.0;
/// ProbeBW's pacing gains, one phase per min RTT.
const PROBE_BW_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// The bandwidth estimate is the largest of this many round samples.
const BW_FILTER_ROUNDS: usize = 10;
/// The min RTT is refreshed (by ProbeRTT if need be) this often.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// ProbeRTT holds the window down this long (and at least a round).
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// ProbeRTT's pacing gain: the window floor (`min_window`) may exceed a
/// flow's share of the path, so the queue is drained by pacing slower too.
const PROBE_RTT_GAIN: f64 = 0.5;
/// The smallest window, in datagrams, and ProbeRTT's window.
const MIN_WINDOW_DATAGRAMS: usize = 4;
/// Startup ends after this many rounds without 25% more bandwidth.
const FULL_BW_ROUNDS: u32 = 3;
const FULL_BW_GROWTH: f64 = 1.25;
/// A round that lost more than this fraction of its bytes while the RTT
/// showed a queue is congested (BBRv2's loss threshold).
const LOSS_THRESHOLD: f64 = 0.02;
/// A round that lost more than this fraction is congested whatever the
/// RTT says (a policer drops without queueing)...
const HEAVY_LOSS: f64 = 0.5;
/// ...when it carried at least this many datagrams, so that a few unlucky
/// draws on a small round do not count.
const HEAVY_LOSS_MIN_DATAGRAMS: u64 = 16;
/// A congested round sets the bandwidth estimate to this share of what it
/// delivered: a multiplicative decrease that drains the queue.
const BETA: f64 = 0.85;
/// Rounds in a row whose every RTT sample showed a queue, after which the
/// queue is standing (ProbeBW's probe makes one for a round at most) and
/// is drained as after a congested round.
const STANDING_QUEUE_ROUNDS: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw,
    /// `done_at` is set once the bytes in flight are down to the window.
    ProbeRtt {
        done_at: Option<Instant>,
        round: u64,
    },
}

/// The model: bandwidth samples, min RTT, and the phase it is in.
#[derive(Clone, Debug)]
pub(crate) struct Bbr {
    mtu: usize,
    mode: Mode,
    /// The last `BW_FILTER_ROUNDS` samples that counted, bytes per second.
    bw_samples: [u64; BW_FILTER_ROUNDS],
    samples_taken: usize,
    min_rtt: Option<Duration>,
    min_rtt_at: Option<Instant>,
    srtt: Duration,
    rttvar: Duration,
    rounds: u64,
    full_bw: u64,
    full_bw_rounds: u32,
    filled_pipe: bool,
    /// Rounds in a row whose smallest RTT showed a queue.
    queued_rounds: u32,
    cycle_index: usize,
    cycle_start: Option<Instant>,
    /// The window before the first bandwidth sample.
    initial_window: usize,
    /// ProbeRTT waits for the bytes in flight to fall to this.
    probe_rtt_window: usize,
    /// Where ProbeBW's gain cycle starts, drawn from the connection's nonce
    /// so that flows sharing a bottleneck do not probe in step.
    cycle_seed: u64,
}

impl Bbr {
    /// `floor` is the connection's smallest window (the window ProbeRTT
    /// drains to, at least 4 datagrams).
    pub(crate) fn new(mtu: usize, floor: usize, initial_rtt: Duration, seed: u64) -> Self {
        Bbr {
            mtu,
            mode: Mode::Startup,
            bw_samples: [0; BW_FILTER_ROUNDS],
            samples_taken: 0,
            min_rtt: None,
            min_rtt_at: None,
            srtt: initial_rtt,
            rttvar: Duration::ZERO,
            rounds: 0,
            full_bw: 0,
            full_bw_rounds: 0,
            filled_pipe: false,
            queued_rounds: 0,
            cycle_index: 0,
            cycle_start: None,
            initial_window: (10 * mtu).max(floor),
            probe_rtt_window: (MIN_WINDOW_DATAGRAMS * mtu).max(floor),
            cycle_seed: seed,
        }
    }

    /// The bottleneck bandwidth estimate, bytes per second (0 before a sample).
    fn bw(&self) -> u64 {
        self.bw_samples.iter().copied().max().unwrap_or(0)
    }

    /// `gain` bandwidth-delay products, in bytes.
    fn bdp(&self, gain: f64) -> Option<usize> {
        let (bw, rtt) = (self.bw(), self.min_rtt?);
        (bw > 0).then_some((bw as f64 * rtt.as_secs_f64() * gain) as usize)
    }

    /// The pacer's burst at the estimated rate: 1 ms of it, at least 2
    /// datagrams and at most 64 KiB (`pacing.rs`).
    fn burst(&self) -> usize {
        let per_ms = usize::try_from(self.bw() / 1000).unwrap_or(usize::MAX);
        per_ms.clamp(2 * self.mtu, 64 << 10)
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => 1.0 / STARTUP_GAIN,
            Mode::ProbeBw => PROBE_BW_GAINS[self.cycle_index],
            Mode::ProbeRtt { .. } => PROBE_RTT_GAIN,
        }
    }

    fn record_bw(&mut self, bw: u64) {
        self.bw_samples[self.samples_taken % BW_FILTER_ROUNDS] = bw;
        self.samples_taken += 1;
    }

    /// A round closed: update the bandwidth estimate, and react to congestion.
    fn on_round(&mut self, sample: &RoundSample) {
        self.rounds += 1;
        let big = sample.acked + sample.lost >= HEAVY_LOSS_MIN_DATAGRAMS * self.mtu as u64;
        let heavy = sample.loss_fraction() > HEAVY_LOSS && big;
        let (queued, standing) = self.standing_queue(sample);
        // Losses that met a queue in a round that queued throughout: a
        // queue overflowed (jitter alone makes single samples look queued,
        // but not a whole round's).
        let overflow = queued && sample.congestive_fraction() > LOSS_THRESHOLD;
        if overflow || heavy || standing {
            // Congestion: only what was acked got through the bottleneck;
            // one round never cuts the estimate by more than half (a round
            // can be short of acks for other reasons).
            let delivered = sample.rate(sample.acked).max(self.bw() / 2);
            let delivered = (delivered as f64 * BETA) as u64;
            self.bw_samples = [0; BW_FILTER_ROUNDS];
            self.record_bw(delivered.max(1));
            self.filled_pipe = true;
            return;
        }
        // No congestion: what was lost at random still went through the
        // path (a few bytes lost to a queue do not count).
        let bw = sample.rate(sample.acked + sample.lost - sample.congestive);
        if sample.app_limited && bw < self.bw() {
            return;
        }
        self.record_bw(bw);
        if self.filled_pipe || sample.app_limited {
            return;
        }
        if self.bw() as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = self.bw();
            self.full_bw_rounds = 0;
        } else {
            self.full_bw_rounds += 1;
            self.filled_pipe = self.full_bw_rounds >= FULL_BW_ROUNDS;
        }
    }

    /// Whether every RTT sample of the round showed a queue (above the min
    /// RTT by `queue_threshold`), and whether that makes the queue
    /// standing: `STANDING_QUEUE_ROUNDS` such rounds in a row.
    fn standing_queue(&mut self, sample: &RoundSample) -> (bool, bool) {
        let queued = match (sample.min_rtt, self.min_rtt) {
            (Some(round), Some(min)) => round > min + queue_threshold(min, self.rttvar),
            _ => false,
        };
        self.queued_rounds = if queued { self.queued_rounds + 1 } else { 0 };
        if self.queued_rounds >= STANDING_QUEUE_ROUNDS {
            self.queued_rounds = 0;
            return (queued, true);
        }
        (queued, false)
    }

    /// Takes an RTT sample; returns whether the min RTT had expired.
    fn update_min_rtt(&mut self, now: Instant, rtt: Option<Duration>) -> bool {
        let expired = self
            .min_rtt_at
            .is_some_and(|at| now > at + MIN_RTT_LIFETIME);
        if let Some(rtt) = rtt {
            if expired || self.min_rtt.is_none_or(|min| rtt <= min) {
                self.min_rtt = Some(rtt);
                self.min_rtt_at = Some(now);
            }
        }
        expired
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = Mode::ProbeBw;
        // Any phase but the draining one, as BBR picks.
        let start = (self.cycle_seed % (PROBE_BW_GAINS.len() as u64 - 1)) as usize;
        self.cycle_index = if start >= 1 { start + 1 } else { start };
        self.cycle_start = Some(now);
    }

    /// Moves between the phases after an ack event.
    fn update_mode(&mut self, now: Instant, in_flight: usize, min_rtt_expired: bool) {
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::Drain;
        }
        if self.mode == Mode::Drain && self.bdp(1.0).is_some_and(|bdp| in_flight <= bdp) {
            self.enter_probe_bw(now);
        }
        if self.mode == Mode::ProbeBw {
            let phase = self.min_rtt.unwrap_or(self.srtt);
            if self.cycle_start.is_none_or(|start| now >= start + phase) {
                self.cycle_index = (self.cycle_index + 1) % PROBE_BW_GAINS.len();
                self.cycle_start = Some(now);
            }
        }
        if min_rtt_expired && !matches!(self.mode, Mode::ProbeRtt { .. }) {
            self.mode = Mode::ProbeRtt {
                done_at: None,
                round: self.rounds,
            };
        }
        if let Mode::ProbeRtt { done_at, round } = self.mode {
            match done_at {
                None if in_flight <= self.probe_rtt_window => {
                    self.mode = Mode::ProbeRtt {
                        done_at: Some(now + PROBE_RTT_TIME),
                        round: self.rounds,
                    };
                }
                Some(at) if now >= at && self.rounds > round => {
                    self.min_rtt_at = Some(now);
                    if self.filled_pipe {
                        self.enter_probe_bw(now);
                    } else {
                        self.mode = Mode::Startup;
                    }
                }
                _ => {}
            }
        }
    }
}

impl Controller for Bbr {
    fn window(&self) -> usize {
        if matches!(self.mode, Mode::ProbeRtt { .. }) {
            return self.probe_rtt_window;
        }
        // Two BDPs in every phase, Startup included (as BBRv3 does): the
        // estimate never exceeds the bottleneck's rate, so Startup's queue
        // stays under one BDP while its pacing gain finds the rate.
        let Some(target) = self.bdp(CWND_GAIN) else {
            return self.initial_window;
        };
        // Plus three pacing bursts, as BBR allows for offload batches:
        // where the RTT is mostly the hosts' own processing (loopback, a
        // LAN), two BDPs alone would starve a fast link.
        let target = target + 3 * self.burst();
        let floor = MIN_WINDOW_DATAGRAMS * self.mtu;
        if self.mode == Mode::Startup {
            target.max(self.initial_window)
        } else {
            target.max(floor)
        }
    }

    fn pacing_rate(&self) -> Option<u64> {
        let bw = self.bw();
        if bw == 0 {
            // No sample yet: the initial window over the RTT, at Startup's gain.
            let rtt = self
                .min_rtt
                .unwrap_or(self.srtt)
                .max(Duration::from_micros(1));
            let rate = self.initial_window as f64 / rtt.as_secs_f64() * STARTUP_GAIN;
            return Some(rate as u64);
        }
        // Never below a datagram per smoothed RTT, so that acks keep
        // flowing whatever one bad round did to the estimate.
        let floor = self.mtu as f64 / self.srtt.as_secs_f64().max(1e-6);
        Some((bw as f64 * self.pacing_gain()).max(floor) as u64)
    }

    fn bandwidth(&self) -> u64 {
        self.bw()
    }

    fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    fn on_acked(&mut self, _now: Instant, _size: usize, _sent_at: Instant) {}

    fn on_lost(&mut self, _now: Instant, _size: usize, _sent_at: Instant) {}

    fn on_spurious_loss(&mut self) {}

    fn on_ack_event(&mut self, now: Instant, event: &AckEvent) {
        self.srtt = event.srtt;
        self.rttvar = event.rttvar;
        let expired = self.update_min_rtt(now, event.rtt);
        if let Some(sample) = &event.round {
            self.on_round(sample);
        }
        self.update_mode(now, event.in_flight, expired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A round whose losses were congestive when `rtt` is over 45 ms.
    fn round(acked: u64, lost: u64, rtt: Duration) -> RoundSample {
        RoundSample {
            acked,
            lost,
            congestive: if rtt > 45 * MS { lost } else { 0 },
            interval: 40 * MS,
            app_limited: false,
            min_rtt: Some(rtt),
        }
    }

    fn event(in_flight: usize, rtt: Duration, round: Option<RoundSample>) -> AckEvent {
        AckEvent {
            in_flight,
            rtt: Some(rtt),
            srtt: rtt,
            rttvar: Duration::ZERO,
            round,
        }
    }

    /// Runs rounds of 40 ms delivering `acked` and losing `lost` bytes each,
    /// with RTT samples of `rtt`; returns the instant after the last.
    fn run(
        bbr: &mut Bbr,
        t: Instant,
        rounds: u32,
        acked: u64,
        lost: u64,
        rtt: Duration,
    ) -> Instant {
        let mut now = t;
        for _ in 0..rounds {
            now += 40 * MS;
            let r = round(acked, lost, rtt);
            bbr.on_ack_event(now, &event(0, rtt, Some(r)));
        }
        now
    }

    #[test]
    fn startup_fills_the_pipe_then_drains_into_probe_bw() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 3);
        assert_eq!(bbr.window(), 10_000);
        // 10 rounds of 40 kB per 40 ms: 1 MB/s, no growth after the first.
        let now = run(&mut bbr, t, 10, 40_000, 0, 40 * MS);
        assert_eq!(bbr.bandwidth(), 1_000_000);
        assert_eq!(bbr.mode, Mode::ProbeBw, "drained with nothing in flight");
        assert_ne!(bbr.cycle_index, 1);
        // Two BDPs of 40 kB, and three bursts of 2 datagrams.
        assert_eq!(bbr.window(), 86_000);
        let gain = PROBE_BW_GAINS[bbr.cycle_index];
        assert_eq!(bbr.pacing_rate(), Some((1e6 * gain) as u64));
        // The cycle moves one phase per min RTT.
        let before = bbr.cycle_index;
        bbr.on_ack_event(now + 41 * MS, &event(0, 40 * MS, None));
        assert_eq!(bbr.cycle_index, (before + 1) % 8);
    }

    #[test]
    fn random_loss_without_a_queue_keeps_the_rate() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 0);
        // 20% of each round lost, but the RTT stays at its minimum.
        run(&mut bbr, t, 30, 32_000, 8_000, 40 * MS);
        assert_eq!(bbr.bandwidth(), 1_000_000);
        assert!(bbr.pacing_rate().unwrap() >= 750_000);
    }

    #[test]
    fn loss_with_a_standing_queue_cuts_the_estimate() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 0);
        let now = run(&mut bbr, t, 10, 40_000, 0, 40 * MS);
        // The queue adds 30 ms and 5% is dropped at its tail.
        run(&mut bbr, now, 1, 38_000, 2_000, 70 * MS);
        assert_eq!(bbr.bandwidth(), (950_000.0 * BETA) as u64);
        // The same loss with the RTT at its minimum is not congestion.
        let mut calm = Bbr::new(1000, 4000, 100 * MS, 0);
        let now = run(&mut calm, t, 10, 40_000, 0, 40 * MS);
        run(&mut calm, now, 1, 38_000, 2_000, 41 * MS);
        assert_eq!(calm.bandwidth(), 1_000_000);
    }

    #[test]
    fn heavy_loss_is_congestion_whatever_the_rtt() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 0);
        let now = run(&mut bbr, t, 10, 40_000, 0, 40 * MS);
        run(&mut bbr, now, 1, 16_000, 24_000, 40 * MS);
        // 400 kB/s got through, but one round cuts at most by half.
        assert_eq!(bbr.bandwidth(), (500_000.0 * BETA) as u64);
    }

    #[test]
    fn probe_rtt_every_ten_seconds() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 0);
        let mut now = run(&mut bbr, t, 10, 40_000, 0, 40 * MS);
        // Ten seconds of samples above the minimum: the min RTT expires.
        now = run(&mut bbr, now, 251, 40_000, 0, 45 * MS);
        assert!(matches!(bbr.mode, Mode::ProbeRtt { .. }), "{:?}", bbr.mode);
        assert_eq!(bbr.window(), 4000);
        assert_eq!(bbr.min_rtt(), Some(45 * MS));
        // Nothing in flight: 200 ms and a round later it is over.
        now = run(&mut bbr, now, 6, 40_000, 0, 45 * MS);
        assert_eq!(bbr.mode, Mode::ProbeBw);
        assert!(bbr.window() > 4000);
        let _ = now;
    }

    #[test]
    fn the_rate_is_never_zero() {
        let t = Instant::now();
        let mut bbr = Bbr::new(1000, 4000, 100 * MS, 0);
        assert_eq!(bbr.pacing_rate(), Some(277_000));
        // A round that delivered nothing in its interval still leaves a rate.
        run(&mut bbr, t, 3, 0, 40_000, 40 * MS);
        assert!(bbr.pacing_rate().unwrap() > 0);
    }
}
