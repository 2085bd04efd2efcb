//! The AT channel: one command in flight, typed results, stale responses never delivered to the
//! wrong command, and socket sends that survive cancellation.

use atat::AtatCmd;
use atat::asynch::AtatClient as _;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, with_timeout};
use embedded_io_async::Write;

use crate::Error;
use crate::at::{Expect, ExpectCell, Final};
use crate::command::{CmdWriter, Command, complete};
use crate::socket::{Kind, SocketPool};
use crate::state::StateCell;

/// Extra time allowed for writing a command on top of its response time.
const WRITE_ALLOWANCE_MS: u64 = 1_000;
/// How long a send may wait for the `> ` prompt and for `SEND OK`.
const SEND_STEP_MS: u64 = 10_000;
/// Largest payload of one send (`AT+QISEND` takes 1460 at most on every model).
pub const MAX_SEND: usize = 1460;

/// Longest wait atat's client applies on its own; the channel's own (per command) deadline is
/// always shorter, so this only has to be "long enough".
const ATAT_WAIT_MS: u32 = 3_600_000;

/// A command's response parser with its type erased: it stores the typed result itself.
type ErasedParse<'c> = &'c dyn Fn(Result<&[u8], atat::InternalError<'_>>);

/// The one command type atat's client ever sees. The typed command is erased behind `parse`,
/// so that the client's send path (and the channel's exchange around it) is compiled once, not
/// once per command type: on firmware that is tens of KiB of flash.
struct Erased<'c> {
    parse: ErasedParse<'c>,
}

/// What atat hands back: the typed result went to the closure already.
struct Parsed;

impl atat::AtatResp for Parsed {}

impl AtatCmd for Erased<'_> {
    type Response = Parsed;
    const MAX_TIMEOUT_MS: u32 = ATAT_WAIT_MS;

    fn write(&self, _buf: &mut [u8]) -> usize {
        // The line is written by `send_with` from the channel's own buffer.
        0
    }

    fn parse(&self, resp: Result<&[u8], atat::InternalError>) -> Result<Parsed, atat::Error> {
        (self.parse)(resp);
        Ok(Parsed)
    }
}

/// Where a socket send is. Kept in the channel so that an abandoned send is finished by the
/// next user of the channel instead of leaving the modem waiting for payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxPhase {
    /// Nothing written yet.
    Command,
    /// `AT+QISEND=<id>,<n>` written; waiting for `> `.
    Prompt,
    /// This many payload bytes written.
    Payload(usize),
    /// Payload written; waiting for `SEND OK`/`SEND FAIL`.
    Result,
}

#[derive(Clone, Copy, Debug)]
struct TxOp {
    slot: u8,
    kind: Kind,
    len: usize,
    phase: TxPhase,
    deadline: Instant,
}

/// Sends typed commands over atat's client.
pub struct Channel<'a, W: Write, const N: usize> {
    client: atat::asynch::Client<'a, W, N>,
    shared: &'a ExpectCell,
    state: &'a StateCell,
    pool: &'a dyn SocketPool,
    line: &'a mut [u8],
    staging: &'a mut [u8],
    tx: Option<TxOp>,
    /// When the last command sent will certainly not be answered any more.
    last_deadline: Instant,
    /// A command line was being written when its future was dropped.
    partial: bool,
}

impl<'a, W: Write, const N: usize> Channel<'a, W, N> {
    pub(crate) fn new(
        client: atat::asynch::Client<'a, W, N>,
        shared: &'a ExpectCell,
        state: &'a StateCell,
        pool: &'a dyn SocketPool,
        line: &'a mut [u8],
        staging: &'a mut [u8],
    ) -> Self {
        Self {
            client,
            shared,
            state,
            pool,
            line,
            staging,
            tx: None,
            last_deadline: Instant::from_ticks(0),
            partial: false,
        }
    }

