//! A client and a server endpoint joined by function calls on a test clock,
//! every datagram recorded: what the documents' sizes are checked against.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume::net::{ConnectToken, Connection, PrivateKey, ServerEndpoint, TokenParams};
use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 20)]
pub(crate) struct Blob {
    data: Vec<u8>,
}

/// A message whose encoding is exactly `len` bytes.
pub(crate) fn blob(len: usize) -> Blob {
    (0..len)
        .rev()
        .map(|n| Blob { data: vec![7; n] })
        .find(|b| b.message_len() == len)
        .unwrap_or_else(|| panic!("no blob of {len} bytes"))
}

pub(crate) fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Blob>().expect("one message");
    Arc::new(f)
}

pub(crate) const PACKET_DATA: u8 = 0x06;
pub(crate) const DATA_HEADER: usize = 18;

/// A client and a server endpoint joined by function calls on a test
/// clock; every datagram is recorded.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) client: Connection,
    pub(crate) server: ServerEndpoint,
    pub(crate) addr: SocketAddr,
    /// (from the client?, bytes) of every datagram, in order.
    pub(crate) wire: Vec<(bool, Vec<u8>)>,
}

pub(crate) const SERVER_ADDR: &str = "192.0.2.1:4000";
pub(crate) const UNIX_NOW: u64 = 1_700_000_000;

impl Pair {
    pub(crate) fn plain(config: Config) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            client: Connection::connect(config.clone(), factory(), now, 42),
            server: ServerEndpoint::with_insecure_seed(config, factory(), now, 7),
            addr: "192.0.2.2:5000".parse().expect("address"),
            wire: Vec::new(),
        }
    }

    pub(crate) fn secure(config: Config) -> Pair {
        let now = Instant::now();
        let key = PrivateKey::from_bytes([0x11; 32]);
        let server_addr: SocketAddr = SERVER_ADDR.parse().expect("address");
        let params = TokenParams::new(config.protocol_id, 1, vec![server_addr]);
        let token = ConnectToken::issue_at(&key, &params, UNIX_NOW).expect("token");
        let mut server = ServerEndpoint::with_insecure_seed(config.clone(), factory(), now, 7);
        server.require_connect_tokens(key, server_addr, now, UNIX_NOW);
        Pair {
            now,
            client: Connection::connect_with_token(config, factory(), now, 42, &token),
            server,
            addr: "192.0.2.2:5000".parse().expect("address"),
            wire: Vec::new(),
        }
    }

    /// Everything either side sends now, delivered and recorded, until
    /// both are quiet.
    pub(crate) fn exchange(&mut self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut moved = false;
            while let Some(n) = self.client.poll_transmit(self.now, &mut buf) {
                self.wire.push((true, buf[..n].to_vec()));
                self.server.handle_datagram(self.now, self.addr, &buf[..n]);
                moved = true;
            }
            while let Some((_, n)) = self.server.poll_transmit(self.now, &mut buf) {
                self.wire.push((false, buf[..n].to_vec()));
                self.client.handle_datagram(self.now, &buf[..n]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs for `span` in 1 ms steps.
    pub(crate) fn run(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.exchange();
        }
        while self.server.poll_event().is_some() {}
        while self.client.poll_event().is_some() {}
    }

    pub(crate) fn connected(config: Config, secure: bool) -> Pair {
        let mut p = if secure {
            Pair::secure(config)
        } else {
            Pair::plain(config)
        };
        p.run(Duration::from_millis(50));
        assert!(p.client.is_connected(), "the test pair connects");
        p
    }

    /// The one datagram the client sends right away after queueing `msg`.
    pub(crate) fn send_one(&mut self, msg: &Blob, delivery: Delivery) -> Vec<u8> {
        self.client.send(msg, delivery).expect("send");
        let mut buf = vec![0u8; 65_536];
        let n = self
            .client
            .poll_transmit(self.now, &mut buf)
            .expect("a packet goes out at once");
        self.server.handle_datagram(self.now, self.addr, &buf[..n]);
        buf.truncate(n);
        buf
    }

    /// Sizes of the datagrams seen, by packet type byte.
    pub(crate) fn sizes(&self) -> BTreeMap<u8, Vec<usize>> {
        let mut out: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for (_, d) in &self.wire {
            out.entry(d[3]).or_default().push(d.len());
        }
        out
    }
}

/// The encoded length of `value`.
pub(crate) fn encoded<T: Encode>(value: &T) -> usize {
    legume::codec::to_vec(value).expect("encodes").len()
}
