//! The messages the `server` and `client` examples exchange, and the
//! factory both build from them (a game would keep these in a crate of
//! their own, as `examples/game/protocol` does).

use legume::MessageFactory;

/// Client to server: a line of chat.
#[derive(Clone, Debug, legume::Message)]
#[message(id = 40)]
pub struct Say {
    #[field(max_len = 256)]
    pub text: String,
}

/// Server to every client: who said what.
#[derive(Clone, Debug, legume::Message)]
#[message(id = 41)]
pub struct Said {
    #[field(max_len = 64)]
    pub from: String,
    #[field(max_len = 256)]
    pub text: String,
}

/// Client to server, unreliable, every few frames: where the player is.
#[derive(Clone, Copy, Debug, legume::Message)]
#[message(id = 42)]
pub struct Position {
    pub x: f32,
    pub y: f32,
}

/// Both sides' factory.
pub fn factory() -> MessageFactory {
    let mut factory = MessageFactory::new();
    factory
        .register::<Say>()
        .and_then(|f| f.register::<Said>())
        .and_then(|f| f.register::<Position>())
        .expect("the example's message ids and names are distinct");
    factory
}

/// The value after `flag` on the command line, if any.
pub fn arg(flag: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    args.by_ref().find(|a| a == flag)?;
    args.next()
}
