use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 256)]
struct Ping {
    seq: u32,
}

fn main() {}
