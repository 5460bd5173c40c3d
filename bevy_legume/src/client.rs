//! The client side: [`LegumeClientPlugin`] and the [`LegumeClient`]
//! resource it drives, reading in `PreUpdate` and sending in `PostUpdate`.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bevy_app::{App, AppExit, Last, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::message::MessageReader;
use bevy_ecs::resource::Resource;
use bevy_ecs::schedule::IntoScheduleConfigs;
use bevy_ecs::system::ResMut;
use bevy_ecs::world::World;
use legume::net::sim::Conditioner;
use legume::net::{Client, Config, Event, State};
use legume::MessageFactory;

use crate::events::{
    ClientWarning, ConnectRejected, ConnectedToServer, DisconnectedFromServer, Warning,
};
use crate::routing::{write, Routes, UnroutedFromServer};
use crate::{ConditionerBusy, LegumeSet};

/// Adds a legume-rs [`Client`] to the app as the [`LegumeClient`] resource.
///
/// Every frame, in `PreUpdate` ([`LegumeSet::Receive`]), the client reads
/// what arrived and the plugin writes it as Bevy messages:
/// [`ConnectedToServer`], [`ConnectRejected`], [`DisconnectedFromServer`],
/// [`ClientWarning`], and a [`FromServer<T>`](crate::FromServer) for each
/// message type added with
/// [`add_legume_message`](crate::LegumeAppExt::add_legume_message) (others
/// as [`UnroutedFromServer`]). In `PostUpdate` ([`LegumeSet::Send`]) it
/// sends what the frame's systems queued. When the app exits (an
/// [`AppExit`] message), it disconnects, telling the server.
///
/// The client does not connect by itself: a system calls
/// [`connect`](Client::connect) on the resource.
pub struct LegumeClientPlugin {
    factory: Arc<MessageFactory>,
    config: Config,
}

impl LegumeClientPlugin {
    /// A plugin whose client decodes with `factory` (a `MessageFactory` or
    /// an `Arc` of one shared with a server) and uses `config`, the network
    /// conditioner included (`config.driver.conditioner`).
    pub fn new(factory: impl Into<Arc<MessageFactory>>, config: Config) -> Self {
        LegumeClientPlugin {
            factory: factory.into(),
            config,
        }
    }
}

impl Plugin for LegumeClientPlugin {
    fn build(&self, app: &mut App) {
        Routes::assert_all_registered(app.world(), &self.factory, "LegumeClientPlugin");
        app.insert_resource(LegumeClient::new(
            Arc::clone(&self.factory),
            self.config.clone(),
        ))
        .add_message::<ConnectedToServer>()
        .add_message::<ConnectRejected>()
        .add_message::<DisconnectedFromServer>()
        .add_message::<ClientWarning>()
        .add_message::<UnroutedFromServer>()
        .add_systems(PreUpdate, receive.in_set(LegumeSet::Receive))
        .add_systems(PostUpdate, send.in_set(LegumeSet::Send))
        .add_systems(Last, disconnect_on_exit);
    }
}

/// The app's legume-rs [`Client`], a resource added by
/// [`LegumeClientPlugin`].
///
/// It dereferences to the [`Client`], so systems call its methods
/// directly: `connect`, `send`, `disconnect`, `state`, and the statistics,
/// `stats()` (cumulative) and `live_stats()` (rates over the last second):
///
/// ```no_run
/// # use bevy_ecs::prelude::*;
/// # use bevy_legume::prelude::*;
/// fn show_rtt(client: Res<LegumeClient>) {
///     let live = client.live_stats();
///     println!("rtt {:.0} ms, loss {:.1}%", live.rtt_ms, live.packet_loss * 100.0);
/// }
/// # bevy_app::App::new().add_systems(bevy_app::Update, show_rtt);
/// ```
///
/// Leave `update` and `poll_event` to the plugin: an event taken with
/// `poll_event` does not become a Bevy message.
#[derive(Resource)]
pub struct LegumeClient {
    client: Client,
    factory: Arc<MessageFactory>,
    config: Config,
    /// Events taken from the client this frame, kept to reuse its memory.
    inbox: Vec<Event>,
}

impl LegumeClient {
    fn new(factory: Arc<MessageFactory>, config: Config) -> Self {
        LegumeClient {
            client: Client::new(Arc::clone(&factory), config.clone()),
            factory,
            config,
            inbox: Vec::new(),
        }
    }

    /// The factory the client decodes with.
    pub fn factory(&self) -> &Arc<MessageFactory> {
        &self.factory
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The network conditioner (simulated loss, latency, jitter,
    /// duplication, reordering) the client's traffic goes through, if any.
    pub fn conditioner(&self) -> Option<&Conditioner> {
        self.config.driver.conditioner.as_ref()
    }

    /// Sets the network conditioner for the next connection (`None` turns it
    /// off), as a debug menu's "bad network" switch does. The driver takes
    /// its conditioner when it connects, so this builds a fresh [`Client`]:
    /// a local address set with `set_local_addr` is forgotten.
    ///
    /// # Errors
    ///
    /// [`ConditionerBusy`] while connecting or connected.
    pub fn set_conditioner(
        &mut self,
        conditioner: Option<Conditioner>,
    ) -> Result<(), ConditionerBusy> {
        if matches!(self.client.state(), State::Connecting | State::Connected) {
            return Err(ConditionerBusy);
        }
        self.config.driver.conditioner = conditioner;
        self.client = Client::new(Arc::clone(&self.factory), self.config.clone());
        Ok(())
    }

    /// Updates the client and takes its events.
    fn receive(&mut self) -> Vec<Event> {
        self.client.update();
        let mut events = std::mem::take(&mut self.inbox);
        events.extend(std::iter::from_fn(|| self.client.poll_event()));
        events
    }
}

impl Deref for LegumeClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for LegumeClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// `PreUpdate`: reads the socket and writes what arrived as Bevy messages.
fn receive(world: &mut World) {
    let Some(mut events) = world
        .get_resource_mut::<LegumeClient>()
        .map(|mut client| client.receive())
    else {
        return;
    };
    for event in events.drain(..) {
        match event {
            Event::Connected => write(world, ConnectedToServer),
            Event::Rejected { reason } => write(world, ConnectRejected { reason }),
            Event::Message(msg) => Routes::route_from_server(world, msg),
            Event::Disconnected(reason) => write(world, DisconnectedFromServer { reason }),
            Event::Error(e) => write(world, ClientWarning(Warning::Message(e))),
            Event::Io(e) => write(world, ClientWarning(Warning::Io(e))),
            // A kind of event added to legume-rs after this crate.
            _ => {}
        }
    }
    if let Some(mut client) = world.get_resource_mut::<LegumeClient>() {
        client.inbox = events;
    }
}

/// `PostUpdate`: sends what the frame's systems queued. The driver sends
/// only in `update` (which reads the socket too; what it reads waits in the
/// driver's event queue for the next `PreUpdate`).
fn send(client: Option<ResMut<LegumeClient>>) {
    if let Some(mut client) = client {
        client.client.update();
    }
}

/// `Last`: on [`AppExit`], tells the server the client is leaving.
fn disconnect_on_exit(mut exits: MessageReader<AppExit>, client: Option<ResMut<LegumeClient>>) {
    if exits.read().last().is_some() {
        if let Some(mut client) = client {
            client.client.disconnect_with("the application exited");
        }
    }
}
