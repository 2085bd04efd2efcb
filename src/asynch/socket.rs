//! Sockets: TCP and TLS (terminated in the modem) over `embedded-io-async`.
//!
//! A [`Socket`] only touches its slot's rings: `read` takes bytes from the receive ring, `write`
//! puts bytes in the transmit ring. The [`Runner`](super::Runner) moves data between the rings
//! and the modem (`AT+QIRD`/`AT+QSSLRECV` when a `recv` URC announces data and there is room,
//! `AT+QISEND`/`AT+QSSLSEND` when bytes are queued). So every socket future is cancel-safe:
//! a dropped `read` loses nothing (the bytes stay in the ring), a dropped `write` has queued
//! nothing (or returned how much it queued), and no AT exchange is ever left half done.

use core::fmt::Write as _;
use core::future::poll_fn;
use core::task::Poll;

use embassy_time::{Duration, Instant, Timer, with_timeout};

use super::modem::send;
use super::{Modem, Never};
use crate::Error;
use crate::command::socket::{Close, Open, OpenTcp, OpenTls};
use crate::socket::{Kind, Phase, SlotState};

/// Where to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote<'h> {
    /// Plain TCP.
    Tcp {
        /// Host name or IP address (the modem resolves names).
        host: &'h str,
        /// Port.
        port: u16,
    },
    /// TLS terminated in the modem, using SSL context `ssl_ctx` (see
    /// [`Modem::configure_tls`](super::Modem::configure_tls)).
    Tls {
        /// SSL context (0–5).
        ssl_ctx: u8,
        /// Host name or IP address; also the SNI and the name checked in the certificate.
        host: &'h str,
        /// Port.
        port: u16,
    },
}

/// An open socket. Implements `embedded_io_async::{Read, Write}`. Close it with
/// [`Socket::close`]; a socket that is dropped is closed in the modem by the runner.
pub struct Socket<'a> {
    modem: Modem<'a>,
    slot: usize,
    kind: Kind,
}

/// Marks an open that did not finish as abandoned, so the runner cleans it up.
struct OpenGuard<'p> {
    pool: &'p dyn crate::socket::SocketPool,
    slot: usize,
    armed: bool,
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pool
                .update(self.slot, &mut |s| s.phase = Phase::Abandoned);
        }
    }
}

impl<'a> Modem<'a> {
    /// Opens a socket on PDP context `cid` (which must be active). Waits for the module's open
    /// result up to the model's open timeout (150 s); a refused connection is
    /// `Err(Error::Ip(566))`, a DNS failure `Err(Error::Ip(565))`, a failed TLS handshake
    /// (wrong CA, rejected client certificate…) `Err(Error::Tls(code))`.
    pub async fn connect(&self, cid: u8, remote: Remote<'_>) -> Result<Socket<'a>, Error> {
        let params = self.model().params();
        let kind = match remote {
            Remote::Tcp { .. } => Kind::Tcp,
            Remote::Tls { .. } => Kind::Tls,
        };
        let slot = self.pool.claim(kind, cid).ok_or(Error::NoSocket)?;
        if slot >= usize::from(params.sockets) {
            self.pool.release(slot);
            return Err(Error::NoSocket);
        }
        let push = self.core.config.push_receive;
        self.pool.update(slot, &mut |s| s.push = push);
        let mut guard = OpenGuard {
            pool: self.pool,
            slot,
            armed: true,
        };
        let id = slot as u8;
        let open = match remote {
            Remote::Tcp { host, port } => Open::Tcp(OpenTcp {
                cid,
                id,
                host,
                port,
                push,
            }),
            Remote::Tls {
                ssl_ctx,
                host,
                port,
            } => Open::Tls(OpenTls {
                cid,
                ssl_ctx,
                id,
                host,
                port,
                push,
            }),
        };
        let sent = send!(self, open);
        if let Err(e) = sent {
            // Refused at once: nothing was opened.
            guard.armed = false;
            self.pool.release(slot);
            return Err(e);
        }
        let pool = self.pool;
        let result = with_timeout(
            Duration::from_millis(u64::from(params.open_timeout_ms)),
            poll_fn(|cx| {
                let s = pool.state(slot);
                if let Some(r) = s.open_result {
                    return Poll::Ready(Ok(r));
                }
                if let Phase::Failed(e) = s.phase {
                    return Poll::Ready(Err(e));
                }
                pool.register(slot, cx.waker());
                Poll::Pending
            }),
        )
        .await;
        match result {
            Ok(Ok(0)) => {
                guard.armed = false;
                self.pool.update(slot, &mut |s| s.phase = Phase::Open);
                debug!("socket {} open", slot);
                Ok(Socket {
                    modem: *self,
                    slot,
                    kind,
                })
            }
            Ok(Ok(code)) => {
                guard.armed = false;
                // The module wants the id closed after a failed open as well.
                let _ = send!(
                    self,
                    Close {
                        id,
                        tls: kind == Kind::Tls,
                        timeout_s: 0,
                    }
                );
                self.pool.release(slot);
                Err(match kind {
                    Kind::Tcp => Error::Ip(code),
                    Kind::Tls => Error::Tls(code),
                })
            }
            Ok(Err(e)) => {
                guard.armed = false;
                self.pool.release(slot);
                Err(e)
            }
            // The guard marks the slot abandoned; the runner closes it when the result comes.
            Err(_) => Err(Error::Timeout),
        }
    }

    /// An `embedded_nal_async::TcpConnect` over this modem's sockets on context `cid`.
    pub fn tcp(&self, cid: u8) -> TcpStack<'a> {
        TcpStack { modem: *self, cid }
    }

