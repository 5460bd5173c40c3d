//! What the plugins tell the app about connections, as Bevy messages: a
//! client's connect, rejection and disconnect, a server's peers coming and
//! going, and the faults a connection survives. Typed game messages are in
//! `routing`.

use bevy_ecs::message::Message as BevyMessage;
use legume::net::{DisconnectReason, IoError, MessageError};

use crate::PeerId;

/// Client: the handshake completed; messages can flow.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ConnectedToServer;

/// Client: the server refused the connection. The client is disconnected
/// (no [`DisconnectedFromServer`] follows).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ConnectRejected {
    /// The reason the server's app gave.
    pub reason: String,
}

/// Client: the connection ended (a disconnect from either side, a timeout,
/// a handshake that got no answer).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DisconnectedFromServer {
    /// Why it ended.
    pub reason: DisconnectReason,
}

/// Client: a fault the connection survives (see [`Warning`]).
#[derive(Debug)]
pub struct ClientWarning(pub Warning);

/// Server: a peer completed the handshake.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ClientConnected {
    /// The peer.
    pub client: PeerId,
}

/// Server: a peer's connection ended.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ClientDisconnected {
    /// The peer.
    pub client: PeerId,
    /// Why it ended.
    pub reason: DisconnectReason,
}

/// Server: a fault one peer's connection survives (see [`Warning`]).
#[derive(Debug)]
pub struct ServerWarning {
    /// The peer.
    pub client: PeerId,
    /// What went wrong.
    pub warning: Warning,
}

/// A fault a connection survives, reported for logs and counters.
#[derive(Debug)]
#[non_exhaustive]
pub enum Warning {
    /// A received message was dropped (it did not decode, say).
    Message(MessageError),
    /// The socket reported an error, such as an ICMP "port unreachable".
    /// If the peer is really gone, the connection times out.
    Io(IoError),
}

impl BevyMessage for ConnectedToServer {}
impl BevyMessage for ConnectRejected {}
impl BevyMessage for DisconnectedFromServer {}
impl BevyMessage for ClientWarning {}
impl BevyMessage for ClientConnected {}
impl BevyMessage for ClientDisconnected {}
impl BevyMessage for ServerWarning {}
