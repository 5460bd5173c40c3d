//! Typed messages into Bevy. [`LegumeAppExt::add_legume_message`] gives a
//! legume message type its own Bevy messages ([`FromServer<T>`] on a
//! client, [`FromClient<T>`] on a server) and an entry in the table that
//! the receive systems look decoded messages up in, by Rust type.
//! Messages of types no one added arrive as [`UnroutedFromServer`] /
//! [`UnroutedFromClient`], so nothing is dropped silently.

use std::any::{Any, TypeId};
use std::collections::HashMap;

use bevy_app::App;
use bevy_ecs::message::Message as BevyMessage;
use bevy_ecs::resource::Resource;
use bevy_ecs::world::World;
use legume::{AnyMessage, Message};

use crate::{LegumeClient, LegumeServer, PeerId};

/// Client: a `T` the server sent. Read with `MessageReader<FromServer<T>>`
/// after [`add_legume_message::<T>`](LegumeAppExt::add_legume_message).
#[derive(Clone, Debug, PartialEq)]
pub struct FromServer<T> {
    /// The message.
    pub message: T,
}

/// Server: a `T` a peer sent. Read with `MessageReader<FromClient<T>>`
/// after [`add_legume_message::<T>`](LegumeAppExt::add_legume_message).
///
/// The peer may have left in the frame its message arrived in (a
/// [`ClientDisconnected`](crate::ClientDisconnected) for it is among the
/// same frame's messages): a reply to it then fails with `NotConnected`.
#[derive(Clone, Debug, PartialEq)]
pub struct FromClient<T> {
    /// The peer that sent it.
    pub client: PeerId,
    /// The message.
    pub message: T,
}

/// Client: a message of a type registered in the factory but not added
/// with [`add_legume_message`](LegumeAppExt::add_legume_message).
#[derive(Debug)]
pub struct UnroutedFromServer {
    /// The message; `downcast` recovers its type.
    pub message: Box<dyn AnyMessage>,
}

/// Server: a message of a type registered in the factory but not added
/// with [`add_legume_message`](LegumeAppExt::add_legume_message).
#[derive(Debug)]
pub struct UnroutedFromClient {
    /// The peer that sent it.
    pub client: PeerId,
    /// The message; `downcast` recovers its type.
    pub message: Box<dyn AnyMessage>,
}

impl<T: Message> BevyMessage for FromServer<T> {}
impl<T: Message> BevyMessage for FromClient<T> {}
impl BevyMessage for UnroutedFromServer {}
impl BevyMessage for UnroutedFromClient {}

/// Registers legume message types with a Bevy [`App`].
pub trait LegumeAppExt {
    /// Makes every received `T` a Bevy message: [`FromServer<T>`] on a
    /// client, [`FromClient<T>`] on a server. Call it once per message type
    /// the app receives, before or after adding the plugins.
    ///
    /// # Panics
    ///
    /// If a plugin in the app was given a `MessageFactory` that does not
    /// register `T` (it could never arrive), now or when the plugin is added.
    fn add_legume_message<T: Message>(&mut self) -> &mut Self;
}

impl LegumeAppExt for App {
    fn add_legume_message<T: Message>(&mut self) -> &mut Self {
        self.add_message::<FromServer<T>>()
            .add_message::<FromClient<T>>();
        let world = self.world_mut();
        world
            .get_resource_or_init::<Routes>()
            .by_type
            .insert(TypeId::of::<T>(), Route::of::<T>());
        if let Some(client) = world.get_resource::<LegumeClient>() {
            assert_registered(client.factory(), &Route::of::<T>(), "LegumeClientPlugin");
        }
        if let Some(server) = world.get_resource::<LegumeServer>() {
            assert_registered(server.factory(), &Route::of::<T>(), "LegumeServerPlugin");
        }
        self
    }
}

/// The message types added with `add_legume_message`, by Rust type.
#[derive(Default, Resource)]
pub(crate) struct Routes {
    by_type: HashMap<TypeId, Route>,
}

/// How to write one message type as its Bevy messages.
#[derive(Clone, Copy)]
struct Route {
    name: &'static str,
    is_registered: fn(&legume::MessageFactory) -> bool,
    from_server: fn(&mut World, Box<dyn AnyMessage>),
    from_client: fn(&mut World, PeerId, Box<dyn AnyMessage>),
}

impl Route {
    fn of<T: Message>() -> Self {
        Route {
            name: T::NAME,
            is_registered: |factory| factory.contains::<T>(),
            from_server: write_from_server::<T>,
            from_client: write_from_client::<T>,
        }
    }
}

impl Routes {
    /// Panics if a message type added to the app is not in `factory`.
    pub(crate) fn assert_all_registered(
        world: &World,
        factory: &legume::MessageFactory,
        plugin: &str,
    ) {
        if let Some(routes) = world.get_resource::<Routes>() {
            for route in routes.by_type.values() {
                assert_registered(factory, route, plugin);
            }
        }
    }

    /// Client: writes a message from the server as its Bevy message.
    pub(crate) fn route_from_server(world: &mut World, msg: Box<dyn AnyMessage>) {
        match Routes::lookup(world, &*msg) {
            Some(route) => (route.from_server)(world, msg),
            None => write(world, UnroutedFromServer { message: msg }),
        }
    }

    /// Server: writes a message from `client` as its Bevy message.
    pub(crate) fn route_from_client(world: &mut World, client: PeerId, msg: Box<dyn AnyMessage>) {
        match Routes::lookup(world, &*msg) {
            Some(route) => (route.from_client)(world, client, msg),
            None => write(
                world,
                UnroutedFromClient {
                    client,
                    message: msg,
                },
            ),
        }
    }

    fn lookup(world: &World, msg: &dyn AnyMessage) -> Option<Route> {
        let routes = world.get_resource::<Routes>()?;
        routes.by_type.get(&Any::type_id(msg.as_any())).copied()
    }
}

fn assert_registered(factory: &legume::MessageFactory, route: &Route, plugin: &str) {
    assert!(
        (route.is_registered)(factory),
        "bevy_legume: message `{}` was added with add_legume_message but is not \
         registered in the MessageFactory given to {plugin}",
        route.name
    );
}

fn write_from_server<T: Message>(world: &mut World, msg: Box<dyn AnyMessage>) {
    match msg.downcast::<T>() {
        Ok(message) => write(world, FromServer { message: *message }),
        // Not reached: the route was looked up by `T`'s type id.
        Err(message) => write(world, UnroutedFromServer { message }),
    }
}

fn write_from_client<T: Message>(world: &mut World, client: PeerId, msg: Box<dyn AnyMessage>) {
    match msg.downcast::<T>() {
        Ok(message) => write(
            world,
            FromClient {
                client,
                message: *message,
            },
        ),
        // Not reached: the route was looked up by `T`'s type id.
        Err(message) => write(world, UnroutedFromClient { client, message }),
    }
}

/// Writes a Bevy message; the plugins registered every type they write.
pub(crate) fn write<M: BevyMessage>(world: &mut World, message: M) {
    // `None` only if the message type was never added to the app, which
    // the plugins and `add_legume_message` do before any system runs.
    let _ = world.write_message(message);
}
