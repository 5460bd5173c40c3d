//! `examples/event_loop.rs` drives the sans-IO `ServerEndpoint` from a mio
//! loop: run over real UDP on loopback, every echo comes back, in order.
//!
//! `cargo test` builds the examples, so the binary is next to this test's
//! (this test builds it when run alone).

use std::process::Command;

mod common;

use common::example_binary;

#[test]
fn the_event_loop_example_echoes_every_message() {
    let out = Command::new(example_binary("event_loop"))
        .args(["--messages", "500"])
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("echoed 500 messages; the client got 500 of 500 back"),
        "{stdout}"
    );
}
