//! Message channels (`docs/PROTOCOL.md` section 4): the public channel
//! types and their checks (`config`), a connection's channels as one unit
//! with the scheduler between them (`set`), and each channel's sides: the
//! unreliable send queue with lifetimes (`unreliable`), and the send and
//! receive sides of the reliable kinds (`send`, `recv`).

mod config;
mod recv;
mod send;
mod set;
mod unreliable;

pub use config::{
    ChannelConfig, ChannelConfigError, ChannelId, ChannelKind, MessageHandle, MAX_CHANNELS,
};

pub(crate) use config::validate;
pub(crate) use recv::{Arrival, Received};
pub(crate) use send::MsgRef;
pub(crate) use set::{channel_for, frame_fits, max_unreliable_size, Channels, Sizes};
