//! Byte rates for people, for the client's status line and the server's
//! `--stats` table. The rates themselves come from legume's live
//! statistics (`Client::live_stats`, `Server::live_stats`), which compute
//! them over a sliding window from the cumulative `Stats` counters.
//!
//! ```
//! use legume_game_protocol::rates::human_rate;
//!
//! assert_eq!(human_rate(1500.0), "1.5 kB/s");
//! ```

/// A byte rate for people: `812 B/s`, `3.4 kB/s`, `1.2 MB/s`.
pub fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s < 1000.0 {
        format!("{bytes_per_s:.0} B/s")
    } else if bytes_per_s < 1e6 {
        format!("{:.1} kB/s", bytes_per_s / 1e3)
    } else {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_rates() {
        assert_eq!(human_rate(812.0), "812 B/s");
        assert_eq!(human_rate(3400.0), "3.4 kB/s");
        assert_eq!(human_rate(1_234_000.0), "1.2 MB/s");
    }
}
