//! Setting an app up: a message type added to the app but missing from a
//! plugin's factory is caught when the app is built, whichever comes first.

use std::sync::Arc;

use bevy_app::App;
use bevy_legume::prelude::*;

#[derive(Debug, legume::Message)]
#[message(id = 40)]
struct Registered {
    n: u8,
}

#[derive(Debug, legume::Message)]
#[message(id = 41)]
struct Forgotten {
    n: u8,
}

fn factory() -> Arc<MessageFactory> {
    let mut factory = MessageFactory::new();
    factory.register::<Registered>().unwrap();
    Arc::new(factory)
}

#[test]
fn registered_messages_set_up_either_way() {
    App::new()
        .add_legume_message::<Registered>()
        .add_plugins(LegumeClientPlugin::new(factory(), Config::default()));
    App::new()
        .add_plugins(LegumeServerPlugin::new(factory(), Config::default()))
        .add_legume_message::<Registered>();
}

#[test]
#[should_panic(
    expected = "message `Forgotten` was added with add_legume_message but is not registered in the MessageFactory given to LegumeClientPlugin"
)]
fn a_message_missing_from_the_factory_panics_after_the_plugin() {
    App::new()
        .add_plugins(LegumeClientPlugin::new(factory(), Config::default()))
        .add_legume_message::<Forgotten>();
}

#[test]
#[should_panic(
    expected = "message `Forgotten` was added with add_legume_message but is not registered in the MessageFactory given to LegumeServerPlugin"
)]
fn a_message_missing_from_the_factory_panics_before_the_plugin() {
    App::new()
        .add_legume_message::<Forgotten>()
        .add_plugins(LegumeServerPlugin::new(factory(), Config::default()));
}
