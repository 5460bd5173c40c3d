use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Scores {
    by_player: std::collections::HashMap<u8, u8>,
}

fn main() {}
