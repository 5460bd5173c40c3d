//! The error of the resources' methods that only work on an idle connection.

use thiserror::Error;

/// The connection is in use, so its network conditioner cannot change now
/// (see [`LegumeClient::set_conditioner`](crate::LegumeClient::set_conditioner)
/// and [`LegumeServer::set_conditioner`](crate::LegumeServer::set_conditioner)).
#[derive(Clone, Copy, Debug, Eq, Error, PartialEq)]
#[error(
    "the network conditioner can change only while disconnected (client) or before listen (server)"
)]
pub struct ConditionerBusy;
