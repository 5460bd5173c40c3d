use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Stats {
    count: usize,
}

fn main() {}
