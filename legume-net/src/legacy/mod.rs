//! legume v4 compatibility: Python legume 0.5's wire protocol
//! (`docs/LEGUME_COMPAT.md`), behind the same `Connection` API.

mod connection;
mod ids;
pub(crate) mod wire;

pub(crate) use connection::V4Connection;
