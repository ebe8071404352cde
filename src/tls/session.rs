//! [`TlsSession`]: one connection's TLS, sans-IO (see the module docs of `tls`): rustls's
//! unbuffered state machine driven over pooled buffers, the bounded handshake, failure reasons.

use super::*;
use crate::buf::{Buf, BufPool};
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, InsufficientSizeError, WriteTraffic,
};
use rustls::Error;
use std::time::Instant;

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Handshaking: `seen` ciphertext bytes taken so far, cut at `deadline`.
    Handshake { deadline: Instant, seen: usize },
    /// Application data flows.
    Open,
    /// Failed; nothing more is accepted.
    Failed(TlsError),
}

/// The rustls connection, through its unbuffered API: every byte it reads or writes is in a
/// buffer of ours.
pub(super) enum Conn {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Largest plaintext encrypted at once: one record, with room for its header, content type,
/// explicit nonce and tag (at most 5 + 8 + 16 + 1 bytes) in a pooled buffer.
const RECORD_OVERHEAD: usize = 64;

/// One TLS connection, client or server side, driven with bytes only.
pub struct TlsSession {
    pub(super) conn: Conn,
    state: State,
    /// Handshake byte bound for this role.
    limit: usize,
    /// The rustls error behind a failure, for the debug log.
    error: Option<Error>,
    /// Ciphertext read from the socket and not yet taken (record-sized). rustls may hold
    /// offsets into it (a handshake message joined from several records), so it is the one
    /// buffer given to every `process_tls_records` call.
    cin: Option<Buf>,
    /// Ciphertext waiting for the socket: handshake flights, records, alerts.
    out: Option<Buf>,
    /// Decrypted bytes the caller's full buffer could not take (at most one record).
    spill: Option<Buf>,
    /// Plaintext written before the handshake finished (a backend's first request).
    early: Option<Buf>,
    /// close_notify was received.
    peer_closed: bool,
    /// close_notify was asked for and not yet queued.
    closing: bool,
}

/// The session's buffers, lent to [`on_state`] while rustls holds the connection.
struct Cx<'a> {
    out: &'a mut Option<Buf>,
    spill: &'a mut Option<Buf>,
    early: &'a mut Option<Buf>,
    peer_closed: &'a mut bool,
    closing: &'a mut bool,
    bufs: &'a mut BufPool,
    /// Where decrypted bytes go first (None: into `spill`).
    plain: Option<&'a mut Buf>,
    /// Plaintext to encrypt, if the caller is writing.
    send: Option<&'a mut Buf>,
}

/// What rustls's last state asks for.
enum Next {
    /// Call `process_tls_records` again.
    Again,
    /// Nothing more can happen until more ciphertext arrives or plaintext is taken.
    Stop,
    /// The connection failed.
    Fail(Error),
}

impl Cx<'_> {
    /// Decrypted bytes to the caller's buffer, the rest into `spill`.
    fn deliver(&mut self, mut payload: &[u8]) {
        if let Some(plain) = self.plain.as_deref_mut() {
            let n = plain.push(payload);
            payload = &payload[n..];
        }
        if !payload.is_empty() {
            let spill = self.spill.get_or_insert_with(|| self.bufs.get());
            spill.push(payload);
        }
    }

    /// Encrypts from `src` into `out` as whole records while they fit.
    fn encrypt<Data>(out: &mut Buf, src: &mut Buf, w: &mut WriteTraffic<'_, Data>) -> usize {
        let mut total = 0;
        while !src.is_empty() {
            let room = out.space().saturating_sub(RECORD_OVERHEAD);
            // A short tail waits for the socket rather than cutting a small record.
            if room == 0 || (room < src.len() && room < 4096 && !out.is_empty()) {
                break;
            }
            let n = src.len().min(room);
            match w.encrypt(&src.bytes()[..n], out.spare()) {
                Ok(k) => {
                    out.commit(k);
                    src.consume(n);
                    total += n;
                }
                Err(_) => break,
            }
        }
        total
    }

    /// Queued plaintext, then the caller's, then close_notify, as records into `out`.
    fn write<Data>(&mut self, w: &mut WriteTraffic<'_, Data>) {
        let out = self.out.get_or_insert_with(|| self.bufs.get());
        if let Some(early) = self.early.as_mut() {
            Cx::encrypt(out, early, w);
        }
        self.bufs.release_if_empty(self.early);
        if self.early.is_none() {
            if let Some(src) = self.send.as_deref_mut() {
                Cx::encrypt(out, src, w);
            }
            if *self.closing {
                if let Ok(n) = w.queue_close_notify(out.spare()) {
                    out.commit(n);
                    *self.closing = false;
                }
            }
        }
        self.bufs.release_if_empty(self.out);
    }

    /// A handshake record (or alert) into `out`, grown when a record does not fit.
    fn encode<Data>(&mut self, e: &mut EncodeTlsData<'_, Data>) -> Result<(), Error> {
        let out = self.out.get_or_insert_with(|| self.bufs.get());
        loop {
            match e.encode(out.spare()) {
                Ok(n) => {
                    out.commit(n);
                    return Ok(());
                }
                Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    out.grow(out.len() + required_size);
                }
                Err(EncodeError::AlreadyEncoded) => return Ok(()),
            }
        }
    }
}

