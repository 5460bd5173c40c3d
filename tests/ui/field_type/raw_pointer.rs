use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    data: *const u8,
}

fn main() {}
