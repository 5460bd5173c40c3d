//! The `echo` example, run as subprocesses through a lossy UDP proxy on
//! loopback (5% loss and 1% duplication each way): every reliable and
//! ordered message comes back exactly once.
//!
//! `cargo test` builds the examples, so the binary is next to this test's
//! (this test builds it when run alone).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod common;

use common::{example_binary, free_port, lossy_proxy, Killed};

fn run(delivery: &str, messages: u32, size: u32) -> String {
    let bin = example_binary("echo");
    let server_addr = free_port();
    let _server = Killed(
        Command::new(&bin)
            .args([
                "server",
                "--listen",
                &server_addr.to_string(),
                "--seconds",
                "60",
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo server"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = lossy_proxy(server_addr, 0.05, 0.01, Arc::clone(&stop));
    thread::sleep(Duration::from_millis(200));
    let out = Command::new(&bin)
        .args(["client", "--connect", &proxy.to_string()])
        .args([
            "--messages",
            &messages.to_string(),
            "--size",
            &size.to_string(),
        ])
        .args(["--delivery", delivery, "--timeout", "40"])
        .output()
        .expect("run echo client");
    stop.store(true, Ordering::Relaxed);
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "client failed: {line}");
    line
}

fn field(line: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let start = line.find(&pat).unwrap_or_else(|| panic!("{key} in {line}")) + pat.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{key} value in {line}"))
}

#[test]
fn echo_through_a_lossy_proxy_is_exactly_once() {
    for delivery in ["ordered", "reliable"] {
        let line = run(delivery, 3000, 32);
        println!("{line}");
        assert_eq!(field(&line, "echoed"), 3000, "{line}");
        assert_eq!(field(&line, "duplicates"), 0, "{line}");
        if delivery == "ordered" {
            assert_eq!(field(&line, "out_of_order"), 0, "{line}");
        }
    }
}
