//! The reactor on the simulated network (feature `sim`): the harness above the reactor.
//!
//! `simnet` is the network below it (what `io::{Stream, Listener}` name with the feature
//! on); this module drives a real `Reactor` over it: `scenario` decodes fuzzer bytes into
//! clients, backends, faults and time steps and checks isolation, order, liveness and
//! leaks; `check` is the reactor's internal consistency after every turn.

mod check;
pub mod scenario;
#[cfg(feature = "tls")]
pub mod tls;

pub use crate::simnet::spin;
