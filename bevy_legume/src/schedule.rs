//! When the plugins' systems run ([`LegumeSet`]) and run conditions that
//! gate a game's systems on the connection.

use bevy_ecs::schedule::SystemSet;
use bevy_ecs::system::Res;
use legume::net::State;

use crate::{LegumeClient, LegumeServer};

/// The system sets the plugins put their systems in, for ordering a game's
/// own systems around them.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, SystemSet)]
pub enum LegumeSet {
    /// In `PreUpdate`: the driver reads the socket, and what arrived is
    /// written as Bevy messages. Systems in `Update` see it the same frame.
    Receive,
    /// In `PostUpdate`: the driver sends what the frame queued.
    Send,
}

/// Run condition: the client is connected (the handshake completed and the
/// connection has not ended).
pub fn client_connected(client: Option<Res<LegumeClient>>) -> bool {
    client.is_some_and(|c| c.state() == State::Connected)
}

/// Run condition: the client is in its handshake.
pub fn client_connecting(client: Option<Res<LegumeClient>>) -> bool {
    client.is_some_and(|c| c.state() == State::Connecting)
}

/// Run condition: the client is neither connected nor connecting (never
/// connected, disconnected, refused or timed out), or there is no client.
pub fn client_disconnected(client: Option<Res<LegumeClient>>) -> bool {
    client.is_none_or(|c| matches!(c.state(), State::Disconnected | State::Errored))
}

/// Run condition: the server is listening.
pub fn server_running(server: Option<Res<LegumeServer>>) -> bool {
    server.is_some_and(|s| s.is_listening())
}

/// Run condition: the server has at least one peer (connected, or still in
/// its handshake).
pub fn server_has_peers(server: Option<Res<LegumeServer>>) -> bool {
    server.is_some_and(|s| s.peer_count() > 0)
}
