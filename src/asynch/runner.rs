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
    /// Received bytes not yet handed to the digester (they cannot complete anything yet; see
    /// [`RunnerParts::ingest`]).
    pub(crate) stage: [u8; STAGE],
    /// How many bytes of `stage` are used.
    pub(crate) staged: u8,
}

/// Bytes [`RunnerParts::ingest`] may stage before it hands them to the digester.
pub(crate) const STAGE: usize = 16;

impl<const N: usize> RunnerParts<'_, N> {
    /// Processes bytes received from the modem. A piece that cannot complete a line or the
    /// prompt (see `at::feed::completes`), e.g. a byte arriving alone from an interrupt, is
    /// only staged: it costs a copy and a comparison, and goes to the digester with the next
    /// piece that can.
    #[inline]
    pub(crate) fn ingest(&mut self, bytes: &[u8]) {
        let staged = usize::from(self.staged);
        if let [b] = bytes
            && *b != b'\n'
            && *b != b'>'
            && let Some(slot) = self.stage.get_mut(staged)
        {
            *slot = *b;
            self.staged += 1;
            return;
        }
        self.ingest_slow(bytes);
    }

    #[inline(never)]
    fn ingest_slow(&mut self, bytes: &[u8]) {
        let staged = usize::from(self.staged);
        if staged + bytes.len() <= STAGE && !crate::at::feed::completes(bytes) {
            if let Some(dst) = self.stage.get_mut(staged..staged + bytes.len()) {
                dst.copy_from_slice(bytes);
                self.staged += bytes.len() as u8;
            }
            return;
        }
        self.hand_over(bytes);
    }

    /// Hands the staged bytes, then `bytes`, to the digester.
    fn hand_over(&mut self, bytes: &[u8]) {
        let staged = usize::from(self.staged);
        // The staged bytes, then `bytes`, into the ingress buffer, as much as it has room for
        // at a time; the digester runs once per batch.
        let mut stage_from = 0;
        let mut rest = bytes;
        loop {
            let stage = self.stage.get(stage_from..staged).unwrap_or(&[]);
            if stage.is_empty() && rest.is_empty() {
                break;
            }
            let buf = self.ingress.write_buf();
            if buf.is_empty() {
                // Cannot happen: the digester frees a full buffer.
                self.ingress.clear();
                continue;
            }
            let a = stage.len().min(buf.len());
            let b = rest.len().min(buf.len() - a);
            if let (Some(d1), Some(s1)) = (buf.get_mut(..a), stage.get(..a)) {
                d1.copy_from_slice(s1);
            }
            if let (Some(d2), Some(s2)) = (buf.get_mut(a..a + b), rest.get(..b)) {
                d2.copy_from_slice(s2);
            }
            stage_from += a;
            rest = rest.get(b..).unwrap_or(&[]);
            if self.ingress.try_advance(a + b).is_err() {
                // The digester hands no URC to the ingress, whose channel could be full.
                error!("ingress refused {} bytes", a + b);
            }
        }
        self.staged = 0;
        self.recheck_after_noise();
    }

    /// Reads once from `rx` straight into the ingress buffer (no copy) and processes what came.
    async fn read_from<R: Read>(&mut self, rx: &mut R) {
        if self.staged > 0 {
            // Bytes `Runner::ingest` staged (never both ways in practice): hand them over first.
            self.hand_over(&[]);
        }
        let buf = self.ingress.write_buf();
        if buf.is_empty() {
            // Cannot happen: the digester frees a full buffer.
            self.ingress.clear();
            return;
        }
        match rx.read(buf).await {
            Ok(0) => embassy_time::Timer::after_millis(10).await,
            Ok(n) => {
                if self.ingress.try_advance(n).is_err() {
                    error!("ingress refused {} bytes", n);
                }
                self.recheck_after_noise();
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
    /// an interrupt or DMA) instead of letting [`Runner::run`] read `rx`. Any piece size works,
    /// one byte included: a piece that cannot complete a line or the `> ` prompt (no `\n`, no
    /// `>`) is only staged (up to 16 bytes) and digested with the next piece, so a byte costs a
    /// copy and a comparison; what a piece completes (responses, URCs into the state, payloads
    /// into the socket rings) is dealt with before this returns.
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
