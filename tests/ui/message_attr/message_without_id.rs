use legume::prelude::*;

#[derive(Debug, Message)]
#[message(name = "x")]
struct Ping {
    seq: u32,
}

fn main() {}
