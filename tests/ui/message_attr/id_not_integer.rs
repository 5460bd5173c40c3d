use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = "21")]
struct Ping {
    seq: u32,
}

fn main() {}
