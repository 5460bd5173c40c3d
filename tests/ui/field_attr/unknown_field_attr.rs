use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    #[field(bogus = 1)]
    text: String,
}

fn main() {}
