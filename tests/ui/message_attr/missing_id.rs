use legume::prelude::*;

#[derive(Debug, Message)]
struct Ping {
    seq: u32,
}

fn main() {}
