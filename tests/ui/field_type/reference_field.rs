use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Chat {
    text: &'static str,
}

fn main() {}
