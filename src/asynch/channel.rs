//! The AT channel: one command in flight, typed results, stale responses never delivered to the
//! wrong command, and socket sends that survive cancellation.
//!
//! The channel does not own the UART: it renders a command into the transmit mailbox and the
//! runner writes it (see [`super::tx`]). The response streams back through the runner's
//! digester, which hands each line to the listener the command registered
//! ([`ExpectCell::listen`](crate::at::ExpectCell::listen)), so that nothing here is generic over
//! the UART or the ingress size and no response is ever buffered whole.

use embassy_futures::select::Either;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::MutexGuard;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use zeroize::Zeroize;

use super::Modem;
use super::tx::{CMD_BUF, MAX_SEND, Source};
use crate::Error;
use crate::at::{Expect, Final};
use crate::command::{CmdWriter, Command, Folding, Listen};
use crate::socket::Kind;

/// Extra time allowed for writing a command on top of its response time.
const WRITE_ALLOWANCE_MS: u64 = 1_000;
/// How long a send may wait for the `> ` prompt and for `SEND OK`.
const SEND_STEP_MS: u64 = 10_000;
/// The sequence marker (see [`Channel::resync`]) and what it expects back.
const MARKER: &[u8] = b"AT+CMEE?\r";
const MARKER_EXPECT: Expect = Expect::prefixed(b"+CMEE:").with_line();

/// When a wait on the command bookkeeping is over (see [`Channel::wait_shared`]): the
/// expectation still open, and whether the prompt was seen.
type Done = fn(Option<Expect>, bool) -> bool;

/// Where a socket send is. Kept in the channel so that an abandoned send is finished by the
/// next user of the channel instead of leaving the modem waiting for payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxPhase {
    /// Nothing written yet.
    Command,
    /// `AT+QISEND=<id>,<n>` posted; waiting for `> `.
    Prompt,
    /// Prompt seen; the payload is to be written (from `TxOp::written` on, in pieces of at
    /// most [`CMD_BUF`] bytes copied from the slot's transmit ring).
    Payload,
    /// Payload written; waiting for `SEND OK`/`SEND FAIL`.
    Result,
}

#[derive(Clone, Copy, Debug)]
struct TxOp {
    slot: u8,
    kind: Kind,
    /// The payload's length, at most [`MAX_SEND`] (a `u16`: the channel state is kept for the
    /// firmware's life, and with two `usize`s the send's bookkeeping took 24 bytes, not 16).
    len: u16,
    /// Payload bytes posted for writing so far.
    written: u16,
    phase: TxPhase,
    deadline: Instant,
}

/// What the channel remembers between commands (kept in [`Resources`](super::Resources), behind
/// the channel lock).
pub(crate) struct ChannelState {
    tx: Option<TxOp>,
    /// When the last command sent will certainly not be answered any more.
    last_deadline: Instant,
    /// When the next command may be written (the configured gap after the last one).
    next_write: Instant,
    /// The line buffer holds (or held, for an abandoned command) a secret to wipe:
    /// a PIN, a password, or a file upload (which may be a private key).
    wipe: bool,
    /// A command was abandoned without its final result code (its deadline passed): its
    /// answer may still come, so the next command is preceded by a sequence marker.
    resync: bool,
}

impl ChannelState {
    pub(crate) const fn new() -> Self {
        Self {
            tx: None,
            last_deadline: Instant::from_ticks(0),
            next_write: Instant::from_ticks(0),
            wipe: false,
            resync: false,
        }
    }
}

/// The AT channel, locked: one command in flight.
pub(crate) struct Channel<'c> {
    st: MutexGuard<'c, CriticalSectionRawMutex, ChannelState>,
    m: Modem<'c>,
}

