//! Scaffolding for the server endpoint's unit tests: a seeded endpoint, a
//! connect request, and a client run through the handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use legume_core::MessageFactory;

use crate::packet::{Packet, HANDSHAKE_LEN};
use crate::{Config, Connection};

use super::ServerEndpoint;

/// An endpoint with the default config, no messages and seed 1.
pub(super) fn endpoint(now: Instant) -> ServerEndpoint {
    ServerEndpoint::with_insecure_seed(Config::default(), Arc::new(MessageFactory::new()), now, 1)
}

/// A plain CONNECT_REQUEST for protocol id 0.
pub(super) fn request(nonce: u64) -> Vec<u8> {
    let mut buf = vec![0u8; HANDSHAKE_LEN];
    let n = Packet::ConnectRequest {
        protocol_id: 0,
        nonce,
    }
    .emit(&mut buf)
    .unwrap();
    buf.truncate(n);
    buf
}

/// Runs a client through the handshake; returns its CHALLENGE_RESPONSE.
pub(super) fn handshake(
    s: &mut ServerEndpoint,
    c: &mut Connection,
    addr: SocketAddr,
    now: Instant,
) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut response = Vec::new();
    for _ in 0..4 {
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            if matches!(
                Packet::parse(&buf[..n]),
                Ok(Packet::ChallengeResponse { .. })
            ) {
                response = buf[..n].to_vec();
            }
            s.handle_datagram(now, addr, &buf[..n]);
        }
        while let Some((_, n)) = s.poll_transmit(now, &mut buf) {
            c.handle_datagram(now, &buf[..n]);
        }
    }
    response
}