    /// The runner's socket work, forever: see [`Runner::run`](super::Runner::run).
    ///
    /// One `async fn` with the rounds, reads, sends and closes written out in it, not awaited
    /// through one helper future per step: each level kept its own copies of the slot, its
    /// state and `self` next to the level below (the service is part of the runner task's
    /// storage for the firmware's life). Across an await only the slot, its kind and the
    /// round's settings are kept; the rest is read again from the pool. A plain `fn` returning
    /// an `async move` block: an `async fn` keeps `self` twice.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn service(&self) -> impl core::future::Future<Output = Never> + '_ {
        async move {
            let mut last_poll = PollStamp::at(Instant::now());
            loop {
                let work = self.pool.work();
                let poll_due =
                    self.core.config.recv_poll.is_some_and(|p| {
                        last_poll.left(p, Instant::now()) == Duration::from_ticks(0)
                    });
                if poll_due {
                    last_poll = PollStamp::at(Instant::now());
                }
                // Slot numbers fit a byte (the modules have at most 12 sockets).
                let mut slot: u8 = 0;
                while usize::from(slot) < self.pool.slots() {
                    // What to do with the slot, from its state (not kept across the awaits).
                    let (kind, step) = {
                        let s = self.pool.state(usize::from(slot));
                        let step = match s.phase {
                            // Closes an abandoned socket in the modem once its open result is
                            // known, then frees it (while the open still runs, its URC will come,
                            // or a reboot).
                            Phase::Abandoned => match s.open_result {
                                None => Step::Skip,
                                Some(r) => Step::Reap { close: r != 0xffff },
                            },
                            // In push mode the module holds nothing to read (and answers a read
                            // with ERROR): the data came inside its URCs.
                            Phase::Open | Phase::PeerClosed => Step::Serve {
                                read: !s.push
                                    && (s.recv_pending || (poll_due && s.phase == Phase::Open)),
                            },
                            _ => Step::Skip,
                        };
                        (s.kind, step)
                    };
                    match step {
                        Step::Reap { close } => {
                            if close {
                                let _ = self.slot_op(slot, kind, SlotOp::Close).await;
                            }
                            self.pool.release(usize::from(slot));
                        }
                        Step::Serve { read } => {
                            // Reads what the modem holds for the slot into its ring, while there is
                            // room.
                            let mut pending = read;
                            while pending {
                                let r = self.slot_op(slot, kind, SlotOp::Read).await;
                                pending = self.after_read(usize::from(slot), r);
                            }
                            // Sends what is queued for the slot.
                            loop {
                                let failures = {
                                    let s = self.pool.state(usize::from(slot));
                                    if s.phase != Phase::Open
                                        || s.tx_error.is_some()
                                        || self.pool.tx_len(usize::from(slot)) == 0
                                    {
                                        break;
                                    }
                                    s.send_failures
                                };
                                if failures > 0 {
                                    // SEND FAIL: the modem's buffer is full. Back off, then try
                                    // again.
                                    if failures >= 5 {
                                        self.pool.update(usize::from(slot), &mut |s| {
                                            s.tx_error = Some(Error::SendFail);
                                            s.send_failures = 0;
                                        });
                                        break;
                                    }
                                    Timer::after(Duration::from_millis(50 * u64::from(failures)))
                                        .await;
                                }
                                let r = self.slot_op(slot, kind, SlotOp::Send).await;
                                match r {
                                    Ok(_) | Err(Error::SendFail) => {}
                                    Err(_) => break,
                                }
                            }
                        }
                        Step::Skip => {}
                    }
                    slot = slot.wrapping_add(1);
                }
                // Sleep until something changes, or until the next periodic check.
                let pool = self.pool;
                let changed = poll_fn(|cx| {
                    if pool.register_service(cx.waker()) != work {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                });
                let tick = match self.core.config.recv_poll {
                    Some(p) => last_poll.left(p, Instant::now()),
                    None => Duration::from_secs(3600),
                };
                let _ = with_timeout(tick.max(Duration::from_millis(1)), changed).await;
            }
        }
    }

