#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod client;
mod error;
mod events;
mod routing;
mod schedule;
mod server;

pub use client::{LegumeClient, LegumeClientPlugin};
pub use error::ConditionerBusy;
pub use events::{
    ClientConnected, ClientDisconnected, ClientWarning, ConnectRejected, ConnectedToServer,
    DisconnectedFromServer, ServerWarning, Warning,
};
pub use routing::{FromClient, FromServer, LegumeAppExt, UnroutedFromClient, UnroutedFromServer};
pub use schedule::{
    client_connected, client_connecting, client_disconnected, server_has_peers, server_running,
    LegumeSet,
};
pub use server::{LegumeServer, LegumeServerPlugin, PeerId};

/// What most programs import: the plugins, resources, Bevy messages, run
/// conditions and the app extension, plus the legume-rs types their
/// methods take. (Not legume's `Message` and `Event`, whose names Bevy's
/// prelude also uses: derive with `#[derive(legume::Message)]`.)
pub mod prelude {
    pub use crate::{
        client_connected, client_connecting, client_disconnected, server_has_peers, server_running,
        ClientConnected, ClientDisconnected, ClientWarning, ConditionerBusy, ConnectRejected,
        ConnectedToServer, DisconnectedFromServer, FromClient, FromServer, LegumeAppExt,
        LegumeClient, LegumeClientPlugin, LegumeServer, LegumeServerPlugin, LegumeSet, PeerId,
        ServerWarning, UnroutedFromClient, UnroutedFromServer, Warning,
    };
    pub use legume::net::sim::{Conditioner, LinkConditions};
    pub use legume::net::{Config, Delivery, DisconnectReason, LiveStats, Stats};
    pub use legume::MessageFactory;
}
