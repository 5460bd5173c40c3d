//! The error of the resources' methods that only work on an idle connection.

use thiserror::Error;

/// The client is connecting or connected, so its network conditioner
/// cannot change now (see
/// [`LegumeClient::set_conditioner`](crate::LegumeClient::set_conditioner)).
#[derive(Clone, Copy, Debug, Eq, Error, PartialEq)]
#[error("the network conditioner can change only while the client is disconnected")]
pub struct ConditionerBusy;
