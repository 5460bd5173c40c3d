//! The honest traffic: the `Note` each client sends and the server echoes,
//! its delivery and padding, and the `echo` example's messages.

use std::sync::Arc;

use legume::prelude::*;

/// An honest client's message: echoed by the server with the same delivery.
#[derive(Clone, Debug, PartialEq, Message)]
#[message(id = 30)]
pub(crate) struct Note {
    pub(crate) client: u32,
    pub(crate) seq: u32,
    pub(crate) pad: Vec<u8>,
}

/// Set in `Note::seq` of unreliable notes, which are counted, not echoed.
pub(crate) const UNRELIABLE_BIT: u32 = 1 << 31;

/// The `echo` example's message (`examples/echo.rs`).
#[derive(Debug, Message)]
#[message(id = 20)]
pub(crate) struct Echo {
    pub(crate) kind: u8,
    pub(crate) data: Vec<u8>,
}

pub(crate) fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Note>().unwrap().register::<Echo>().unwrap();
    Arc::new(f)
}

/// The `echo` example's messages and nothing else: its server refuses a
/// client whose schema differs.
pub(crate) fn echo_factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Echo>().unwrap();
    Arc::new(f)
}

/// The delivery of honest reliable note `seq`: even ones reliable, odd ones ordered.
pub(crate) fn delivery_of(seq: u32) -> Delivery {
    if seq % 2 == 0 {
        Delivery::Reliable
    } else {
        Delivery::ReliableOrdered
    }
}

/// Padding of honest note `seq`: one in 16 is fragmented (3,000 bytes).
pub(crate) fn pad_of(seq: u32) -> Vec<u8> {
    let len = if seq % 16 == 5 {
        3000
    } else {
        (seq % 61) as usize
    };
    (0..len).map(|i| (i as u32 ^ seq) as u8).collect()
}