impl<'c> Channel<'c> {
    /// Locks the channel of `m`.
    pub(crate) async fn lock(m: Modem<'c>) -> Channel<'c> {
        Channel {
            st: m.core.channel.lock().await,
            m,
        }
    }

    /// Brings the channel back to "nothing in flight": finishes an abandoned socket send, then
    /// waits until an abandoned command's final result code arrives (its deadline passes, or the
    /// modem reboots), so that it cannot be taken for the answer to the next command.
    /// Polled out of line: every send settles first, so an inlined copy would sit in each.
    ///
    /// A plain `fn` returning an `async move` block (an `async fn` keeps `self` twice), which
    /// reaches the core through `self` rather than keeping a copy of it across its awaits.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    fn settle(&mut self) -> super::outline::Outlined<impl core::future::Future<Output = ()> + '_> {
        super::outline::Outlined(async move {
            // A request posted by an abandoned command is still written whole.
            self.m.core.tx.idle().await;
            let _ = self.m.core.tx.outcome().await;
            // An abandoned command's line may have held a PIN or a password.
            self.wipe_secrets().await;
            if self.st.tx.is_some() {
                // Its outcome is recorded in its slot (sent bytes, failure count or error).
                let _ = self.drive_tx().await;
            }
            let core = self.m.core;
            if core.shared.current().is_some() {
                let boots = core.starts();
                let r = embassy_time::with_deadline(
                    self.st.last_deadline,
                    SharedOrRestart {
                        core,
                        done: |e, _| e.is_none(),
                        boots,
                    },
                )
                .await;
                let core = self.m.core;
                match r {
                    Ok(Either::First(())) => {}
                    Ok(Either::Second(())) => {
                        // The modem rebooted: the command is gone with everything it would
                        // answer.
                        core.shared.complete();
                    }
                    Err(_) => {
                        debug!("abandoning the answer of an earlier command");
                        core.shared.complete();
                        self.st.resync = true;
                    }
                }
            }
            if self.st.resync && self.resync().await.is_err() {
                debug!("the sequence marker failed");
            }
        })
    }

