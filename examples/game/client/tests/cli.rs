//! The `game-client` binary: flag errors, a terminal check, and a bot with
//! no server to play on.

use std::net::UdpSocket;
use std::process::{Command, Stdio};

fn game_client() -> Command {
    Command::new(env!("CARGO_BIN_EXE_game-client"))
}

#[test]
fn bad_flags_exit_2_with_the_usage() {
    for args in [
        &["--bogus"][..],
        &["--port", "70000"],
        &["--bot", "--seconds", "-1"],
    ] {
        let out = game_client().args(args).output().expect("run game-client");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: game-client"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_interactive_client_needs_a_terminal() {
    let out = game_client()
        .stdin(Stdio::null())
        .output()
        .expect("run game-client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("use --bot"), "{stderr}");
}

#[test]
fn a_bot_without_a_server_fails_after_its_time() {
    // A port that was free a moment ago: nobody answers there.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let out = game_client()
        .args(["--bot", "--seconds", "1", "--port", &port.to_string()])
        .output()
        .expect("run game-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("(player -)"), "{stdout}");
}

#[test]
fn a_rejected_bot_says_why_on_stderr_and_exits_at_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use legume::prelude::*;

    // A legume server of the game's protocol id that refuses everyone.
    let config = Config {
        protocol_id: legume_game_protocol::PROTOCOL_ID,
        channels: legume_game_protocol::channels(),
        server: legume::net::ServerConfig {
            check_schema: false,
            ..legume::net::ServerConfig::default()
        },
        ..Config::default()
    };
    let mut server = Server::new(Arc::new(MessageFactory::new()), config);
    server.listen("127.0.0.1:0").expect("listen");
    server.set_connect_hook(|_| Decision::Reject("the game is full".into()));
    let port = server.local_addr().expect("bound").port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let serving = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            server.update_timeout(Duration::from_millis(5));
        }
    });
    // 60 s of play: only a bot that stops at the rejection ends before.
    let out = game_client()
        .args(["--bot", "--seconds", "60", "--port", &port.to_string()])
        .output()
        .expect("run game-client");
    stop.store(true, Ordering::Relaxed);
    serving.join().expect("server thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect: rejected by the server: the game is full"),
        "{stderr}"
    );
}