    /// One exchange of the socket service for `slot`, with the channel locked for it alone
    /// (other commands get their turn between two): the close of an abandoned socket, a read
    /// into its ring (`Ok(Some((got, asked)))`, `Ok(None)`: no room) or a send of what it has
    /// queued (`Ok(None)`).
    ///
    /// One future for the three, holding the channel once: written out in the service, each
    /// kept its own 16-byte channel guard next to the service's state. A plain `fn` returning
    /// an `async move` block (an `async fn` keeps its arguments twice).
    #[allow(clippy::manual_async_fn)]
    fn slot_op(
        &self,
        slot: u8,
        kind: Kind,
        op: SlotOp,
    ) -> impl core::future::Future<Output = Result<Option<(usize, usize)>, Error>> + '_ {
        async move {
            let mut ch = self.channel().await;
            match op {
                SlotOp::Close => {
                    let close = Close {
                        id: slot,
                        tls: kind == Kind::Tls,
                        timeout_s: 0,
                    };
                    ch.send(&close).await.map(|()| None)
                }
                SlotOp::Read => {
                    let max = usize::from(self.model().params().max_read).min(1500);
                    ch.read_into_ring(slot, kind, max).await
                }
                SlotOp::Send => {
                    let max = usize::from(self.model().params().max_send);
                    ch.send_queued(slot, kind, max).await.map(|_| None)
                }
            }
        }
    }

    /// Books the result of one read of `slot` into its ring: `true` when the modem may hold
    /// more for it (read again), `false` when it holds nothing, there is no room, or the read
    /// failed.
    fn after_read(&self, slot: usize, r: Result<Option<(usize, usize)>, Error>) -> bool {
        match r {
            // No room: the reader frees some and kicks us.
            Ok(None) => false,
            Ok(Some((got, asked))) if got < asked => {
                // Fewer bytes than asked: the modem's buffer is empty now. Quectel's TCP/IP
                // manuals: after a `recv` URC "no further URC is reported until the buffer
                // has been drained completely", and an empty buffer is a drained one, so
                // the next data is announced again. No confirming empty read (it cost a
                // round trip and ~39 UART bytes per inbound message or PUBACK); see
                // docs/architecture.md for the evidence.
                self.pool.update(slot, &mut |s| s.recv_pending = false);
                false
            }
            Ok(Some(_)) => {
                // As many as asked: the modem may hold more, and will not announce it.
                self.pool.update(slot, &mut |s| s.recv_pending = true);
                true
            }
            Err(Error::Rebooted) | Err(Error::Timeout) => false,
            Err(Error::Error | Error::Cme(_))
                if self.pool.state(slot).phase == Phase::PeerClosed =>
            {
                // After the peer closed, some firmware answers ERROR once the buffer is
                // empty: everything was read.
                self.pool.update(slot, &mut |s| s.recv_pending = false);
                false
            }
            Err(e) => {
                // The module no longer knows the socket.
                warn!("socket {} read failed", slot);
                self.pool.update(slot, &mut |s| {
                    s.recv_pending = false;
                    if s.is_live() {
                        s.phase = Phase::Failed(match e {
                            Error::Error | Error::Cme(_) => Error::ConnectionClosed,
                            other => other,
                        });
                    }
                });
                false
            }
        }
    }
}

/// An exchange of the socket service (see `Modem::slot_op`).
#[derive(Clone, Copy)]
enum SlotOp {
    Close,
    Read,
    Send,
}

/// What the socket service does with a slot in one round.
#[derive(Clone, Copy)]
enum Step {
    /// Nothing (free, opening, closed or failed; or abandoned with its open still running).
    Skip,
    /// Abandoned with its open result known: close it in the modem (unless the open failed),
    /// then free it.
    Reap { close: bool },
    /// Open: read what the modem holds (`read`), then send what is queued.
    Serve { read: bool },
}

