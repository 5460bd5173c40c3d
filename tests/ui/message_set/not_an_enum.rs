use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Ping;

#[derive(Debug, MessageSet)]
struct Inbox(Ping);

fn main() {}
