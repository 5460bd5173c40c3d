//! The endpoint's own log lines about addresses that are not peers, rate
//! limited: summaries for all such sources together, so a flood from many
//! addresses writes one line per interval, not one per address; and
//! rejections one by one, up to a burst per interval.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::observe::{Gate, Tally};

use super::replies::MAX_PENDING_REPLIES;
use super::{ServerEndpoint, LOG_TARGET};

/// Rejections logged one by one per log interval, at most; the rest are
/// counted and the number given with the next one logged.
const REJECTS_LOGGED: u32 = 32;

/// Rate limits of the endpoint's own log events.
#[derive(Debug, Default)]
pub(super) struct EndpointLogs {
    invalid: Tally,
    refused: Tally,
    rate_limited: Tally,
    dropped_replies: Tally,
    rejects: Gate,
    /// The latest source summarised, named again when a summary is flushed.
    latest: Option<SocketAddr>,
}

impl ServerEndpoint {
    /// Writes the endpoint's summaries whose interval has passed (a flood
    /// that stopped is reported here rather than with its next datagram).
    pub(super) fn flush_logs(&mut self, now: Instant) {
        if let Some(from) = self.logs.latest {
            self.log_invalid(now, from);
            self.log_refused(now, from);
            self.log_rate_limited(now, from);
        }
    }

    /// Summarises datagrams from sources that are not peers and are no
    /// handshake (debug, once per log interval for all such sources).
    pub(super) fn log_invalid(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        if let Some((n, secs)) = self
            .logs
            .invalid
            .due(now, self.epoch, self.stats.dropped_invalid)
        {
            debug!(target: LOG_TARGET, latest = %from, count = n, secs,
                "{n} invalid datagrams from unknown sources in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Summarises refused challenge responses: bad or expired cookies and
    /// replays (debug, once per log interval).
    pub(super) fn log_refused(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        let total = self.stats.bad_cookies + self.stats.replayed;
        if let Some((n, secs)) = self.logs.refused.due(now, self.epoch, total) {
            debug!(target: LOG_TARGET, latest = %from, count = n, secs, bad_cookies = self.stats.bad_cookies,
                replayed = self.stats.replayed,
                "{n} challenge responses refused (bad, expired or replayed cookie) \
                 in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Summarises handshake packets over the per-source rate (warn, once
    /// per log interval).
    pub(super) fn log_rate_limited(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        if let Some((n, secs)) =
            self.logs
                .rate_limited
                .due(now, self.epoch, self.stats.rate_limited)
        {
            let limit = self.config.server.connect_rate_per_source;
            warn!(target: LOG_TARGET, latest = %from, count = n, secs, limit,
                "{n} handshake packets over the connect rate ({limit}/s per source) dropped \
                 in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Summarises handshake replies dropped because the queue was full
    /// (warn, once per log interval).
    pub(super) fn log_dropped_reply(&mut self, now: Instant, to: SocketAddr) {
        if let Some((n, secs)) =
            self.logs
                .dropped_replies
                .due(now, self.epoch, self.stats.dropped_replies)
        {
            warn!(target: LOG_TARGET, latest = %to, count = n, secs, limit = MAX_PENDING_REPLIES,
                "{n} handshake replies dropped in the last {secs:.1} s: \
                 {MAX_PENDING_REPLIES} were waiting to be sent (latest to {to})");
        }
    }

    /// Logs one rejection (info), at most [`REJECTS_LOGGED`] per log interval.
    pub(super) fn log_reject(&mut self, now: Instant, from: SocketAddr, reason: &str) {
        if let Some(suppressed) = self.logs.rejects.allow(now, REJECTS_LOGGED) {
            info!(target: LOG_TARGET, peer = %from, reason, suppressed,
                "rejected the connection from {from}: {reason}");
        }
    }
}
