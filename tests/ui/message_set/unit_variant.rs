use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Ping;

#[derive(Debug, MessageSet)]
enum Inbox {
    Ping(Ping),
    Nothing,
}

fn main() {}
