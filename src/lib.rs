// The one exception, `splice` (splice(2) and pipes: std has no wrapper), allows it
// for itself; everything else stays safe.
#![deny(unsafe_code)]
//! sluice: a tiny, fast, fault-tolerant reverse proxy and load balancer for HTTP/1.1
//! and WebSocket. One thread, one mio reactor; see ARCHITECTURE.md for the map.
//!
//! The reactor (`reactor` and `reactor/*`) owns the poll, the sockets, the slab and the
//! clock, and carries out what the components decide: `session`, `exchange`, `tunnel`,
//! `pool`, `group`, `backend`, `probe`, `admin` hold state and decisions and never import
//! the reactor. Below them the pure parts (`balance`, `health`, `rebalance`, `clients`,
//! `timer`, `token`, `buf`, `config`) and the sans-IO `protocol` crate.

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod balance;
pub mod buf;
pub mod clients;
pub mod config;
pub mod demo;
pub mod discovery;
pub mod exchange;
pub mod group;
pub mod health;
pub mod histogram;
pub mod history;
pub mod io;
pub mod pool;
pub mod probe;
pub mod reach;
pub mod reactor;
pub mod readiness;
pub mod ready;
pub mod rebalance;
pub mod resolv_conf;
pub mod resolver;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
pub mod simnet;
#[cfg(all(target_os = "linux", not(feature = "sim")))]
pub mod splice;
pub mod timer;
#[cfg(feature = "tls")]
pub mod tls;
pub mod token;
pub mod tunnel;
pub mod watch;

pub use reactor::{Reactor, StopHandle};