/// Handles one state of rustls's unbuffered API.
fn on_state<Data>(st: Result<ConnectionState<'_, '_, Data>, Error>, cx: &mut Cx<'_>) -> Next {
    let st = match st {
        Ok(st) => st,
        Err(e) => return Next::Fail(e),
    };
    match st {
        ConnectionState::ReadTraffic(mut r) => {
            while let Some(record) = r.next_record() {
                match record {
                    Ok(record) => cx.deliver(record.payload),
                    Err(e) => return Next::Fail(e),
                }
            }
            match cx.spill.is_some() {
                true => Next::Stop,
                false => Next::Again,
            }
        }
        ConnectionState::PeerClosed => {
            *cx.peer_closed = true;
            Next::Again
        }
        ConnectionState::EncodeTlsData(mut e) => match cx.encode(&mut e) {
            Ok(()) => Next::Again,
            Err(e) => Next::Fail(e),
        },
        ConnectionState::TransmitTlsData(mut t) => {
            // The records are in `out`, which the caller sends.
            if let Some(mut w) = t.may_encrypt_app_data() {
                cx.write(&mut w);
            }
            t.done();
            Next::Again
        }
        ConnectionState::WriteTraffic(mut w) => {
            cx.write(&mut w);
            Next::Stop
        }
        // BlockedHandshake (more ciphertext needed), Closed, and early data (not enabled).
        _ => Next::Stop,
    }
}

impl TlsSession {
    pub(super) fn new(conn: Conn, deadline: Instant, limit: usize) -> TlsSession {
        TlsSession {
            conn,
            state: State::Handshake { deadline, seen: 0 },
            limit,
            error: None,
            cin: None,
            out: None,
            spill: None,
            early: None,
            peer_closed: false,
            closing: false,
        }
    }

    /// Runs rustls over the ciphertext held (consuming what it took), with decrypted bytes
    /// going to `plain` (the rest to the spill) and `send` encrypted once the session is
    /// open; handshake flights and alerts go to `out`.
    fn drive(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
    ) -> Result<(), TlsError> {
        let r = self.drive_or_fail(plain, send, bufs);
        if r.is_err() {
            // A failed session takes everything: nothing more will be read from it.
            bufs.release(&mut self.cin);
        }
        r
    }

