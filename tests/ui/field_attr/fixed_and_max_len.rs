use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    #[field(fixed = 8, max_len = 8)]
    text: String,
}

fn main() {}
