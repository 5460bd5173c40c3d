use legume::prelude::*;

#[derive(Debug, Codec)]
struct Handler {
    on_hit: fn(u32) -> bool,
}

fn main() {}
