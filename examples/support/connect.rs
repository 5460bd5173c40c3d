//! Why a client's connection attempt failed, in words for its user.

use legume::prelude::*;

/// Why the connection failed, if `event` (seen before `Connected`) says it did.
pub fn connect_failure(event: &Event) -> Option<String> {
    match event {
        Event::Rejected { reason } => Some(format!("rejected by the server: {reason}")),
        Event::Disconnected(DisconnectReason::ConnectTimedOut) => {
            Some("no answer from the server within the connect timeout".into())
        }
        Event::Disconnected(reason) => Some(format!("disconnected while connecting: {reason}")),
        _ => None,
    }
}
