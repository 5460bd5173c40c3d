use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    #[field(fixed = 4)]
    seq: u32,
}

fn main() {}
