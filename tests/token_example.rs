//! The `token` example (a connect-token service on the command line):
//! its keys and tokens are what the library reads and a server opens.

mod common;

use std::process::Command;

use common::example_binary;
use legume::net::secure::open_private_token;
use legume::net::{ConnectToken, PrivateKey};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(example_binary("token"))
        .args(args)
        .output()
        .expect("run the token example");
    (
        out.status.success(),
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned(),
    )
}

#[test]
fn keygen_and_issue_make_tokens_a_server_opens() {
    let (ok, key_text) = run(&["keygen"]);
    assert!(ok);
    let key = PrivateKey::from_base64(&key_text).expect("a base64 key");
    let (ok, token_text) = run(&[
        "issue",
        "--key",
        &key_text,
        "--server",
        "127.0.0.1:40100",
        "--server",
        "[::1]:40100",
        "--client-id",
        "7",
        "--name",
        "ann",
        "--lifetime",
        "120",
    ]);
    assert!(ok);
    let token = ConnectToken::from_base64(&token_text).expect("a token");
    let servers = token.server_addresses().to_vec();
    assert_eq!(servers.len(), 2);
    assert_eq!(token.expire_timestamp() - token.create_timestamp(), 120);
    let private = open_private_token(
        &key,
        &token.sealed(),
        0,
        token.create_timestamp(),
        servers[1],
    )
    .expect("the server opens it");
    assert_eq!(private.client_id(), 7);
    assert_eq!(&private.user_data()[..4], b"ann\0");
    // Another key's server refuses it.
    let other = PrivateKey::generate().unwrap();
    assert!(open_private_token(
        &other,
        &token.sealed(),
        0,
        token.create_timestamp(),
        servers[0]
    )
    .is_err());
}

#[test]
fn bad_arguments_fail() {
    assert!(!run(&[]).0);
    assert!(
        !run(&[
            "issue",
            "--key",
            "short",
            "--server",
            "127.0.0.1:1",
            "--client-id",
            "1",
            "--name",
            "x"
        ])
        .0
    );
    let (_, key) = run(&["keygen"]);
    let long = "n".repeat(33);
    assert!(
        !run(&[
            "issue",
            "--key",
            &key,
            "--server",
            "127.0.0.1:1",
            "--client-id",
            "1",
            "--name",
            &long
        ])
        .0
    );
    assert!(
        !run(&["issue", "--key", &key, "--client-id", "1", "--name", "x"]).0,
        "no server"
    );
}
