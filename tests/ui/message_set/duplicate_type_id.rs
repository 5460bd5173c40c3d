use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Ping;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Pong;

#[derive(Debug, Message)]
#[message(id = 22)]
struct Chat;

#[derive(Debug, MessageSet)]
enum Inbox {
    Ping(Ping),
    Chat(Chat),
    Pong(Pong),
}

fn main() {}