impl<'a> Modem<'a> {
    // The socket I/O below are plain `fn`s returning the `poll_fn` itself: an `async fn` would
    // wrap it in a state machine of its own, under each handle's.
    pub(crate) fn socket_read<'b>(
        &self,
        slot: usize,
        buf: &'b mut [u8],
    ) -> impl core::future::Future<Output = Result<usize, Error>> + use<'a, 'b> {
        let pool = self.pool;
        poll_fn(move |cx| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let n = pool.read(slot, buf);
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            let s = pool.state(slot);
            match s.phase {
                Phase::Open => {}
                Phase::PeerClosed if !s.recv_pending => return Poll::Ready(Ok(0)),
                Phase::PeerClosed => {}
                Phase::Failed(e) => return Poll::Ready(Err(e)),
                _ => return Poll::Ready(Err(Error::InvalidState)),
            }
            pool.register(slot, cx.waker());
            Poll::Pending
        })
    }

    pub(crate) fn socket_write<'b>(
        &self,
        slot: usize,
        buf: &'b [u8],
    ) -> impl core::future::Future<Output = Result<usize, Error>> + use<'a, 'b> {
        let pool = self.pool;
        poll_fn(move |cx| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let s = pool.state(slot);
            if let Some(e) = s.tx_error {
                pool.update(slot, &mut |s| s.tx_error = None);
                return Poll::Ready(Err(e));
            }
            match s.phase {
                Phase::Open => {}
                Phase::PeerClosed => return Poll::Ready(Err(Error::ConnectionClosed)),
                Phase::Failed(e) => return Poll::Ready(Err(e)),
                _ => return Poll::Ready(Err(Error::InvalidState)),
            }
            let n = pool.write(slot, buf);
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            pool.register(slot, cx.waker());
            Poll::Pending
        })
    }

    pub(crate) fn socket_flush(
        &self,
        slot: usize,
    ) -> impl core::future::Future<Output = Result<(), Error>> + use<'a> {
        let pool = self.pool;
        poll_fn(move |cx| {
            let s = pool.state(slot);
            if let Some(e) = s.tx_error {
                pool.update(slot, &mut |s| s.tx_error = None);
                return Poll::Ready(Err(e));
            }
            if pool.tx_len(slot) == 0 {
                return Poll::Ready(Ok(()));
            }
            match s.phase {
                Phase::Open => {}
                Phase::PeerClosed => return Poll::Ready(Err(Error::ConnectionClosed)),
                Phase::Failed(e) => return Poll::Ready(Err(e)),
                _ => return Poll::Ready(Err(Error::InvalidState)),
            }
            pool.register(slot, cx.waker());
            pool.kick();
            Poll::Pending
        })
    }

    /// Flushes (up to 10 s), closes in the modem and frees the slot.
    pub(crate) async fn socket_close(&self, slot: usize, kind: Kind) -> Result<(), Error> {
        let flushed = match with_timeout(Duration::from_secs(10), self.socket_flush(slot)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout),
        };
        let closed = send!(
            self,
            Close {
                id: slot as u8,
                tls: kind == Kind::Tls,
                timeout_s: 1,
            }
        );
        self.pool.release(slot);
        match (flushed, closed) {
            (Err(Error::ConnectionClosed | Error::ContextDeactivated | Error::Rebooted), r) => r,
            (Err(e), _) => Err(e),
            (Ok(()), r) => r,
        }
    }

    /// Marks a socket whose handle went away so that the runner closes it in the modem.
    pub(crate) fn socket_abandon(&self, slot: usize) {
        self.pool.update(slot, &mut |s| {
            s.phase = Phase::Abandoned;
            if s.open_result.is_none() {
                s.open_result = Some(0);
            }
        });
    }
}

impl<'a> Socket<'a> {
    /// The modem's id of this socket (`<connectID>`/`<clientID>`).
    pub fn id(&self) -> u8 {
        self.slot as u8
    }

    /// TCP or TLS.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// A snapshot of the socket's state (bytes sent and received, phase).
    pub fn state(&self) -> SlotState {
        self.modem.pool.state(self.slot)
    }

