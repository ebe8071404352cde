//! Close status codes (RFC 6455 §7.4.1, and IANA's registry for 1012).

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// An endpoint is going away (a server shutting down, a browser leaving the page).
pub const GOING_AWAY: u16 = 1001;
/// A protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A message whose data is inconsistent with its type (text that is not UTF-8).
pub const INVALID_PAYLOAD: u16 = 1007;
/// A message too big to process.
pub const TOO_BIG: u16 = 1009;
/// The server hit an unexpected condition.
pub const INTERNAL_ERROR: u16 = 1011;
/// The service is restarting: reconnect (IANA registry).
pub const SERVICE_RESTART: u16 = 1012;
