use legume::prelude::*;

#[derive(Codec)]
enum Team {
    Red,
    Blue = 3,
}

fn main() {}
