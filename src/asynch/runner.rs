//! The runner: the only owner of the UART, both halves.

use atat::{AtatIngress as _, Ingress};
use embassy_futures::select::{Either3, select3};
use embedded_io_async::{Read, Write};

use super::Modem;
use crate::socket::SocketPool;

use crate::at::{Digester, ExpectCell, Urc, UrcSink};
use crate::socket::Phase;
use crate::state::StateCell;

/// Applies URCs to the state and the socket slots the moment the digester reads them: no
/// bounded channel between the ingress and the state, so a reply with any number of URCs inside
/// it loses none, and received bytes are fed whole.
#[derive(Clone, Copy)]
pub(crate) struct ApplyUrcs<'a> {
    pub(crate) state: &'a StateCell,
    pub(crate) pool: &'a dyn SocketPool,
}

impl UrcSink for ApplyUrcs<'_> {
    const APPLIES: bool = true;

    fn urc(&self, line: &[u8]) -> bool {
        let Some(urc) = Urc::parse_line(line) else {
            // Not a well-formed URC (a bare line the digester took for one): nothing to apply.
            return false;
        };
        match &urc {
            Urc::Ready => info!("modem (re)booted"),
            Urc::Unknown(_) => debug!("unknown URC"),
            _ => trace!("URC"),
        }
        self.state.apply(&urc);
        crate::socket::apply_urc(self.pool, &urc);
        matches!(urc, Urc::Unknown(_))
    }
}

/// The digester as the runner runs it: URCs applied straight to the state.
pub(crate) type RunnerDigester<'a> = Digester<'a, ApplyUrcs<'a>>;

/// atat's ingress needs a URC type and a channel for it; the digester applies every URC itself
/// and never hands one to the ingress, so this one is never built.
#[derive(Clone)]
pub(crate) enum NoUrc {}

impl atat::AtatUrc for NoUrc {
    fn parse(_: &[u8]) -> Option<Self> {
        None
    }
}

/// The (unused) URC channel atat's ingress is built with: capacity 1, no subscriber.
pub(crate) type NoUrcChannel = atat::UrcChannel<NoUrc, 1, 1>;

/// The receive path: the ingress (our digester inside atat's ingress, which stores responses in
/// atat's response slot) and what URCs update. No I/O type, so that the blocking facade shares
/// it.
pub(crate) struct RunnerParts<'a, const N: usize> {
    pub(crate) ingress: Ingress<'a, RunnerDigester<'a>, NoUrc, N, 1, 1>,
    pub(crate) pool: &'a dyn SocketPool,
    /// The digester's counters (for [`RunnerParts::recheck_after_noise`]).
    pub(crate) shared: &'a ExpectCell,
    /// Corrupted lines seen so far (garbage, unknown URCs, discarded bytes).
    pub(crate) noise: u32,
    /// Received bytes in the ingress buffer not yet handed to the digester (they cannot
    /// complete anything yet; see `at::feed::completes`).
    pub(crate) pending: usize,
}