    /// Makes sure that no final result code of an abandoned command is still on its way, so
    /// that the next command cannot take it for its own: sends a sequence marker, `AT+CMEE?`,
    /// whose answer has an information line (`+CMEE: <n>`) no stale answer can have. The
    /// module answers commands in order, so once the marker's own answer arrived, anything
    /// the abandoned command still had to say has arrived before it; an `OK` before the
    /// `+CMEE:` line is that stale one, and the digester drops it
    /// ([`Expect::answers_line`]). One round trip, only after a command was abandoned without
    /// its final result code (a timeout, or a cancelled future whose deadline passed).
    ///
    /// Its answer is not needed (an error means the module is in sync again too), only that
    /// the exchange ended. The marker is written as it is (not through the line buffer), so
    /// this is the exchange's own future: it adds nothing to [`Self::settle`]'s.
    fn resync(
        &mut self,
    ) -> super::outline::Outlined<impl core::future::Future<Output = Result<(), Error>> + '_> {
        self.st.resync = false;
        self.exchange_erased(None, 300, Source::Static(MARKER))
    }

    /// Waits until `done` holds for the command bookkeeping, the deadline passes or the modem
    /// reboots (the output tells which; the callers read the bookkeeping instead). A plain
    /// `fn`: an `async fn` would keep its arguments next to the wait.
    fn wait_shared(
        &self,
        deadline: Instant,
        boots: u32,
        done: Done,
    ) -> impl core::future::Future<Output = Result<Either<(), ()>, embassy_time::TimeoutError>> + 'c
    {
        let core = self.m.core;
        embassy_time::with_deadline(deadline, SharedOrRestart { core, done, boots })
    }

    /// Sends `cmd` and waits for its typed result.
    ///
    /// Cancel-safe: dropping the future at any point leaves the channel usable; the next command
    /// first waits out the abandoned one's answer.
    // Not an `async fn` on purpose (see `send_erased`): it would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn send<'s, C: Command>(
        &'s mut self,
        cmd: &'s C,
    ) -> impl core::future::Future<Output = Result<C::Response, Error>> + 's {
        // Nothing is compiled per command type but the command's own methods and this shell:
        // writing the line, settling, the exchange and the wait are type-erased (one copy).
        async move {
            let mut acc = crate::command::Typed::new(cmd);
            // A failed exchange's error is in `acc` (no error arm here).
            self.send_erased(&mut acc).await;
            acc.into_result()
        }
    }

    /// [`Self::send`] without the command type: settles, renders the line with `cmd`, then
    /// [`Self::exchange_erased`] with a [`Listen`] over `cmd`. The result is in `cmd`: a failed
    /// exchange hands its error to `cmd` (as a failed command's).
    ///
    /// A plain `fn` returning an `async move` block: an `async fn` keeps a second copy of its
    /// arguments in its future, and this future is part of every command's.
    // Not an `async fn` on purpose (see above): it would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn send_erased<'s>(
        &'s mut self,
        cmd: &'s mut dyn Folding,
    ) -> super::outline::Outlined<impl core::future::Future<Output = ()> + 's> {
        super::outline::Outlined(async move {
            self.settle().await;
            let (spec, rendered) = {
                let mut bufs = self.m.core.tx.buffers().await;
                let mut w = CmdWriter::new(&mut bufs.line);
                let (spec, written) = cmd.render(&mut w);
                // A secret half-written into the buffer is wiped as well.
                self.st.wipe |= spec.secret;
                let rendered = written.and_then(|()| w.raw(b"\r")).map(|()| w.len());
                if rendered.is_err() && self.st.wipe {
                    bufs.line.zeroize();
                    self.st.wipe = false;
                }
                (spec, rendered)
            };
            let r = match rendered {
                Ok(len) => {
                    let listen = Listen::new(cmd, spec.expect);
                    self.exchange_erased(Some(&listen), spec.timeout_ms, Source::Line(len))
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                cmd.take(Err(e), Expect::NONE);
            }
        })
    }

    /// Wipes the line buffer if it held a secret (once the runner has written it).
    ///
    /// A plain `fn` returning an `async move` block (an `async fn` keeps `self` twice): every
    /// exchange awaits it last, next to its result.
    #[allow(clippy::manual_async_fn)]
    fn wipe_secrets(&mut self) -> impl core::future::Future<Output = ()> + '_ {
        async move {
            if self.st.wipe {
                let mut bufs = self.m.core.tx.buffers().await;
                bufs.line.zeroize();
                self.st.wipe = false;
            }
        }
    }

    /// Writes `data` (the data phase of a command that answered `CONNECT`, e.g. a file upload)
    /// and waits for `cmd`'s answer to it.
    pub(crate) async fn send_data<C: Command>(
        &mut self,
        cmd: &C,
        data: &[u8],
    ) -> Result<C::Response, Error> {
        self.settle().await;
        let mut acc = crate::command::Typed::new(cmd);
        let listen = Listen::new(&mut acc, cmd.expect());
        // A file may be a private key: wiped from the line buffer once written.
        self.st.wipe = true;
        // All but the last piece are written without waiting for an answer; the last one is
        // the exchange.
        let mut rest = data;
        while rest.len() > CMD_BUF {
            let (piece, tail) = rest.split_at(CMD_BUF);
            self.stage(piece).await;
            if let Err(e) = self.m.core.tx.write(Source::Line(piece.len())).await {
                self.wipe_secrets().await;
                return Err(e);
            }
            rest = tail;
        }
        self.stage(rest).await;
        self.exchange_erased(Some(&listen), C::TIMEOUT_MS, Source::Line(rest.len()))
            .await?;
        acc.into_result()
    }

    /// Copies `piece` (at most [`CMD_BUF`] bytes) into the line buffer.
    async fn stage(&self, piece: &[u8]) {
        let mut bufs = self.m.core.tx.buffers().await;
        if let Some(dst) = bufs.line.get_mut(..piece.len()) {
            dst.copy_from_slice(piece);
        }
    }

    /// Waits out the configured pause between two commands.
    // The timer itself (no `async fn` level around it).
    fn cooldown(&self) -> Timer {
        Timer::at(self.st.next_write)
    }

    /// The command-type-independent part of [`Self::send`] and [`Self::send_data`] (both stay
    /// thin on purpose: one more generic layer costs about 1 KB of flash in firmware; measured
    /// with `scripts/footprint.sh`): has the runner write `src`, waits for the answer within
    /// `timeout_ms` plus the write allowance, hands the answer to `listen` (`None`: the
    /// sequence marker of [`Self::resync`], whose answer is not kept) and wipes the line buffer
    /// if it held a secret. `Ok` once the response ended (its result is in the listener's
    /// command).
    /// A plain `fn` returning an `async move` block, for the reason given at
    /// [`Self::send_erased`].
    // Not an `async fn` on purpose (see above): it would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    fn exchange_erased<'s, 'l: 's>(
        &'s mut self,
        listen: Option<&'s Listen<'l>>,
        timeout_ms: u32,
        src: Source,
    ) -> super::outline::Outlined<impl core::future::Future<Output = Result<(), Error>> + 's> {
        super::outline::Outlined(async move {
            self.cooldown().await;
            let core = self.m.core;
            let r = {
                let boots = core.starts();
                let timeout = u64::from(timeout_ms) + WRITE_ALLOWANCE_MS;
                self.st.last_deadline =
                    Instant::now().saturating_add(Duration::from_millis(timeout));
                // The lines of the response go to the listener as they arrive, until the answer
                // ended (the guard unregisters it, also when the future is dropped).
                // The listen guard is the listener itself (no closure kept beside it).
                let listening = match listen {
                    Some(l) => core.shared.listen(l),
                    None => core.shared.listen(&ignore_events),
                };
                // The command counts as in flight from the moment it is posted: the runner
                // writes it whole even if this future is dropped.
                core.shared
                    .begin(listen.map_or(MARKER_EXPECT, Listen::expect));
                // Posted here, right before the wait starts (nothing runs in between); the
                // wait holds the posting's outcome and the core, not references to locals.
                core.tx.post(src);
                let exchange = Answered {
                    core,
                    _listening: listening.into_listening(),
                    boots,
                };
                let r = match with_timeout(Duration::from_millis(timeout), exchange).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        // Not written (nothing to wait for), or the modem lost the command with
                        // its reboot (`Error::Rebooted`).
                        self.m.core.shared.complete();
                        Err(e)
                    }
                    Err(_) => Err(Error::Timeout),
                };
                self.st.next_write = Instant::now().saturating_add(self.m.core.config.command_gap);
                r
            };
            self.wipe_secrets().await;
            r?;
            // The response ended if and only if the exchange succeeded.
            if listen.is_none_or(Listen::done) {
                Ok(())
            } else {
                Err(Error::Parse)
            }
        })
    }

    /// Reads what the modem holds for socket `slot` into its ring: at most `max` bytes and no
    /// more than the ring has room for *after* any abandoned read has delivered its bytes.
    /// `Ok(None)`: no room; `Ok(Some((got, asked)))`: `got` bytes arrived of the `asked`.
    // A plain `fn` returning an `async move` block: an `async fn` would keep its arguments
    // twice in its future, which is part of the runner's socket service.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn read_into_ring(
        &mut self,
        slot: u8,
        kind: Kind,
        max: usize,
    ) -> impl core::future::Future<Output = Result<Option<(usize, usize)>, Error>> + '_ {
        async move {
            self.settle().await;
            // The payload streams into the ring: any size up to the modem's 1500 works with any
            // ingress buffer.
            let room = self.m.pool.rx_free(usize::from(slot)).min(max).min(1500);
            if room == 0 {
                return Ok(None);
            }
            let read = crate::command::socket::Read {
                id: slot,
                tls: kind == Kind::Tls,
                len: room as u16,
            };
            self.send(&read).await.map(|got| Some((got, room)))
        }
    }

    /// Sends up to [`MAX_SEND`] queued bytes of socket `slot` (`AT+QISEND`/`AT+QSSLSEND`).
    /// The bytes leave the slot's transmit queue only on `SEND OK`. Returns how many were sent.
    // A plain `fn` returning an `async move` block, as [`Self::read_into_ring`].
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn send_queued(
        &mut self,
        slot: u8,
        kind: Kind,
        max: usize,
    ) -> impl core::future::Future<Output = Result<usize, Error>> + '_ {
        async move {
            self.settle().await;
            // The bytes stay in the ring until `SEND OK`; the payload phase copies them from there.
            let n = self.m.pool.tx_len(usize::from(slot)).min(max).min(MAX_SEND);
            if n == 0 {
                return Ok(0);
            }
            self.st.tx = Some(TxOp {
                slot,
                kind,
                len: u16::try_from(n).unwrap_or(u16::MAX),
                written: 0,
                phase: TxPhase::Command,
                deadline: Instant::now(),
            });
            self.drive_tx().await
        }
    }

    /// Runs the send in `self.tx` to its end, from whatever phase it is in; polled out of line
    /// (one copy in the firmware for its two callers).
    ///
    /// A plain `fn` returning an `async move` block (an `async fn` keeps `self` twice), which
    /// reaches the core and the sockets through `self` rather than keeping copies across its
    /// awaits.
    // Not an `async fn` on purpose (see above).
    #[allow(clippy::manual_async_fn)]
    fn drive_tx(
        &mut self,
    ) -> super::outline::Outlined<impl core::future::Future<Output = Result<usize, Error>> + '_>
    {
        super::outline::Outlined(async move {
            let boots = self.m.core.starts();
            loop {
                let Some(mut op) = self.st.tx else {
                    return Ok(0);
                };
                let slot = usize::from(op.slot);
                if self.m.core.starts() != boots {
                    self.st.tx = None;
                    return Err(Error::Rebooted);
                }
                // One wait for the phases that wait: the command for anything still in flight
                // (without recursing into settle), the prompt for `> ` (or an answer without it),
                // the result for `SEND OK`/`SEND FAIL`.
                let wait: Option<(Instant, Done)> = match op.phase {
                    TxPhase::Command => Some((self.st.last_deadline, |e, _| e.is_none())),
                    TxPhase::Prompt => Some((op.deadline, |e, prompt| prompt || e.is_none())),
                    TxPhase::Payload => None,
                    TxPhase::Result => Some((op.deadline, |e, _| e.is_none())),
                };
                if let Some((deadline, done)) = wait {
                    let _ = self.wait_shared(deadline, boots, done).await;
                }
                // The line to post (the command, or the next piece of the payload).
                let post = match op.phase {
                    TxPhase::Command => {
                        self.m.core.shared.complete();
                        self.cooldown().await;
                        let len = {
                            let mut bufs = self.m.core.tx.buffers().await;
                            let mut w = CmdWriter::new(&mut bufs.line);
                            w.str_uint(
                                match op.kind {
                                    Kind::Tcp => "AT+QISEND=",
                                    Kind::Tls => "AT+QSSLSEND=",
                                },
                                u32::from(op.slot),
                            )?;
                            w.arg(u32::from(op.len))?;
                            w.raw(b"\r")?;
                            w.len()
                        };
                        self.m.core.shared.begin(Expect::PROMPT);
                        op.phase = TxPhase::Prompt;
                        op.deadline =
                            Instant::now().saturating_add(Duration::from_millis(SEND_STEP_MS));
                        self.st.last_deadline = op.deadline;
                        len
                    }
                    TxPhase::Prompt => {
                        if self.m.core.shared.prompt_seen() {
                            op.phase = TxPhase::Payload;
                            self.st.tx = Some(op);
                            continue;
                        } else {
                            // ERROR instead of the prompt: the socket is not connected.
                            self.st.tx = None;
                            let err = if self.m.core.shared.current().is_some() {
                                self.m.core.shared.complete();
                                Error::Timeout
                            } else {
                                Error::ConnectionClosed
                            };
                            self.m.pool.update(slot, &mut |s| s.tx_error = Some(err));
                            return Err(err);
                        }
                    }
                    TxPhase::Payload => {
                        // The next piece, copied from the ring: the bytes of this send leave it
                        // only on `SEND OK`, and nothing else is written while a send is in
                        // progress (the channel is locked, and an abandoned send is finished by
                        // the channel's next user before anything else).
                        let piece = {
                            let mut bufs = self.m.core.tx.buffers().await;
                            let want = usize::from(op.len.saturating_sub(op.written)).min(CMD_BUF);
                            let dst = bufs.line.get_mut(..want).unwrap_or(&mut []);
                            let got = self.m.pool.tx_peek(slot, usize::from(op.written), dst);
                            // Never expected (the ring keeps the bytes): the modem still gets the
                            // count it was promised, so that it is not left waiting.
                            if let Some(rest) = dst.get_mut(got..) {
                                rest.fill(0);
                            }
                            want
                        };
                        // Recorded before the piece is posted: an abandoned send resumes after it
                        // (the runner writes a posted piece whole).
                        op.written = op
                            .written
                            .saturating_add(u16::try_from(piece).unwrap_or(u16::MAX));
                        if op.written >= op.len {
                            op.phase = TxPhase::Result;
                            op.deadline =
                                Instant::now().saturating_add(Duration::from_millis(SEND_STEP_MS));
                            self.st.last_deadline = op.deadline;
                        }
                        piece
                    }
                    TxPhase::Result => {
                        self.st.tx = None;
                        self.st.next_write =
                            Instant::now().saturating_add(self.m.core.config.command_gap);
                        if self.m.core.shared.current().is_some() {
                            self.m.core.shared.complete();
                            self.m
                                .pool
                                .update(slot, &mut |s| s.tx_error = Some(Error::Timeout));
                            return Err(Error::Timeout);
                        }
                        return match self.m.core.shared.last_final() {
                            Some(Final::SendOk) => {
                                self.m.pool.tx_consume(slot, usize::from(op.len));
                                Ok(usize::from(op.len))
                            }
                            Some(Final::SendFail) => {
                                // The modem's send buffer is full: keep the bytes, try again later.
                                self.m.pool.update(slot, &mut |s| {
                                    s.send_failures = s.send_failures.saturating_add(1)
                                });
                                Err(Error::SendFail)
                            }
                            other => {
                                let err = other.and_then(Final::into_error).unwrap_or(Error::Error);
                                self.m.pool.update(slot, &mut |s| s.tx_error = Some(err));
                                Err(err)
                            }
                        };
                    }
                };
                // Recorded before the line is posted: an abandoned send resumes after it (the
                // runner writes a posted line whole).
                self.st.tx = Some(op);
                if let Err(e) = self.m.core.tx.write(Source::Line(post)).await {
                    self.m.core.shared.complete();
                    self.st.tx = None;
                    return Err(e);
                }
            }
        })
    }
}

