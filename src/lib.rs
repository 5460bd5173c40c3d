#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

pub use legume_core::*;
pub use legume_derive::{Codec, Message, MessageSet};

/// The connection layer (`legume-net`).
pub use legume_net as net;

/// Everything an app needs in scope: `use legume::prelude::*;`.
pub mod prelude {
    pub use legume_core::{
        AnyMessage, Decode, DecodeError, Encode, EncodeError, Message, MessageFactory, MessageSet,
        RegistryError,
    };
    pub use legume_derive::{Codec, Message, MessageSet};
    pub use legume_net::sim::Conditioner;
    pub use legume_net::{
        ChannelConfig, ChannelId, ChannelKind, Client, ClientId, Config, ConnectError, Decision,
        Delivery, DisconnectReason, Event, ListenError, LiveStats, MessageError, MessageHandle,
        Protocol, SendError, Server, ServerEvent, State, Stats,
    };
}
