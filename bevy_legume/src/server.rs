//! The server side: [`LegumeServerPlugin`] and the [`LegumeServer`]
//! resource it drives, reading in `PreUpdate` and sending in `PostUpdate`,
//! and [`PeerId`], the one place that says how a peer is named.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bevy_app::{App, AppExit, Last, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::message::MessageReader;
use bevy_ecs::resource::Resource;
use bevy_ecs::schedule::IntoScheduleConfigs;
use bevy_ecs::system::ResMut;
use bevy_ecs::world::World;
use legume::net::sim::Conditioner;
use legume::net::{Config, Event, Server, ServerEvent};
use legume::MessageFactory;

use crate::events::{ClientConnected, ClientDisconnected, ServerWarning, Warning};
use crate::routing::{write, Routes, UnroutedFromClient};
use crate::LegumeSet;

/// How the server names a peer in Bevy messages and in its methods
/// (`send`, `disconnect`, `peer_live_stats`, which take it or an address):
/// its [`ClientId`](legume::net::ClientId), stable for the connection's
/// life (the connect token's client id in the secure mode).
pub type PeerId = legume::net::ClientId;

/// Adds a legume-rs [`Server`] to the app as the [`LegumeServer`] resource.
///
/// Every frame, in `PreUpdate` ([`LegumeSet::Receive`]), the server reads
/// what arrived and the plugin writes it as Bevy messages:
/// [`ClientConnected`], [`ClientDisconnected`], [`ServerWarning`], and a
/// [`FromClient<T>`](crate::FromClient) for each message type added with
/// [`add_legume_message`](crate::LegumeAppExt::add_legume_message) (others
/// as [`UnroutedFromClient`]). In `PostUpdate` ([`LegumeSet::Send`]) it
/// sends what the frame's systems queued. When the app exits (an
/// [`AppExit`] message), it disconnects every peer, telling them.
///
/// The server does not listen by itself: a system calls
/// [`listen`](Server::listen) on the resource.
pub struct LegumeServerPlugin {
    factory: Arc<MessageFactory>,
    config: Config,
}

impl LegumeServerPlugin {
    /// A plugin whose server decodes with `factory` (a `MessageFactory` or
    /// an `Arc` of one shared with a client) and uses `config`, the network
    /// conditioner included (`config.driver.conditioner`).
    pub fn new(factory: impl Into<Arc<MessageFactory>>, config: Config) -> Self {
        LegumeServerPlugin {
            factory: factory.into(),
            config,
        }
    }
}

impl Plugin for LegumeServerPlugin {
    fn build(&self, app: &mut App) {
        Routes::assert_all_registered(app.world(), &self.factory, "LegumeServerPlugin");
        app.insert_resource(LegumeServer::new(
            Arc::clone(&self.factory),
            self.config.clone(),
        ))
        .add_message::<ClientConnected>()
        .add_message::<ClientDisconnected>()
        .add_message::<ServerWarning>()
        .add_message::<UnroutedFromClient>()
        .add_systems(PreUpdate, receive.in_set(LegumeSet::Receive))
        .add_systems(PostUpdate, send.in_set(LegumeSet::Send))
        .add_systems(Last, disconnect_on_exit);
    }
}

/// The app's legume-rs [`Server`], a resource added by
/// [`LegumeServerPlugin`].
///
/// It dereferences to the [`Server`], so systems call its methods
/// directly: `listen`, `send`, `send_to_all`, `disconnect`, `peers`, and
/// the statistics, `live_stats()` and `peer_live_stats(peer)` (rates over
/// the last second), `stats()` and `socket_stats()` (counters):
///
/// ```no_run
/// # use bevy_ecs::prelude::*;
/// # use bevy_legume::prelude::*;
/// fn show_peers(server: Res<LegumeServer>) {
///     for (peer, live) in server.live_stats() {
///         println!("{peer}: rtt {:.0} ms, {:.0} B/s out", live.rtt_ms, live.out_bytes_per_s);
///     }
/// }
/// # bevy_app::App::new().add_systems(bevy_app::Update, show_peers);
/// ```
///
/// Leave `update` and `poll_event` to the plugin: an event taken with
/// `poll_event` does not become a Bevy message.
#[derive(Resource)]
pub struct LegumeServer {
    server: Server,
    factory: Arc<MessageFactory>,
    config: Config,
    /// Events taken from the server this frame, kept to reuse its memory.
    inbox: Vec<ServerEvent>,
}

impl LegumeServer {
    fn new(factory: Arc<MessageFactory>, config: Config) -> Self {
        LegumeServer {
            server: Server::new(Arc::clone(&factory), config.clone()),
            factory,
            config,
            inbox: Vec::new(),
        }
    }

    /// The factory the server decodes with.
    pub fn factory(&self) -> &Arc<MessageFactory> {
        &self.factory
    }

    /// The configuration the server was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The network conditioner (simulated loss, latency, jitter,
    /// duplication, reordering) the server's traffic goes through, if any;
    /// set in the plugin's `Config`.
    pub fn conditioner(&self) -> Option<&Conditioner> {
        self.config.driver.conditioner.as_ref()
    }

    /// Updates the server and takes its events.
    fn receive(&mut self) -> Vec<ServerEvent> {
        self.server.update();
        let mut events = std::mem::take(&mut self.inbox);
        events.extend(std::iter::from_fn(|| self.server.poll_event()));
        events
    }
}

impl Deref for LegumeServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for LegumeServer {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

/// `PreUpdate`: reads the socket and writes what arrived as Bevy messages.
fn receive(world: &mut World) {
    let Some(mut events) = world
        .get_resource_mut::<LegumeServer>()
        .map(|mut server| server.receive())
    else {
        return;
    };
    for ServerEvent { client, event, .. } in events.drain(..) {
        match event {
            Event::Connected => write(world, ClientConnected { client }),
            Event::Message(msg) => Routes::route_from_client(world, client, msg),
            Event::Disconnected(reason) => write(world, ClientDisconnected { client, reason }),
            Event::Error(e) => write(world, warning(client, Warning::Message(e))),
            Event::Io(e) => write(world, warning(client, Warning::Io(e))),
            // `Rejected` is a client's event; others were added to
            // legume-rs after this crate.
            _ => {}
        }
    }
    if let Some(mut server) = world.get_resource_mut::<LegumeServer>() {
        server.inbox = events;
    }
}

fn warning(client: PeerId, warning: Warning) -> ServerWarning {
    ServerWarning { client, warning }
}

/// `PostUpdate`: sends what the frame's systems queued. The driver sends
/// only in `update` (which reads the socket too; what it reads waits in the
/// driver's event queue for the next `PreUpdate`).
fn send(server: Option<ResMut<LegumeServer>>) {
    if let Some(mut server) = server {
        server.server.update();
    }
}

/// `Last`: on [`AppExit`], tells every peer the server is going away.
fn disconnect_on_exit(mut exits: MessageReader<AppExit>, server: Option<ResMut<LegumeServer>>) {
    if exits.read().last().is_some() {
        if let Some(mut server) = server {
            server.server.disconnect_all("the server is shutting down");
        }
    }
}
