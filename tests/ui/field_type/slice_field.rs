use legume::prelude::*;

#[derive(Codec)]
struct Tail(u8, [u8]);

fn main() {}