impl<const N: usize> RunnerParts<'_, N> {
    /// Processes bytes received from the modem: appends them to the ingress buffer, and hands
    /// them to the digester once they can complete a line or the prompt (a byte arriving alone
    /// costs a copy and a comparison).
    pub(crate) fn ingest(&mut self, mut bytes: &[u8]) {
        // A byte arriving alone that completes nothing: append it, nothing else. (The last free
        // byte is left to the loop below, which hands a full buffer over.)
        if let [b] = bytes
            && *b != b'\n'
            && *b != b'>'
        {
            let pending = self.pending;
            if let Some(slot) = self.ingress.write_buf().get_mut(pending..pending + 2) {
                slot[0] = *b;
                self.pending = pending + 1;
                return;
            }
        }
        while !bytes.is_empty() {
            let pending = self.pending;
            let buf = self.ingress.write_buf();
            let room = buf.len().saturating_sub(pending);
            if room == 0 {
                self.commit();
                continue;
            }
            let n = room.min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            let full = n == room;
            if let (Some(slot), [b]) = (buf.get_mut(pending), now) {
                *slot = *b;
            } else if let Some(dst) = buf.get_mut(pending..pending + n) {
                dst.copy_from_slice(now);
            }
            self.pending = pending + n;
            bytes = rest;
            if full || crate::at::feed::completes(now) {
                self.commit();
            }
        }
    }

    /// Hands the pending bytes to the digester (atat's ingress digests them: responses go to the
    /// response slot, URCs and payloads are applied by the digester).
    fn commit(&mut self) {
        let n = core::mem::take(&mut self.pending);
        if n > 0 && self.ingress.try_advance(n).is_err() {
            // The digester hands no URC to the ingress, whose channel could be full.
            error!("ingress refused {} bytes", n);
        }
        if self.ingress.write_buf().is_empty() {
            // Cannot happen: the digester frees a full buffer.
            self.ingress.clear();
        }
        self.recheck_after_noise();
    }

    /// Reads once from `rx` straight into the ingress buffer (no copy) and processes what came.
    async fn read_from<R: Read>(&mut self, rx: &mut R) {
        let pending = self.pending;
        let Some(buf) = self.ingress.write_buf().get_mut(pending..) else {
            return;
        };
        match rx.read(buf).await {
            Ok(0) => embassy_time::Timer::after_millis(10).await,
            Ok(n) => {
                self.pending = pending + n;
                self.commit();
            }
            Err(_) => {
                warn!("UART read error");
                embassy_time::Timer::after_millis(10).await
            }
        }
    }

    /// A `recv` URC hit by a UART fault arrives as a corrupted line, and the modem announces
    /// nothing more until its buffer is read: when the digester saw corrupted input, mark every
    /// open socket for one read (a round trip each, only after a fault; no periodic traffic).
    fn recheck_after_noise(&mut self) {
        let noise = self.shared.noise();
        if noise == self.noise {
            return;
        }
        self.noise = noise;
        for i in 0..self.pool.slots() {
            if self.pool.state(i).phase == Phase::Open {
                debug!(
                    "corrupted input: checking socket {} for unannounced data",
                    i
                );
                self.pool.update(i, &mut |s| s.recv_pending = true);
            }
        }
    }
}

/// Owns the UART (both halves): feeds received bytes through the digester, applies URCs to the
/// state, writes what the handles post, and moves socket data. Run it concurrently with the
/// handles, e.g. as its own task:
///
/// ```text
/// #[embassy_executor::task]
/// async fn modem_task(runner: quectel::asynch::Runner<'static, UartRx, UartTx>) -> ! {
///     runner.run().await
/// }
/// ```
pub struct Runner<'a, R, W, const N: usize = 2048> {
    parts: RunnerParts<'a, N>,
    rx: R,
    tx: W,
    modem: Modem<'a>,
}

impl<'a, R: Read, W: Write, const N: usize> Runner<'a, R, W, N> {
    pub(crate) fn new(parts: RunnerParts<'a, N>, rx: R, tx: W, modem: Modem<'a>) -> Self {
        Self {
            parts,
            rx,
            tx,
            modem,
        }
    }

    /// Processes bytes received from the modem, for firmware that reads the UART itself (from
    /// an interrupt or DMA) instead of letting [`Runner::run`] read `rx`.
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.parts.ingest(bytes)
    }

    /// Runs the driver forever: reads the UART (everything received goes through here), writes
    /// the commands the handles post, and moves socket data between the modem and the sockets'
    /// rings (`AT+QIRD` when data is announced, `AT+QISEND` when data is queued).
    pub async fn run(self) -> ! {
        let Self {
            mut parts,
            mut rx,
            mut tx,
            modem,
        } = self;
        // Each read lands straight in the ingress buffer, as much as it has room for.
        let reader = async {
            loop {
                parts.read_from(&mut rx).await;
            }
        };
        match select3(reader, modem.core.tx.serve(&mut tx), modem.service()).await {
            Either3::First(never) => never,
            Either3::Second(never) => never,
            Either3::Third(never) => never,
        }
    }
}
