//! [`Delivery`]: the guarantees a message is sent with.

/// How a message is delivered.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Delivery {
    /// At most once, in any order; may be lost.
    Unreliable,
    /// Exactly once, in any order.
    Reliable,
    /// Exactly once, in the order sent.
    ReliableOrdered,
}

impl Delivery {
    /// Whether the message is resent until acknowledged.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Delivery::Unreliable)
    }
}
