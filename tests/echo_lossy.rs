//! The `echo` example, run as subprocesses through a lossy UDP proxy on
//! loopback (5% loss and 1% duplication each way): every reliable and
//! ordered message comes back exactly once.
//!
//! `cargo test` builds the examples, so the binary is next to this test's
//! (this test builds it when run alone).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

mod common;

use common::{free_port, lossy_proxy, Killed};

fn echo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile_dir
        .join("examples")
        .join(format!("echo{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        // `cargo test --test echo_lossy` alone does not build examples.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "echo"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the echo example failed");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

fn run(delivery: &str, messages: u32, size: u32) -> String {
    let bin = echo_binary();
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
