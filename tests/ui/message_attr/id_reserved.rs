use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 5)]
struct Ping {
    seq: u32,
}

fn main() {}