    /// Brings the channel back to "nothing in flight": ends a command line cut off mid-write,
    /// finishes an abandoned socket send, then waits until an abandoned command's final result
    /// code arrives (its deadline passes, or the modem reboots), so that it cannot be taken
    /// for the answer to the next command.
    async fn settle(&mut self) {
        if self.partial {
            // End the cut-off line so that the modem answers it (with ERROR, most likely) and
            // the next command starts on a fresh line.
            self.shared.begin(Expect::NONE);
            self.last_deadline = Instant::now() + Duration::from_millis(WRITE_ALLOWANCE_MS + 300);
            let w = self.client.inner();
            if w.write_all(b"\r").await.is_ok() && w.flush().await.is_ok() {
                self.partial = false;
            }
        }
        if self.tx.is_some() {
            // Its outcome is recorded in its slot (sent bytes, failure count or error).
            let _ = self.drive_tx().await;
        }
        if self.shared.current().is_some() {
            let boots = self.state.get().boots;
            let done = self.shared.wait_until(|e, _| e.is_none());
            let rebooted = self.state.wait_for(|s| (s.boots != boots).then_some(()));
            let r = embassy_time::with_deadline(self.last_deadline, select(done, rebooted)).await;
            if !matches!(r, Ok(Either::First(()))) {
                debug!("abandoning the answer of an earlier command");
                self.shared.complete();
            }
        }
    }

    /// Waits until `done` holds for the command bookkeeping, the deadline passes or the modem
    /// reboots.
    async fn wait_shared(
        &self,
        deadline: Instant,
        boots: u32,
        done: impl FnMut(Option<Expect>, bool) -> bool,
    ) {
        let cond = self.shared.wait_until(done);
        let rebooted = self.state.wait_for(|s| (s.boots != boots).then_some(()));
        let _ = embassy_time::with_deadline(deadline, select(cond, rebooted)).await;
    }

