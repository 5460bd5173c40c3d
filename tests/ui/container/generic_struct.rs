use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
