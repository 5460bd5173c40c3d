use legume::prelude::*;

#[derive(Codec)]
#[legume(foo = "x")]
struct Point {
    x: f32,
}

fn main() {}
