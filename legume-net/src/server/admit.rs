//! What every native handshake ends in: the verdict on a client that proved
//! its address (its schema, the peer limit, the accept switch, the app's
//! connect hook) and then either a REJECT or a new connection and its
//! ACCEPT, repeated when the client shows the first one was lost.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tracing::info;

use crate::client_id::ClientId;
use crate::connection::Connection;
use crate::handshake::extension;
use crate::packet::Packet;
use crate::secure::{PrivateToken, USER_DATA_LEN};

use super::replies::handshake_bytes;
use super::{ServerEndpoint, LOG_TARGET};

/// What the app decided about a connect request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Decision {
    /// Let the client in.
    Accept,
    /// Refuse, telling the client why (at most 255 bytes are sent).
    Reject(String),
}

/// A client asking to connect, as the connect-request hook sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The client's address (proven: it received the challenge there).
    pub addr: SocketAddr,
    /// Peers connected now.
    pub peer_count: usize,
    /// Secure mode: the client id from the client's connect token (who the
    /// backend says it is). `None` in the plain mode.
    pub client_id: Option<u64>,
    /// Secure mode: the backend's user data from the connect token. `None`
    /// in the plain mode.
    pub user_data: Option<[u8; USER_DATA_LEN]>,
}

/// Decides on connect requests (legume's `OnConnectRequest`).
pub type ConnectHook = Box<dyn FnMut(&ConnectRequest) -> Decision + Send>;

/// A [`ConnectHook`] held so that its owner is `Sync` (an engine can share
/// a server by reference across threads, a Bevy `Resource` must be `Sync`)
/// while the hook itself need only be `Send`: it is called through
/// `&mut self`, where [`Mutex::get_mut`] takes no lock.
pub(crate) struct HeldHook(Mutex<ConnectHook>);

impl HeldHook {
    pub(crate) fn new(hook: ConnectHook) -> Self {
        HeldHook(Mutex::new(hook))
    }

    /// Runs the hook. A hook that panicked before is still called: the
    /// panic went to the app that called into the server, and the hook
    /// holds no invariant of the server's.
    pub(crate) fn call(&mut self, request: &ConnectRequest) -> Decision {
        let hook = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        hook(request)
    }

    /// The hook itself (the UDP driver holds one until it listens).
    #[cfg(feature = "udp")]
    pub(crate) fn into_inner(self) -> ConnectHook {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServerEndpoint {
    /// The app's and the limits' verdict on a client that asks to connect.
    pub(super) fn decide(&mut self, from: SocketAddr, token: Option<&PrivateToken>) -> Decision {
        if self.peers.len() >= self.max_peers {
            Decision::Reject("server is full".into())
        } else if !self.accept_new {
            Decision::Reject("server is not accepting new connections".into())
        } else if let Some(id) = token
            .map(|t| ClientId::new(t.client_id()))
            .filter(|&id| self.peers.has_client(id))
        {
            // One connection per client id, as netcode.io: the id names
            // the player to the app for the life of the connection.
            Decision::Reject(format!("{id} is already connected"))
        } else if let Some(hook) = &mut self.hook {
            hook.call(&ConnectRequest {
                addr: from,
                peer_count: self.peers.len(),
                client_id: token.map(PrivateToken::client_id),
                user_data: token.map(|t| *t.user_data()),
            })
        } else {
            Decision::Accept
        }
    }

    /// Checks the client's channel list in a challenge response's extension
    /// against the endpoint's, and its schema summary against the
    /// endpoint's messages when configured to.
    pub(super) fn check_schema(&self, extension: &[u8]) -> Result<(), String> {
        let check_schema = self.config.server.check_schema;
        extension::check(
            &self.factory,
            &self.config.channels,
            extension,
            check_schema,
        )
    }

    /// A client proved its address: ask the app, then accept or reject.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        issued_at: u64,
        schema: Result<(), String>,
        token: Option<PrivateToken>,
    ) {
        let decision = match schema {
            Err(reason) => {
                self.stats.schema_mismatches += 1;
                Decision::Reject(reason)
            }
            Ok(()) => self.decide(from, token.as_ref()),
        };
        match decision {
            Decision::Reject(reason) => {
                self.stats.rejected += 1;
                self.log_reject(now, from, &reason);
                let reject = Packet::Reject {
                    nonce,
                    reason: &reason,
                };
                self.reply(now, from, &reject);
            }
            Decision::Accept => self.accept(now, from, nonce, issued_at, token),
        }
    }

    /// Opens the connection of an admitted client and sends its ACCEPT.
    fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        issued_at: u64,
        token: Option<PrivateToken>,
    ) {
        self.stats.accepted += 1;
        let expiry = self.cookie_expiry(issued_at);
        self.completed.insert(expiry, from, nonce);
        let mut session = self.rng.next_u32();
        while token.is_some() && session == 0 {
            // Session 0 is the secure handshake's nonce prefix.
            session = self.rng.next_u32();
        }
        let mut config = Arc::clone(&self.config);
        let identity = token.as_ref().map(|t| (t.client_id(), *t.user_data()));
        let secure = token.map(|t| {
            // The token's timeout: a configuration of this peer's own.
            Arc::make_mut(&mut config).timeout = t.timeout();
            self.open_session(from, &t)
        });
        info!(target: LOG_TARGET, peer = %from, session, peers = self.peers.len() + 1,
            "accepted the connection from {from}");
        let accept = secure.as_ref().map(|s| s.accept_packet(nonce, session));
        let conn = Connection::accepted(
            config,
            Arc::clone(&self.factory),
            now,
            from,
            nonce,
            session,
            secure,
        );
        match accept {
            Some(bytes) => self.reply_bytes(now, from, bytes),
            None => self.reply(now, from, &Packet::Accept { nonce, session }),
        }
        self.peers.insert(from, conn, identity);
    }
}

/// The ACCEPT to send again when a connected client retransmits the
/// challenge response that opened its connection: the first ACCEPT was
/// lost. `None` for any other datagram, which is the connection's to
/// process (another attempt's response included).
pub(super) fn repeated_accept(conn: &Connection, datagram: &[u8]) -> Option<Vec<u8>> {
    match Packet::parse(datagram) {
        Ok(Packet::ChallengeResponse { nonce, .. })
            if nonce == conn.nonce() && !conn.is_secure() =>
        {
            let session = conn.session();
            handshake_bytes(&Packet::Accept { nonce, session })
        }
        Ok(Packet::SecureChallengeResponse { nonce, .. }) if nonce == conn.nonce() => {
            conn.secure_accept()
        }
        _ => None,
    }
}
