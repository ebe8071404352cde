//! Status codes sluice answers with itself or looks at in a relayed response
//! (RFC 9110 §15). Named so that a decision reads as what it means.

/// 100 Continue (RFC 9110 §15.2.1).
pub const CONTINUE: u16 = 100;
/// 101 Switching Protocols: a WebSocket upgrade was accepted (RFC 9110 §15.2.2).
pub const SWITCHING_PROTOCOLS: u16 = 101;
/// 200 OK.
pub const OK: u16 = 200;
/// 400 Bad Request: a malformed request.
pub const BAD_REQUEST: u16 = 400;
/// 404 Not Found (the admin endpoint).
pub const NOT_FOUND: u16 = 404;
/// 405 Method Not Allowed (CONNECT, and the admin endpoint's non-GETs).
pub const METHOD_NOT_ALLOWED: u16 = 405;
/// 408 Request Timeout: the client stopped sending its head or body.
pub const REQUEST_TIMEOUT: u16 = 408;
/// 413 Content Too Large: a body over `max_body_bytes`.
pub const CONTENT_TOO_LARGE: u16 = 413;
/// 429 Too Many Requests (RFC 6585 §4).
pub const TOO_MANY_REQUESTS: u16 = 429;
/// 431 Request Header Fields Too Large (RFC 6585 §5).
pub const HEADERS_TOO_LARGE: u16 = 431;
/// 499: the client closed before the response (nginx's code, for logs only).
pub const CLIENT_CLOSED: u16 = 499;
/// 500 Internal Server Error.
pub const INTERNAL_SERVER_ERROR: u16 = 500;
/// 501 Not Implemented: a transfer coding sluice does not support.
pub const NOT_IMPLEMENTED: u16 = 501;
/// 502 Bad Gateway: the server failed or answered something invalid.
pub const BAD_GATEWAY: u16 = 502;
/// 503 Service Unavailable: no usable server, or its queue is full or timed out.
pub const SERVICE_UNAVAILABLE: u16 = 503;
/// 504 Gateway Timeout: the server did not start answering in time.
pub const GATEWAY_TIMEOUT: u16 = 504;
