//! legume v4 datagrams: a concatenation of messages, each behind a 5-byte
//! transport header (`docs/LEGUME_COMPAT.md` section 1).

use legume_core::{AnyMessage, DecodeError, EncodeError, MessageFactory, Reader, Writer};

use crate::Config;

/// legume 0.5's `PROTOCOL_VERSION`, sent in ConnectRequest.
pub(crate) const PROTOCOL_VERSION: u8 = 4;
/// The transport header: message id, in-order sequence, flags.
pub(crate) const HEADER_LEN: usize = 5;
/// Flag bit 0: in-order.
pub(crate) const FLAG_ORDERED: u8 = 1;
/// Flag bit 1: reliable.
pub(crate) const FLAG_RELIABLE: u8 = 2;

/// Type ids of legume's protocol messages.
pub(crate) mod kind {
    pub(crate) const CONNECT_REQUEST: u8 = 2;
    pub(crate) const REJECTED: u8 = 3;
    pub(crate) const ACCEPTED: u8 = 4;
    pub(crate) const KEEPALIVE_REQUEST: u8 = 5;
    pub(crate) const KEEPALIVE_RESPONSE: u8 = 6;
    pub(crate) const DISCONNECTED: u8 = 7;
    pub(crate) const MESSAGE_ACK: u8 = 8;
    pub(crate) const PING: u8 = 9;
    pub(crate) const PONG: u8 = 10;
}

/// A message's transport header.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct Header {
    pub(crate) id: u16,
    pub(crate) seq: u16,
    pub(crate) flags: u8,
}

impl Header {
    /// Whether the sender waits for a MessageAck (reliable or in-order:
    /// legume resends both until acked).
    pub(crate) fn wants_ack(self) -> bool {
        self.flags & (FLAG_ORDERED | FLAG_RELIABLE) != 0
    }

    pub(crate) fn is_ordered(self) -> bool {
        self.flags & FLAG_ORDERED != 0
    }

    pub(crate) fn write(self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u16(self.id)?;
        w.put_u16(self.seq)?;
        w.put_u8(self.flags)
    }
}

/// A protocol message, or a user message.
#[derive(Debug)]
pub(crate) enum Body {
    /// The version byte is checked by the server endpoint before a
    /// connection exists; later copies are only acked.
    ConnectRequest,
    Rejected,
    Accepted,
    KeepAliveRequest(u16),
    KeepAliveResponse(u16),
    Disconnected,
    /// legume writes the acked id as a signed 32-bit int.
    Ack(i32),
    Ping(u16),
    Pong(u16),
    User(Box<dyn AnyMessage>),
}

/// A protocol message to send; user messages are written from their bytes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Control {
    ConnectRequest,
    Rejected,
    Accepted,
    KeepAliveRequest(u16),
    KeepAliveResponse(u16),
    Disconnected,
    Ack(u16),
    Ping(u16),
    Pong(u16),
}

impl Control {
    /// Type id and fields, as legume encodes them.
    pub(crate) fn write(self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Control::ConnectRequest => {
                w.put_u8(kind::CONNECT_REQUEST)?;
                w.put_u8(PROTOCOL_VERSION)
            }
            Control::Rejected => w.put_u8(kind::REJECTED),
            Control::Accepted => w.put_u8(kind::ACCEPTED),
            Control::KeepAliveRequest(id) => {
                w.put_u8(kind::KEEPALIVE_REQUEST)?;
                w.put_u16(id)
            }
            Control::KeepAliveResponse(id) => {
                w.put_u8(kind::KEEPALIVE_RESPONSE)?;
                w.put_u16(id)
            }
            Control::Disconnected => w.put_u8(kind::DISCONNECTED),
            Control::Ack(id) => {
                w.put_u8(kind::MESSAGE_ACK)?;
                w.put_u32(u32::from(id))
            }
            Control::Ping(id) => {
                w.put_u8(kind::PING)?;
                w.put_u16(id)
            }
            Control::Pong(id) => {
                w.put_u8(kind::PONG)?;
                w.put_u16(id)
            }
        }
    }

    /// Type id and fields length.
    pub(crate) fn len(self) -> usize {
        match self {
            Control::Rejected | Control::Accepted | Control::Disconnected => 1,
            Control::ConnectRequest => 2,
            Control::KeepAliveRequest(_)
            | Control::KeepAliveResponse(_)
            | Control::Ping(_)
            | Control::Pong(_) => 3,
            Control::Ack(_) => 5,
        }
    }
}

/// Why the rest of a datagram could not be read.
#[derive(Debug)]
pub(crate) enum ParseFault {
    /// The bytes left are too few for a transport header, or a protocol
    /// message's fields were cut short or invalid: a malformed datagram.
    Malformed,
    /// A user message did not decode (unknown type id, bad field). Its header
    /// was read, so a reliable one can still be acked.
    Message(Header, DecodeError),
}

/// Reads the messages of one datagram in order. After a fault, nothing
/// more is read: without lengths, the next message cannot be found.
pub(crate) struct Messages<'a> {
    r: Reader<'a>,
    factory: &'a MessageFactory,
    done: bool,
    /// Longer than any peer may send: one `Malformed`, nothing read.
    oversized: bool,
}

impl<'a> Messages<'a> {
    pub(crate) fn new(datagram: &'a [u8], factory: &'a MessageFactory) -> Self {
        Messages {
            r: Reader::new(datagram),
            factory,
            done: false,
            oversized: datagram.len() > Config::MAX_MTU,
        }
    }

