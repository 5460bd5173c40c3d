//! Delivery feedback: every message on a channel with feedback gets exactly
//! one `Acked` or `Lost`, consistent with what arrived.
