//! legume v4's handshake (`docs/LEGUME_COMPAT.md`): no cookie exchange
//! exists, so a connection is created for a datagram that opens with a
//! well-formed ConnectRequest, within the same limits as a native handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use legume_core::Writer;
use tracing::info;

use crate::connection::Connection;
use crate::legacy::wire;

use super::admit::Decision;
use super::peers::Offered;
use super::{ServerEndpoint, LOG_TARGET};

impl ServerEndpoint {
    /// One datagram when the endpoint speaks legume v4.
    pub(super) fn handle_v4_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if !matches!(
            self.peers.handle_datagram(now, from, datagram, |_| None),
            Offered::NotAPeer
        ) {
            return;
        }
        let Some((request, version)) = wire::connect_request(datagram) else {
            self.stats.dropped_invalid += 1;
            self.log_invalid(now, from);
            return;
        };
        if self.over_connect_rate(now, from) {
            return;
        }
        let decision = if version != wire::PROTOCOL_VERSION {
            Decision::Reject(format!("legume protocol version {version} is not 4"))
        } else {
            self.decide(from, None)
        };
        match decision {
            Decision::Reject(reason) => self.reject_v4(now, from, request.id, &reason),
            Decision::Accept => {
                self.stats.accepted += 1;
                info!(target: LOG_TARGET, peer = %from, peers = self.peers.len() + 1, protocol = "legume v4",
                    "accepted the connection from {from}");
                let mut conn = Connection::accepted_v4(
                    crate::Config::clone(&self.config),
                    Arc::clone(&self.factory),
                    now,
                    from,
                );
                conn.handle_datagram(now, datagram);
                self.peers.insert(from, conn, None);
            }
        }
    }

    /// Refuses a legume v4 ConnectRequest: stateless, reliable as legume's,
    /// and 6 bytes, smaller than the 7-byte request. A lost one is answered
    /// again when the client resends its request.
    fn reject_v4(&mut self, now: Instant, from: SocketAddr, request_id: u16, reason: &str) {
        self.stats.rejected += 1;
        self.log_reject(now, from, reason);
        let mut buf = [0u8; 6];
        let mut w = Writer::new(&mut buf);
        let header = wire::Header {
            id: request_id,
            seq: 0,
            flags: wire::FLAG_RELIABLE,
        };
        if header.write(&mut w).is_ok() && wire::Control::Rejected.write(&mut w).is_ok() {
            self.reply_bytes(now, from, buf.to_vec());
        }
    }
}