/// Waits until `done` holds for the command bookkeeping (`Either::First`) or the modem
/// restarts after `boots` starts (`Either::Second`), checked in that order: what a `select` of
/// `WaitUntil` and the state's `Until` did, in 12 bytes, not 24 (both are stateless polls,
/// made again at each poll), inside the futures of the settling and of a socket send.
struct SharedOrRestart<'c> {
    core: &'c super::modem::Core,
    done: Done,
    boots: u32,
}

impl core::future::Future for SharedOrRestart<'_> {
    type Output = Either<(), ()>;

    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Either<(), ()>> {
        use core::task::Poll;
        let done = core::pin::pin!(self.core.shared.wait_until(self.done));
        if done.poll(cx).is_ready() {
            return Poll::Ready(Either::First(()));
        }
        let restarted = core::pin::pin!(
            self.core
                .state
                .until(crate::state::started_since, self.boots)
        );
        match restarted.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Either::Second(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The listener of an exchange nobody listens to (the sequence marker).
fn ignore_events(_: crate::at::expect::Event<'_>) {}

/// The wait of an exchange once its line is posted: for the runner's outcome of the write,
/// then for the answer's end, unless the modem restarts first (`Error::Rebooted`: `boots` is
/// the start count before the posting). A future of 12 bytes where an `async` block and a
/// `select` with the restart wait kept the core, the outcome future, its awaitee and the
/// restart wait (32): every command's future holds it. The waits are stateless polls made
/// again at each poll (the outcome's `poll_fn`, `WaitUntil`, the state's `Until`): once the
/// outcome was taken the mailbox is idle, and an idle mailbox's outcome is `Ok` (nobody else
/// posts while the channel is held), so the outcome needs no flag of its own. It holds the
/// listener's registration, which ends when it is dropped: when the exchange ended, timed out,
/// saw a restart, or was dropped itself (nothing awaits between the registration and this
/// future's making).
struct Answered<'c> {
    core: &'c super::modem::Core,
    /// The registration, ended by `Drop` below through `core` (a guard of its own would be
    /// another reference to the same cell: 4 bytes, and 8 with the alignment of the timer
    /// around this future).
    _listening: crate::at::expect::Listening<'c>,
    boots: u32,
}

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.core.shared.unlisten();
    }
}

