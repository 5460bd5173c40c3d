//! What a test reads from its process and host: numbers from the
//! environment, a seed from the clock, resident memory and kernel socket
//! drops from `/proc`, and a polling wait.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// A number from the environment (decimal, or hex with `0x`), or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(s) = std::env::var(name) else {
        return default;
    };
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
    .unwrap_or_else(|| panic!("{name}={s} is not a number"))
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`); 0 elsewhere.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Datagrams the kernel dropped at the UDP socket bound to `addr` (its
/// receive buffer was full), from `/proc/net/udp`; `None` if unknown.
pub fn kernel_drops(addr: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(a) = addr else { return None };
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(a.ip().octets()),
        a.port()
    );
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.get(1) == Some(&local.as_str()))
            .then(|| cols.last()?.parse().ok())
            .flatten()
    })
}

pub fn seed_from_clock() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ 0x9E37_79B9_7F4A_7C15
}

/// Waits for `done`, checking every millisecond, until `max` passes.
pub fn wait_for(max: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + max;
    while Instant::now() < end {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    done()
}