    /// Reads received bytes; waits until some arrive. `Ok(0)` means the peer closed and
    /// everything was read. Cancel-safe.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.modem.socket_read(self.slot, buf).await
    }

    /// Queues bytes for sending; waits only while the transmit ring is full. Returns how many
    /// bytes were queued (the runner sends them). Cancel-safe: a dropped `write` queued nothing.
    /// An error from sending earlier bytes (e.g. [`Error::SendFail`] after retries) is returned
    /// here or by [`Socket::flush`].
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.modem.socket_write(self.slot, buf).await
    }

    /// Waits until the modem has accepted every queued byte (`SEND OK`). Cancel-safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.modem.socket_flush(self.slot).await
    }

    /// Sends what is queued (up to 10 s), then closes the socket in the modem
    /// (`AT+QICLOSE`/`AT+QSSLCLOSE`) and frees its slot.
    pub async fn close(self) -> Result<(), Error> {
        let (modem, slot, kind) = (self.modem, self.slot, self.kind);
        core::mem::forget(self);
        modem.socket_close(slot, kind).await
    }

    /// Splits the socket into a reading half and a writing half that can be used from two
    /// futures at once (both borrow the socket).
    pub fn split(&mut self) -> (SocketReader<'_, 'a>, SocketWriter<'_, 'a>) {
        (
            SocketReader {
                modem: self.modem,
                slot: self.slot,
                _socket: core::marker::PhantomData,
            },
            SocketWriter {
                modem: self.modem,
                slot: self.slot,
                _socket: core::marker::PhantomData,
            },
        )
    }

    /// Gives up the handle without closing: returns the slot (for the blocking facade).
    pub(crate) fn into_slot(self) -> (usize, Kind) {
        let r = (self.slot, self.kind);
        core::mem::forget(self);
        r
    }
}

impl Drop for Socket<'_> {
    fn drop(&mut self) {
        self.modem.socket_abandon(self.slot);
    }
}

impl embedded_io_async::ErrorType for Socket<'_> {
    type Error = Error;
}

// The trait methods return the socket I/O futures themselves (no `async` wrapper of their own).
impl embedded_io_async::Read for Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> impl core::future::Future<Output = Result<usize, Error>> {
        self.modem.socket_read(self.slot, buf)
    }
}

impl embedded_io_async::Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> impl core::future::Future<Output = Result<usize, Error>> {
        self.modem.socket_write(self.slot, buf)
    }
    fn flush(&mut self) -> impl core::future::Future<Output = Result<(), Error>> {
        self.modem.socket_flush(self.slot)
    }
}

/// The reading half of a [`Socket`] (see [`Socket::split`]).
pub struct SocketReader<'s, 'a> {
    modem: Modem<'a>,
    slot: usize,
    _socket: core::marker::PhantomData<&'s mut Socket<'a>>,
}

/// The writing half of a [`Socket`] (see [`Socket::split`]).
pub struct SocketWriter<'s, 'a> {
    modem: Modem<'a>,
    slot: usize,
    _socket: core::marker::PhantomData<&'s mut Socket<'a>>,
}

impl embedded_io_async::ErrorType for SocketReader<'_, '_> {
    type Error = Error;
}

impl embedded_io_async::Read for SocketReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> impl core::future::Future<Output = Result<usize, Error>> {
        self.modem.socket_read(self.slot, buf)
    }
}

impl embedded_io_async::ErrorType for SocketWriter<'_, '_> {
    type Error = Error;
}

impl embedded_io_async::Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> impl core::future::Future<Output = Result<usize, Error>> {
        self.modem.socket_write(self.slot, buf)
    }
    fn flush(&mut self) -> impl core::future::Future<Output = Result<(), Error>> {
        self.modem.socket_flush(self.slot)
    }
}

/// `embedded_nal_async::TcpConnect` over the modem (plain TCP on one PDP context), so that
/// other clients (HTTP, MQTT libraries) can use the modem's sockets. It is also an
/// `embedded_nal_async::Dns` over the modem's resolver on the same context (see
/// [`Modem::resolve`]), so that such clients connect by host name.
#[derive(Clone, Copy)]
pub struct TcpStack<'a> {
    pub(super) modem: Modem<'a>,
    pub(super) cid: u8,
}

impl<'a> embedded_nal_async::TcpConnect for TcpStack<'a> {
    type Error = Error;
    type Connection<'c>
        = Socket<'a>
    where
        Self: 'c;