    /// Sends `cmd` and waits for its typed result.
    ///
    /// Cancel-safe: dropping the future at any point leaves the channel usable; the next command
    /// first waits out the abandoned one's answer.
    pub async fn send<C: Command>(&mut self, cmd: &C) -> Result<C::Response, Error> {
        let len = {
            let mut w = CmdWriter::new(self.line);
            cmd.write(&mut w)?;
            w.raw(b"\r")?;
            w.len()
        };
        // Only this thin shell is compiled per command type; the exchange is type-erased.
        let out = core::cell::Cell::new(None);
        let parse = |resp: Result<&[u8], atat::InternalError<'_>>| {
            out.set(Some(complete(cmd, resp)));
        };
        self.settle_and_exchange(cmd.expect(), C::TIMEOUT_MS, None, len, &parse)
            .await?;
        // `parse` ran if and only if the exchange succeeded.
        out.into_inner().unwrap_or(Err(Error::Parse))
    }

    /// Writes `data` (the data phase of a command that answered `CONNECT`, e.g. a file upload)
    /// and waits for `cmd`'s answer to it.
    pub async fn send_data<C: Command>(
        &mut self,
        cmd: &C,
        data: &[u8],
    ) -> Result<C::Response, Error> {
        let out = core::cell::Cell::new(None);
        let parse = |resp: Result<&[u8], atat::InternalError<'_>>| {
            out.set(Some(complete(cmd, resp)));
        };
        self.settle_and_exchange(cmd.expect(), C::TIMEOUT_MS, Some(data), 0, &parse)
            .await?;
        out.into_inner().unwrap_or(Err(Error::Parse))
    }

    /// [`Self::settle`], then [`Self::exchange_erased`].
    async fn settle_and_exchange(
        &mut self,
        expect: Expect,
        timeout_ms: u32,
        data: Option<&[u8]>,
        len: usize,
        parse: ErasedParse<'_>,
    ) -> Result<(), Error> {
        self.settle().await;
        self.exchange_erased(expect, timeout_ms, data, len, parse)
            .await
    }

    /// The command-type-independent part of [`Self::send`] and [`Self::send_data`] (both stay
    /// thin on purpose: one more generic layer costs about 1 KB of flash in firmware; measured
    /// with `scripts/footprint.sh`): writes the line (or `data`),
    /// waits for the answer within `timeout_ms` plus the write allowance, and hands the answer
    /// to `parse`.
    async fn exchange_erased(
        &mut self,
        expect: Expect,
        timeout_ms: u32,
        data: Option<&[u8]>,
        len: usize,
        parse: ErasedParse<'_>,
    ) -> Result<(), Error> {
        let boots = self.state.get().boots;
        let timeout = u64::from(timeout_ms) + WRITE_ALLOWANCE_MS;
        self.last_deadline = Instant::now() + Duration::from_millis(timeout);
        let Self {
            client,
            shared,
            line,
            partial,
            ..
        } = self;
        let shared: &ExpectCell = shared;
        let (bytes, is_line) = match data {
            Some(d) => (d, false),
            None => (&line[..len], true),
        };
        let erased = Erased { parse };
        // The command counts as in flight from its first written byte: dropped before that
        // (e.g. during the pause between commands), nothing is left to wait for.
        let exchange = with_timeout(
            Duration::from_millis(timeout),
            client.send_with(&erased, async |w: &mut W| {
                shared.begin(expect);
                *partial = is_line;
                let r = w.write_all(bytes).await;
                *partial = false;
                r
            }),
        );
        let rebooted = self.state.wait_for(|s| (s.boots != boots).then_some(()));
        match select(exchange, rebooted).await {
            Either::First(Ok(Ok(Parsed))) => Ok(()),
            Either::First(Ok(Err(e))) => {
                let err = match e {
                    atat::Error::Timeout => Error::Timeout,
                    atat::Error::Write => Error::Write,
                    atat::Error::Read => Error::Read,
                    _ => Error::Parse,
                };
                if err == Error::Write {
                    self.shared.complete();
                }
                Err(err)
            }
            Either::First(Err(_)) => Err(Error::Timeout),
            Either::Second(()) => {
                // The modem lost the command with its reboot.
                self.shared.complete();
                Err(Error::Rebooted)
            }
        }
    }

    /// Reads what the modem holds for socket `slot` into its ring: at most `max` bytes and no
    /// more than the ring has room for *after* any abandoned read has delivered its bytes.
    /// `Ok(None)`: no room.
    pub(crate) async fn read_into_ring(
        &mut self,
        slot: u8,
        kind: Kind,
        max: usize,
    ) -> Result<Option<usize>, Error> {
        self.settle().await;
        // The whole response (header, payload, result code, maybe a URC) must fit the ingress
        // buffer: cap the read below its size.
        let room = self
            .pool
            .rx_free(usize::from(slot))
            .min(max)
            .min(1500)
            .min(N.saturating_sub(96));
        if room == 0 {
            return Ok(None);
        }
        let read = crate::command::socket::Read {
            id: slot,
            tls: kind == Kind::Tls,
            len: room as u16,
        };
        self.send(&read).await.map(Some)
    }

    /// Sends up to [`MAX_SEND`] queued bytes of socket `slot` (`AT+QISEND`/`AT+QSSLSEND`).
    /// The bytes leave the slot's transmit queue only on `SEND OK`. Returns how many were sent.
    pub(crate) async fn send_queued(
        &mut self,
        slot: u8,
        kind: Kind,
        max: usize,
    ) -> Result<usize, Error> {
        self.settle().await;
        let n = self
            .pool
            .tx_peek(usize::from(slot), &mut self.staging[..max.min(MAX_SEND)]);
        if n == 0 {
            return Ok(0);
        }
        self.tx = Some(TxOp {
            slot,
            kind,
            len: n,
            phase: TxPhase::Command,
            deadline: Instant::now(),
        });
        self.drive_tx().await
    }

    /// Runs the send in `self.tx` to its end, from whatever phase it is in.
    async fn drive_tx(&mut self) -> Result<usize, Error> {
        let boots = self.state.get().boots;
        loop {
            let Some(mut op) = self.tx else {
                return Ok(0);
            };
            let slot = usize::from(op.slot);
            if self.state.get().boots != boots {
                self.tx = None;
                return Err(Error::Rebooted);
            }
            match op.phase {
                TxPhase::Command => {
                    // Wait out anything still in flight (without recursing into settle).
                    self.wait_shared(self.last_deadline, boots, |e, _| e.is_none())
                        .await;
                    self.shared.complete();
                    let mut line = [0u8; 24];
                    let len = {
                        let mut w = CmdWriter::new(&mut line);
                        w.str(match op.kind {
                            Kind::Tcp => "AT+QISEND=",
                            Kind::Tls => "AT+QSSLSEND=",
                        })?;
                        w.uint(u32::from(op.slot))?;
                        w.comma()?;
                        w.uint(op.len as u32)?;
                        w.raw(b"\r")?;
                        w.len()
                    };
                    self.shared.begin(Expect::PROMPT);
                    self.partial = true;
                    let w = self.client.inner();
                    w.write_all(&line[..len]).await.map_err(|_| Error::Write)?;
                    w.flush().await.map_err(|_| Error::Write)?;
                    self.partial = false;
                    op.phase = TxPhase::Prompt;
                    op.deadline = Instant::now() + Duration::from_millis(SEND_STEP_MS);
                    self.last_deadline = op.deadline;
                    self.tx = Some(op);
                }
                TxPhase::Prompt => {
                    self.wait_shared(op.deadline, boots, |e, prompt| prompt || e.is_none())
                        .await;
                    if self.shared.prompt_seen() {
                        op.phase = TxPhase::Payload(0);
                        self.tx = Some(op);
                    } else {
                        // ERROR instead of the prompt: the socket is not connected.
                        self.tx = None;
                        let err = if self.shared.current().is_some() {
                            self.shared.complete();
                            Error::Timeout
                        } else {
                            Error::ConnectionClosed
                        };
                        self.pool.update(slot, &mut |s| s.tx_error = Some(err));
                        return Err(err);
                    }
                }
                TxPhase::Payload(done) => {
                    if done < op.len {
                        let w = self.client.inner();
                        let n = w
                            .write(&self.staging[done..op.len])
                            .await
                            .map_err(|_| Error::Write)?;
                        op.phase = TxPhase::Payload(done + n);
                        self.tx = Some(op);
                    } else {
                        self.client
                            .inner()
                            .flush()
                            .await
                            .map_err(|_| Error::Write)?;
                        op.phase = TxPhase::Result;
                        op.deadline = Instant::now() + Duration::from_millis(SEND_STEP_MS);
                        self.last_deadline = op.deadline;
                        self.tx = Some(op);
                    }
                }
                TxPhase::Result => {
                    self.wait_shared(op.deadline, boots, |e, _| e.is_none())
                        .await;
                    self.tx = None;
                    if self.shared.current().is_some() {
                        self.shared.complete();
                        self.pool
                            .update(slot, &mut |s| s.tx_error = Some(Error::Timeout));
                        return Err(Error::Timeout);
                    }
                    return match self.shared.last_final() {
                        Some(Final::SendOk) => {
                            self.pool.tx_consume(slot, op.len);
                            Ok(op.len)
                        }
                        Some(Final::SendFail) => {
                            // The modem's send buffer is full: keep the bytes, try again later.
                            self.pool.update(slot, &mut |s| {
                                s.send_failures = s.send_failures.saturating_add(1)
                            });
                            Err(Error::SendFail)
                        }
                        other => {
                            let err = other.and_then(Final::into_error).unwrap_or(Error::Error);
                            self.pool.update(slot, &mut |s| s.tx_error = Some(err));
                            Err(err)
                        }
                    };
                }
            }
        }
    }
}
