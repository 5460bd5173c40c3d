use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21, name = "")]
struct Ping {
    seq: u32,
}

fn main() {}
