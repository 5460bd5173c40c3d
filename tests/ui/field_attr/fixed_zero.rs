use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    #[field(fixed = 0)]
    text: String,
}

fn main() {}
