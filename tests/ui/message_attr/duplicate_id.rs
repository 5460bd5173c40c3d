use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21, id = 22)]
struct Ping {
    seq: u32,
}

fn main() {}
