//! WebSocket (RFC 6455) for a relaying proxy: the opening handshake and the
//! framing layer, without IO.
//!
//! Contract: `handshake` validates the upgrade request and the backend's 101
//! from `(name, value)` header pairs, so it does not depend on `h1` types.
//! `frame` parses and emits frame headers and the control frames sluice sends
//! itself. `tracker` follows one direction of a tunnel byte by byte: the proxy
//! forwards exactly what `FrameTracker::feed` (or `feed_relay`, which stops at
//! control frames only) consumed, unchanged, and acts on the events at frame
//! boundaries.
//!
//! Invariants: nothing allocates except the `write_*` helpers (at most one
//! control frame, 131 bytes); no `unsafe`; every peer-controlled length is
//! checked before use.

pub mod close;
mod frame;
mod handshake;
mod tracker;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use frame::{
    apply_mask, encode_frame_header, parse_frame_header, write_close, write_ping, write_pong,
    FrameError, FrameHeader, Opcode, Role, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1,
};
pub use handshake::{
    accept_key, check_client_upgrade, check_server_accept, ClientUpgrade, HandshakeError,
    ServerAccept,
};
pub use tracker::{valid_close_code, FrameTracker, TrackerConfig, WsEvent};
