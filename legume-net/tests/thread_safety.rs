//! `Client`, `Server` and the sans-IO types are `Send + Sync`, checked at
//! compile time: an engine can keep them in shared state (a Bevy `Resource`
//! must be `Sync`) or move them to another thread.

use legume_net::{Client, Connection, LiveStats, Server, ServerEndpoint, Stats};

const fn send_sync<T: Send + Sync>() {}

const _: () = {
    send_sync::<Client>();
    send_sync::<Server>();
    send_sync::<Connection>();
    send_sync::<ServerEndpoint>();
    send_sync::<Stats>();
    send_sync::<LiveStats>();
};

/// A hook that is `Send` but not `Sync` (a `Cell` inside) still makes a
/// `Sync` server: it is only ever called through `&mut`.
#[test]
fn a_send_only_hook_keeps_the_server_sync() {
    use std::cell::Cell;
    use std::sync::Arc;

    use legume_core::MessageFactory;
    use legume_net::{Config, Decision};

    let asked = Cell::new(0u32);
    let mut server = Server::new(Arc::new(MessageFactory::new()), Config::default());
    server.set_connect_hook(move |_| {
        asked.set(asked.get() + 1);
        Decision::Accept
    });
    let shared = Arc::new(server);
    let other = Arc::clone(&shared);
    std::thread::spawn(move || other.peer_count())
        .join()
        .expect("read from another thread");
    assert_eq!(shared.peer_count(), 0);
}
