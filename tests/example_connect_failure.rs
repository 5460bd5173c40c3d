//! Example clients that cannot connect say why on stderr and exit non-zero
//! at once, rather than sitting idle until their own timeout.
//!
//! `cargo test` builds the examples, so the binaries are next to this
//! test's (this test builds them when run alone).

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use legume::prelude::*;

mod common;

use common::example_binary;

/// The reason the rejecting server gives.
const REASON: &str = "the server is closed for maintenance";

/// A legume server on loopback that rejects every client with [`REASON`],
/// until `stop` is set.
fn rejecting_server(stop: Arc<AtomicBool>) -> SocketAddr {
    // No schema check: it would refuse these clients with its own reason.
    let config = Config {
        server: legume::net::ServerConfig {
            check_schema: false,
            ..legume::net::ServerConfig::default()
        },
        ..Config::default()
    };
    let mut server = Server::new(Arc::new(MessageFactory::new()), config);
    server.listen("127.0.0.1:0").expect("listen on loopback");
    server.set_connect_hook(|_| Decision::Reject(REASON.into()));
    let addr = server.local_addr().expect("bound");
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            server.update_timeout(Duration::from_millis(5));
        }
    });
    addr
}

/// Waits for `cmd` to exit. The bound is far above the moment it should
/// exit (well under a second) and under the client's own `--timeout`, so
/// only a client that idles until that timeout fails it.
fn run_to_exit(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let limit = Instant::now() + Duration::from_secs(40);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the client is still running after 40 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

fn assert_failed_saying(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(what), "stderr lacks {what:?}: {stderr}");
}

#[test]
fn a_rejected_echo_client_says_why_and_exits_at_once() {
    let stop = Arc::new(AtomicBool::new(false));
    let server = rejecting_server(Arc::clone(&stop));
    let out = run_to_exit(
        Command::new(example_binary("echo"))
            .args(["client", "--connect", &server.to_string()])
            .args(["--messages", "10", "--size", "32", "--delivery", "reliable"])
            .args(["--timeout", "120"]),
    );
    stop.store(true, Ordering::Relaxed);
    assert_failed_saying(&out, &format!("rejected by the server: {REASON}"));
}

#[test]
fn an_echo_client_with_no_answer_says_so_at_its_timeout() {
    // Bound but silent: no handshake answer, and no ICMP error either.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("bound");
    let out = run_to_exit(
        Command::new(example_binary("echo"))
            .args(["client", "--connect", &addr.to_string()])
            .args(["--messages", "10", "--size", "32", "--delivery", "reliable"])
            .args(["--timeout", "1"]),
    );
    assert_failed_saying(&out, &format!("not connected to {addr} within --timeout"));
    // No result line: nothing was measured.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_rejected_chat_client_says_why_and_exits_at_once() {
    let stop = Arc::new(AtomicBool::new(false));
    let server = rejecting_server(Arc::clone(&stop));
    // Stdin stays open (piped, never written): end of input would be the
    // user leaving.
    let out = run_to_exit(
        Command::new(example_binary("chat"))
            .args(["client", "--connect", &server.to_string(), "--name", "ann"])
            .stdin(Stdio::piped()),
    );
    stop.store(true, Ordering::Relaxed);
    assert_failed_saying(&out, &format!("rejected by the server: {REASON}"));
}

#[test]
fn a_chat_client_with_no_answer_says_so_after_the_connect_timeout() {
    // The default connect timeout (10 s) is the wait; chat has no flag for it.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("bound");
    let out = run_to_exit(
        Command::new(example_binary("chat"))
            .args(["client", "--connect", &addr.to_string(), "--name", "ann"])
            .stdin(Stdio::piped()),
    );
    assert_failed_saying(&out, "no answer from the server within the connect timeout");
}
