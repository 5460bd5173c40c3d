//! The `game-server` binary: the README's demo command, and flag errors.

use std::process::Command;

fn game_server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_game-server"))
}

#[test]
fn the_demo_ends_by_itself_and_reports_what_each_bot_saw() {
    let out = game_server()
        .args(["--demo", "--seconds", "4"])
        .output()
        .expect("run game-server");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}", out.status);
    for bot in ["bot-1", "bot-2", "bot-3", "bot-4"] {
        assert!(
            stdout.contains(&format!("{bot} (player ")),
            "no report for {bot}:\n{stdout}"
        );
    }
    assert!(stdout.contains("ok: all 4 bots saw each other"), "{stdout}");
}

#[test]
fn bad_flags_exit_2_with_the_usage() {
    for args in [
        &["--bogus"][..],
        &["--port"],
        &["--port", "x"],
        &["--loss", "2"],
        &["--seconds", "0"],
    ] {
        let out = game_server().args(args).output().expect("run game-server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: game-server"), "{args:?}: {stderr}");
    }
}
