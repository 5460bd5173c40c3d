//! Helpers shared by the root integration tests: a lossy proxy, example
//! binaries and child processes here; random draws ([`draw`]), environment,
//! `/proc` and clock helpers ([`system`]), legume 0.5 vectors ([`vectors`])
//! and the hand-built wire format ([`wire`], legume-net's
//! `tests/util/wire.rs`, shared with its fuzz tests) in the modules.

#![allow(dead_code)]

pub mod draw;
pub mod system;
pub mod vectors;
#[path = "../../legume-net/tests/util/wire.rs"]
pub mod wire;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use legume::net::sim::Rng;

/// Forwards datagrams between one client and `target`, dropping and
/// duplicating some, until `stop` is set.
pub fn lossy_proxy(target: SocketAddr, loss: f64, dup: f64, stop: Arc<AtomicBool>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind proxy");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut rng = Rng::new(2024);
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let to = if from == target {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                target
            };
            if rng.chance(loss) {
                continue;
            }
            let copies = if rng.chance(dup) { 2 } else { 1 };
            for _ in 0..copies {
                let _ = socket.send_to(&buf[..n], to);
            }
        }
    });
    addr
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The binary of example `name` next to this test's profile directory,
/// built if `cargo test` has not built it (a filtered run may not have).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("run cargo").success(),
            "building the {name} example failed"
        );
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}