    async fn connect<'c>(
        &'c self,
        remote: core::net::SocketAddr,
    ) -> Result<Self::Connection<'c>, Error> {
        let mut host: heapless::String<48> = heapless::String::new();
        write!(host, "{}", remote.ip()).map_err(|_| Error::Overflow)?;
        self.modem
            .connect(
                self.cid,
                Remote::Tcp {
                    host: &host,
                    port: remote.port(),
                },
            )
            .await
    }
}

/// When the socket service last polled, in units of `2^POLL_SHIFT` timer ticks since boot,
/// wrapping: 4 bytes where an [`Instant`] takes 8 (and 8-byte alignment) in the runner task's
/// storage, for the firmware's life. The unit is the largest power of two of ticks that is not
/// longer than a millisecond (512 µs at embassy-time's default 1 MHz tick, 977 µs at 32 768 Hz),
/// so the stamp is read with a shift, not a 64-bit division (which firmware without another
/// user of it would link for this alone: about 500 B of flash). Exact to that unit (a poll can
/// be due up to one unit early) for any period up to 2^32 units (25 days at 1 MHz, 48 days at
/// 32 768 Hz, what the wrapping difference measures); a longer `recv_poll` is taken as that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PollStamp(u32);

/// The stamp's unit, `2^POLL_SHIFT` ticks: the largest power of two of ticks within a
/// millisecond (one tick when a tick is longer).
const POLL_SHIFT: u32 = {
    let per_ms = embassy_time::TICK_HZ / 1000;
    if per_ms <= 1 {
        0
    } else {
        63 - per_ms.leading_zeros()
    }
};

impl PollStamp {
    /// The stamp of `t`.
    fn at(t: Instant) -> Self {
        // (The low 32 bits of the units: only differences are used, wrapping.)
        Self((t.as_ticks() >> POLL_SHIFT) as u32)
    }

    /// How long after `now` a poll every `period` from this stamp is due (zero: due).
    fn left(self, period: Duration, now: Instant) -> Duration {
        let elapsed = u64::from(Self::at(now).0.wrapping_sub(self.0)) << POLL_SHIFT;
        let period = period.as_ticks().min(u64::from(u32::MAX) << POLL_SHIFT);
        Duration::from_ticks(period.saturating_sub(elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time left to a poll, as the `Instant` arithmetic it replaced gives it, to the
    /// stamp's unit, across the stamp's wrap-around (every 2^32 units).
    #[test]
    fn poll_stamps_measure_across_their_wrap() {
        // Times and periods in whole units (where the stamp drops nothing).
        let unit = 1u64 << POLL_SHIFT;
        assert!(
            unit * 1000 <= embassy_time::TICK_HZ.max(1000),
            "a unit is at most 1 ms"
        );
        let at = |u: u64| Instant::from_ticks(u * unit);
        let units = |u: u64| Duration::from_ticks(u * unit);
        let old = |last: Instant, p: Duration, now: Instant| {
            last.saturating_add(p).saturating_duration_since(now)
        };
        let wrap = 1u64 << 32;
        let day = 86_400_000; // units: at least that many milliseconds
        for base in [
            0,
            5_000,
            wrap - 1,
            wrap - 300,
            wrap,
            3 * wrap - 7,
            40 * wrap + 12_345,
        ] {
            for p in [1u64, 300, 5_000, 3_600_000, day * 40] {
                for dt in [
                    0u64,
                    1,
                    299,
                    300,
                    301,
                    4_999,
                    5_000,
                    5_001,
                    3_600_000,
                    day * 41,
                ] {
                    let (last, now) = (at(base), at(base + dt));
                    let p = units(p);
                    assert_eq!(
                        PollStamp::at(last).left(p, now),
                        old(last, p, now),
                        "base {base} period {p:?} after {dt}"
                    );
                }
            }
        }
        // Ticks below the unit are dropped: due at most one unit early (at `10 * unit`, where
        // `unit - 1` ticks are really left; one tick before, a whole unit is left, as it is).
        if unit > 1 {
            let last = Instant::from_ticks(unit - 1);
            let p = units(10);
            assert_eq!(
                PollStamp::at(last).left(p, Instant::from_ticks(10 * unit)),
                Duration::from_ticks(0)
            );
            assert_eq!(
                PollStamp::at(last).left(p, Instant::from_ticks(10 * unit - 1)),
                units(1)
            );
        }
        // A period above 2^32 units is taken as 2^32 - 1 units.
        let long = units(wrap + 5);
        assert_eq!(
            PollStamp::at(at(7)).left(long, at(7 + wrap - 1)),
            Duration::from_ticks(0)
        );
    }
}
