//! Who a server's peer is: [`ClientId`], its stable identity, and
//! [`PeerRef`], a peer named either by that identity or by its address.

use std::fmt;
use std::net::SocketAddr;

/// A connection's identity on a server, stable for the connection's life.
///
/// In the secure mode it is the client id the backend wrote in the
/// client's connect token (a server admits one connection per client id at
/// a time). Otherwise the server assigns it: 1, 2, 3, … in the order
/// connections open, never reused by the same endpoint. Unlike the
/// address, it survives nothing but also means nothing outside this
/// server: store your own player ids in your own data.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct ClientId(u64);

impl ClientId {
    /// The id with this number (a token's client id, or one read back from
    /// [`get`](Self::get)).
    pub const fn new(id: u64) -> Self {
        ClientId(id)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

impl From<ClientId> for u64 {
    fn from(id: ClientId) -> u64 {
        id.0
    }
}

/// A server's peer, named by its [`ClientId`] or by its address: every
/// server method that acts on one peer takes either
/// (`server.send(event.client, …)` or `server.send(addr, …)`).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum PeerRef {
    /// The peer with this identity.
    Client(ClientId),
    /// The peer at this address.
    Addr(SocketAddr),
}

impl From<ClientId> for PeerRef {
    fn from(id: ClientId) -> Self {
        PeerRef::Client(id)
    }
}

impl From<SocketAddr> for PeerRef {
    fn from(addr: SocketAddr) -> Self {
        PeerRef::Addr(addr)
    }
}

impl From<&ClientId> for PeerRef {
    fn from(id: &ClientId) -> Self {
        PeerRef::Client(*id)
    }
}

impl From<&SocketAddr> for PeerRef {
    fn from(addr: &SocketAddr) -> Self {
        PeerRef::Addr(*addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_addresses_name_peers() {
        let id = ClientId::new(7);
        assert_eq!(id.get(), 7);
        assert_eq!(u64::from(id), 7);
        assert_eq!(id.to_string(), "client 7");
        assert_eq!(PeerRef::from(id), PeerRef::Client(id));
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(PeerRef::from(&addr), PeerRef::Addr(addr));
        assert!(ClientId::new(1) < ClientId::new(2));
    }
}
