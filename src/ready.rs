//! The readiness one poll event reports: the reactor's input from the poll, and what
//! the simulated network (`simnet`, feature `sim`) makes too. Below both of them, so
//! neither imports the other for it.

/// The readiness one event reports, without mio's opaque event type (the simulated
/// network makes these too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Bytes (or EOF) to read.
    pub readable: bool,
    /// Room to write (or a finished connect).
    pub writable: bool,
    /// The peer's FIN or an error was reported.
    pub hup: bool,
}

impl Ready {
    /// What a mio event says.
    pub fn from_event(ev: &mio::event::Event) -> Ready {
        let err = ev.is_error();
        Ready {
            readable: ev.is_readable() || ev.is_read_closed() || err,
            writable: ev.is_writable() || ev.is_write_closed() || err,
            hup: ev.is_read_closed() || err,
        }
    }
}
