use legume::prelude::*;

#[derive(Codec)]
struct Callback {
    run: Box<dyn Fn()>,
}

fn main() {}
