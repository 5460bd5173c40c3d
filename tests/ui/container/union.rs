use legume::prelude::*;

#[derive(Codec)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