    fn next_message(&mut self) -> Result<(Header, Body), ParseFault> {
        let header = Header {
            id: self.r.read_u16().map_err(|_| ParseFault::Malformed)?,
            seq: self.r.read_u16().map_err(|_| ParseFault::Malformed)?,
            flags: self.r.read_u8().map_err(|_| ParseFault::Malformed)?,
        };
        let type_id = self.r.read_u8().map_err(|_| ParseFault::Malformed)?;
        let body = match type_id {
            kind::CONNECT_REQUEST => {
                self.r.read_u8().map_err(|_| ParseFault::Malformed)?;
                Body::ConnectRequest
            }
            kind::REJECTED => Body::Rejected,
            kind::ACCEPTED => Body::Accepted,
            kind::KEEPALIVE_REQUEST => Body::KeepAliveRequest(self.u16()?),
            kind::KEEPALIVE_RESPONSE => Body::KeepAliveResponse(self.u16()?),
            kind::DISCONNECTED => Body::Disconnected,
            kind::MESSAGE_ACK => Body::Ack(self.u32()? as i32),
            kind::PING => Body::Ping(self.u16()?),
            kind::PONG => Body::Pong(self.u16()?),
            id => match self.factory.decode_fields(id, &mut self.r) {
                Ok(msg) => Body::User(msg),
                Err(e) => return Err(ParseFault::Message(header, e)),
            },
        };
        Ok((header, body))
    }

    fn u16(&mut self) -> Result<u16, ParseFault> {
        self.r.read_u16().map_err(|_| ParseFault::Malformed)
    }

    fn u32(&mut self) -> Result<u32, ParseFault> {
        self.r.read_u32().map_err(|_| ParseFault::Malformed)
    }
}

impl Iterator for Messages<'_> {
    type Item = Result<(Header, Body), ParseFault>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.r.is_empty() {
            return None;
        }
        if self.oversized {
            self.done = true;
            return Some(Err(ParseFault::Malformed));
        }
        let item = self.next_message();
        self.done = item.is_err();
        Some(item)
    }
}

/// Whether a datagram from an unknown address opens with a well-formed
/// ConnectRequest; returns its header and protocol version.
pub(crate) fn connect_request(datagram: &[u8]) -> Option<(Header, u8)> {
    if datagram.len() > Config::MAX_MTU {
        return None;
    }
    let d: &[u8; 7] = datagram.get(..7)?.try_into().ok()?;
    if d[5] != kind::CONNECT_REQUEST {
        return None;
    }
    let header = Header {
        id: u16::from_be_bytes([d[0], d[1]]),
        seq: u16::from_be_bytes([d[2], d[3]]),
        flags: d[4],
    };
    Some((header, d[6]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(header: Header, c: Control) -> Vec<u8> {
        let mut buf = vec![0; 16];
        let mut w = Writer::new(&mut buf);
        header.write(&mut w).unwrap();
        c.write(&mut w).unwrap();
        let n = w.position();
        assert_eq!(n, HEADER_LEN + c.len());
        buf.truncate(n);
        buf
    }

    #[test]
    fn connect_request_bytes_match_legume() {
        // legume: struct.pack('!HHB', 1, 0, 2) + struct.pack('!BB', 2, 4)
        let h = Header {
            id: 1,
            seq: 0,
            flags: FLAG_RELIABLE,
        };
        let bytes = encode(h, Control::ConnectRequest);
        assert_eq!(bytes, [0, 1, 0, 0, 2, 2, 4]);
        assert_eq!(connect_request(&bytes), Some((h, PROTOCOL_VERSION)));
    }

    #[test]
    fn ack_is_a_signed_int() {
        let h = Header {
            id: 0xfffe,
            seq: 0,
            flags: 0,
        };
        assert_eq!(
            encode(h, Control::Ack(0xffff)),
            [0xff, 0xfe, 0, 0, 0, 8, 0, 0, 0xff, 0xff]
        );
    }

    #[test]
    fn parsing_stops_at_the_first_fault() {
        let factory = MessageFactory::new();
        let mut d = encode(
            Header {
                id: 7,
                seq: 0,
                flags: 0,
            },
            Control::Ping(3),
        );
        // An unknown user type id, then a message that can no longer be found.
        d.extend_from_slice(&[0, 8, 0, 0, FLAG_RELIABLE, 99, 1, 2]);
        d.extend(encode(
            Header {
                id: 9,
                seq: 0,
                flags: 0,
            },
            Control::Pong(1),
        ));
        let items: Vec<_> = Messages::new(&d, &factory).collect();
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0], Ok((_, Body::Ping(3)))));
        match &items[1] {
            Err(ParseFault::Message(h, DecodeError::UnknownTypeId(99))) => {
                assert_eq!(h.id, 8);
                assert!(h.wants_ack());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_protocol_messages_are_malformed() {
        let factory = MessageFactory::new();
        for cut in 1..10 {
            let d = encode(
                Header {
                    id: 1,
                    seq: 0,
                    flags: 0,
                },
                Control::Ack(5),
            );
            let items: Vec<_> = Messages::new(&d[..cut], &factory).collect();
            assert!(matches!(items[..], [Err(ParseFault::Malformed)]), "{cut}");
        }
    }
}
