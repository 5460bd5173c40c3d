//! Bevy plugins for [legume-rs](https://crates.io/crates/legume-rs):
//! reliable UDP messaging for games, driven by Bevy's schedules.
//!
//! [`LegumeServerPlugin`] and [`LegumeClientPlugin`] put a legume-rs
//! [`Server`](legume::net::Server) or [`Client`](legume::net::Client) in the
//! world as a resource ([`LegumeServer`], [`LegumeClient`]), run its
//! `update` in `PreUpdate` (read what arrived, turn it into Bevy messages)
//! and again in `PostUpdate` (send what the frame's systems queued).
//! Connection changes arrive as Bevy messages ([`ConnectedToServer`],
//! [`ClientConnected`], ...), and each legume message type the app registers
//! with [`add_legume_message`](LegumeAppExt::add_legume_message) arrives as
//! its own Bevy message, [`FromServer<T>`] on a client and [`FromClient<T>`]
//! on a server. Run conditions ([`client_connected`], [`server_running`],
//! ...) gate systems on the connection. Statistics and the network
//! conditioner's settings are read through the resources.
//!
//! The crate depends on `bevy_app` and `bevy_ecs` only: it draws nothing,
//! plays nothing and keeps no clock of its own. It does not replicate
//! components; it moves typed messages.
//!
//! ```no_run
//! use bevy_app::prelude::*;
//! use bevy_ecs::prelude::*;
//! use bevy_legume::prelude::*;
//!
//! #[derive(Debug, legume::Message)]
//! #[message(id = 30)]
//! struct Chat {
//!     text: String,
//! }
//!
//! let mut factory = MessageFactory::new();
//! factory.register::<Chat>()?;
//!
//! App::new()
//!     .add_plugins(LegumeClientPlugin::new(factory, Config::default()))
//!     .add_legume_message::<Chat>()
//!     .add_systems(Startup, |mut c: ResMut<LegumeClient>| c.connect("127.0.0.1:9000").map(drop))
//!     .add_systems(Update, |mut chats: MessageReader<FromServer<Chat>>| {
//!         chats.read().for_each(|chat| println!("{}", chat.message.text))
//!     })
//!     .update();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