    fn drive_or_fail(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
    ) -> Result<(), TlsError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        if let (State::Handshake { seen: 0, .. }, Some(&first)) = (
            self.state,
            self.cin.as_ref().and_then(|c| c.bytes().first()),
        ) {
            self.check_first_byte(first)?;
        }
        let (taken, failed) = self.run(plain, send, bufs, false);
        if let Some(e) = failed {
            let err = match self.state {
                State::Handshake { .. } => TlsError::Handshake(HandshakeFail::of(&e)),
                _ => TlsError::Broken,
            };
            self.error = Some(e);
            // The alert rustls queued, if any, goes to `out` for the socket.
            self.run(None, None, bufs, true);
            return Err(self.fail(err));
        }
        bufs.release_if_empty(&mut self.cin);
        if let State::Handshake { deadline, seen } = self.state {
            let seen = seen + taken;
            self.state = State::Handshake { deadline, seen };
            let held = self.cin.as_ref().map_or(0, Buf::len);
            if seen + held > self.limit {
                return Err(self.fail(TlsError::Handshake(HandshakeFail::TooLarge)));
            }
            if !self.rustls_handshaking() {
                self.state = State::Open;
            }
        }
        Ok(())
    }

    /// `process_tls_records` until rustls needs more input or the caller: (ciphertext bytes
    /// taken, the error that stopped it). With `queued_only` (after a failure) it only takes
    /// what rustls already queued (the alert): processing the input again would meet the
    /// same error a second time, which rustls asserts never happens.
    fn run(
        &mut self,
        plain: Option<&mut Buf>,
        send: Option<&mut Buf>,
        bufs: &mut BufPool,
        queued_only: bool,
    ) -> (usize, Option<Error>) {
        let mut cx = Cx {
            out: &mut self.out,
            spill: &mut self.spill,
            early: &mut self.early,
            peer_closed: &mut self.peer_closed,
            closing: &mut self.closing,
            bufs,
            plain,
            send,
        };
        let mut taken = 0;
        loop {
            let queued = match &self.conn {
                Conn::Server(c) => c.wants_write(),
                Conn::Client(c) => c.wants_write(),
            };
            if queued_only && !queued {
                return (taken, None);
            }
            let mut none: [u8; 0] = [];
            let input: &mut [u8] = match self.cin.as_mut() {
                Some(c) => c.bytes_mut(),
                None => &mut none,
            };
            let (discard, next) = match &mut self.conn {
                Conn::Server(c) => {
                    let s = c.process_tls_records(input);
                    (s.discard, on_state(s.state, &mut cx))
                }
                Conn::Client(c) => {
                    let s = c.process_tls_records(input);
                    (s.discard, on_state(s.state, &mut cx))
                }
            };
            if let Some(c) = self.cin.as_mut() {
                c.consume(discard);
            }
            taken += discard;
            match next {
                Next::Again => {}
                Next::Stop => return (taken, None),
                Next::Fail(e) => return (taken, Some(e)),
            }
        }
    }

    /// The buffer to read ciphertext into (taken from the free list when the session holds
    /// none; grown while a handshake message longer than a record is joined). None when it
    /// is full of ciphertext the session cannot take: the peer broke the record layer.
    pub fn input(&mut self, bufs: &mut BufPool) -> Option<&mut Buf> {
        let handshaking = self.is_handshaking();
        let cin = self.cin.get_or_insert_with(|| bufs.get_record());
        if cin.space() == 0 {
            if !handshaking {
                return None;
            }
            // Bounded: past the handshake byte limit the session fails.
            cin.grow(cin.capacity() * 2);
        }
        Some(cin)
    }

    /// After a read into [`input`](Self::input): gives the buffer back if nothing came.
    pub fn input_done(&mut self, bufs: &mut BufPool) {
        bufs.release_if_empty(&mut self.cin);
    }

    fn rustls_handshaking(&self) -> bool {
        match &self.conn {
            Conn::Server(c) => c.is_handshaking(),
            Conn::Client(c) => c.is_handshaking(),
        }
    }

    /// Decrypts the records read into [`input`](Self::input) (consumed as they are taken)
    /// into `plain` (the session's read buffer); what `plain` cannot take
    /// waits in the session, and no further record is decrypted until it is delivered.
    /// Handshake messages are answered into the session's output (see
    /// [`cipher`](Self::cipher)). Returns the plaintext bytes moved.
    pub fn read(&mut self, plain: &mut Buf, bufs: &mut BufPool) -> Result<usize, TlsError> {
        let before = plain.len();
        if let Some(spill) = self.spill.as_mut() {
            let n = plain.push(spill.bytes());
            spill.consume(n);
            bufs.release_if_empty(&mut self.spill);
            if self.spill.is_some() {
                return Ok(n);
            }
        }
        self.drive(Some(&mut *plain), None, bufs)?;
        Ok(plain.len() - before)
    }

    /// True when decrypted bytes wait in the session (deliver them before reading more).
    pub fn has_plain(&self) -> bool {
        self.spill.is_some()
    }

    /// True once close_notify was received (and decrypted bytes before it are delivered
    /// when [`has_plain`](Self::has_plain) is false): a clean EOF.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Encrypts bytes from the front of `plain` (the session's write buffer) into the
    /// session's output, consuming what was taken: at most one pooled buffer of records
    /// waits, so a slow peer applies backpressure. Before the handshake ends the bytes wait
    /// in a pooled buffer and go out after it.
    pub fn write(&mut self, plain: &mut Buf, bufs: &mut BufPool) -> usize {
        match self.state {
            State::Failed(_) => 0,
            State::Handshake { .. } => {
                let early = self.early.get_or_insert_with(|| bufs.get());
                let n = early.push(plain.bytes());
                plain.consume(n);
                n
            }
            State::Open => {
                let before = plain.len();
                let _ = self.drive(None, Some(&mut *plain), bufs);
                before - plain.len()
            }
        }
    }

    /// Produces what the session has to send (the handshake's next flight, queued plaintext
    /// once open, close_notify) into its output.
    pub fn poll_output(&mut self, bufs: &mut BufPool) {
        if self.failure().is_none() {
            let _ = self.drive(None, None, bufs);
        }
    }

    /// Ciphertext waiting for the socket: write from its front, then call
    /// [`sent`](Self::sent).
    pub fn cipher(&mut self) -> Option<&mut Buf> {
        self.out.as_mut()
    }

    /// Gives the output buffer back once it is empty.
    pub fn sent(&mut self, bufs: &mut BufPool) {
        bufs.release_if_empty(&mut self.out);
    }

    /// True when ciphertext waits for the socket or plaintext waits for the handshake.
    pub fn wants_write(&self) -> bool {
        let queued = self.early.is_some() || self.closing;
        self.out.is_some() || (queued && self.failure().is_none())
    }

    /// Gives every buffer back (the socket is closing).
    pub fn release(&mut self, bufs: &mut BufPool) {
        bufs.release(&mut self.cin);
        bufs.release(&mut self.out);
        bufs.release(&mut self.spill);
        bufs.release(&mut self.early);
    }

    /// Buffers held (for the consistency checks and the memory figures).
    pub fn buffers(&self) -> usize {
        [&self.cin, &self.out, &self.spill, &self.early]
            .iter()
            .filter(|b| b.is_some())
            .count()
    }

    /// A server session's first byte must start a handshake record (RFC 8446 §5.1,
    /// content type 22). An ASCII letter is an HTTP method.
    fn check_first_byte(&mut self, first: u8) -> Result<(), TlsError> {
        const HANDSHAKE_RECORD: u8 = 0x16;
        if matches!(self.conn, Conn::Client(_)) || first == HANDSHAKE_RECORD {
            return Ok(());
        }
        let why = match first.is_ascii_uppercase() {
            true => HandshakeFail::PlainHttp,
            false => HandshakeFail::BadHello,
        };
        Err(self.fail(TlsError::Handshake(why)))
    }

    fn fail(&mut self, e: TlsError) -> TlsError {
        self.state = State::Failed(e);
        self.closing = false;
        e
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshake { .. })
    }

    /// True once application data can flow.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The failure, once there is one.
    pub fn failure(&self) -> Option<TlsError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The rustls error behind the failure, for the debug log.
    pub fn last_error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// When the handshake must have finished; None once it has.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Handshake { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Fails a handshake whose deadline has passed; returns the failure to count.
    pub fn on_timeout(&mut self, now: Instant) -> Option<HandshakeFail> {
        match self.state {
            State::Handshake { deadline, .. } if now >= deadline => {
                self.fail(TlsError::Handshake(HandshakeFail::Timeout));
                Some(HandshakeFail::Timeout)
            }
            _ => None,
        }
    }

    /// The peer closed the socket: mid-handshake that is a failure to count.
    pub fn on_eof(&mut self) -> Option<HandshakeFail> {
        match self.state {
            State::Handshake { .. } => {
                self.fail(TlsError::Handshake(HandshakeFail::Eof));
                Some(HandshakeFail::Eof)
            }
            _ => None,
        }
    }

    /// Asks for close_notify (an open session only); [`poll_output`](Self::poll_output)
    /// queues it after any plaintext still waiting.
    pub fn close(&mut self) {
        self.closing = self.is_open();
    }

    /// The negotiated protocol version, once known.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.conn {
            Conn::Server(c) => c.protocol_version(),
            Conn::Client(c) => c.protocol_version(),
        }
    }
}
