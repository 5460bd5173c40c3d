use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21, foo = 1)]
struct Ping {
    seq: u32,
}

fn main() {}