impl core::future::Future for Answered<'_> {
    type Output = Result<(), Error>;

    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Result<(), Error>> {
        use core::task::Poll;
        let core = self.core;
        let outcome = core::pin::pin!(core.tx.outcome());
        let done = match outcome.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let answered = core::pin::pin!(core.shared.wait_until(|e, _| e.is_none()));
                answered.poll(cx).map(Ok)
            }
        };
        if done.is_ready() {
            return done;
        }
        let restarted = core::pin::pin!(core.state.until(crate::state::started_since, self.boots));
        match restarted.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::Rebooted)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use embassy_futures::select::{Either, select};

    use crate::asynch::{Apn, Config, Resources, new};
    use crate::command::general::Imei;
    use crate::command::pdp::Auth;

    fn holds(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_pin_or_an_apn_password_is_wiped_once_written() {
        let (rx, tx, handle) = quectel_mock::MockModem::new(quectel_mock::Model::Bg96)
            .pin(Some("8642"))
            .spawn();
        let res: &'static mut Resources = std::boxed::Box::leak(std::boxed::Box::default());
        let (runner, modem) = new(res, rx, tx, Config::default());
        let core = modem.core;
        let flow = async {
            modem.init().await.unwrap();
            modem.sim().unlock("8642").await.unwrap();
            assert!(!holds(&core.tx.buffers().await.line, b"8642"));
            let apn = Apn {
                username: "user",
                password: "pw-5678",
                auth: Auth::Chap,
                ..Apn::new("internet")
            };
            modem.data_call().configure(1, &apn).await.unwrap();
            assert!(!holds(&core.tx.buffers().await.line, b"pw-5678"));
            // A file upload (a private key, say) leaves the buffer too.
            modem
                .upload_file("k.pem", b"-----BEGIN PRIVATE KEY-----secret-9753")
                .await
                .unwrap();
            assert!(!holds(&core.tx.buffers().await.line, b"secret-9753"));
            // The check can fail: an ordinary command line stays in the buffer.
            modem.send(&Imei).await.unwrap();
            assert!(holds(&core.tx.buffers().await.line, b"AT+CGSN"));
        };
        match embassy_futures::block_on(select(runner.run(), flow)) {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
        // The secrets did reach the modem.
        let sent = handle.commands();
        assert!(sent.iter().any(|c| c.contains("8642")), "{sent:?}");
        assert!(sent.iter().any(|c| c.contains("pw-5678")), "{sent:?}");
    }
}
