//! Legume's logs on stderr, so that stdout keeps only an example's results.

use tracing_subscriber::EnvFilter;

/// Sends legume's `tracing` events to stderr, filtered by `RUST_LOG`, or by
/// `default` (such as `"warn"`) when `RUST_LOG` is unset or invalid; with no
/// default nothing is logged then (an example that draws on the terminal).
/// `RUST_LOG=legume_net=debug` adds handshakes, disconnects with reasons
/// and summaries of invalid traffic.
pub fn init_logging(default: Option<&str>) {
    let filter = match (EnvFilter::try_from_default_env(), default) {
        (Ok(filter), _) => filter,
        (Err(_), Some(directives)) => EnvFilter::new(directives),
        (Err(_), None) => return,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
