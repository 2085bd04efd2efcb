//! The runner: the only owner of the UART, both halves.

use atat::{AtatIngress as _, Ingress, UrcSubscription};
use embassy_futures::select::{Either3, select3};
use embedded_io_async::{Read, Write};

use super::Modem;
use crate::socket::SocketPool;

use crate::at::{Digester, ExpectCell, Urc};
use crate::socket::Phase;
use crate::state::StateCell;

/// URCs buffered between the ingress and the state (never more than this many per chunk).
pub(crate) const URC_CAPACITY: usize = 24;
/// Bytes handed to the ingress at a time, so that one chunk can never produce more URCs than
/// the channel holds.
const FEED_CHUNK: usize = 8;

/// The receive path: the ingress (our digester inside atat's ingress), the URC subscription and
/// what URCs update. No I/O type, so that the blocking facade shares it.
pub(crate) struct RunnerParts<'a, const N: usize> {
    pub(crate) ingress: Ingress<'a, Digester<'a>, Urc, N, URC_CAPACITY, 1>,
    pub(crate) urcs: UrcSubscription<'a, Urc, URC_CAPACITY, 1>,
    pub(crate) state: &'a StateCell,
    pub(crate) pool: &'a dyn SocketPool,
    /// The digester's counters (for [`RunnerParts::recheck_after_noise`]).
    pub(crate) shared: &'a ExpectCell,
    /// Corrupted lines seen so far (garbage, unknown URCs, discarded bytes).
    pub(crate) noise: u32,
}

impl<const N: usize> RunnerParts<'_, N> {
    fn drain_urcs(&mut self) {
        while let Some(urc) = self.urcs.try_next_message_pure() {
            match &urc {
                Urc::Ready => info!("modem (re)booted"),
                Urc::Unknown(_) => debug!("unknown URC"),
                _ => trace!("URC"),
            }
            self.state.apply(&urc);
            crate::socket::apply_urc(self.pool, &urc);
        }
    }

    /// Processes bytes received from the modem.
    pub(crate) fn ingest(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(FEED_CHUNK) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match self.ingress.try_write(rest) {
                    Ok(0) => {
                        // The digester always frees a full buffer, so this cannot happen.
                        error!("ingress buffer full; {} bytes dropped", rest.len());
                        rest = &[];
                    }
                    Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
                    Err(_) => {
                        // Cannot happen with the chunk size above (the bytes were committed).
                        error!("URC channel full");
                        rest = &[];
                    }
                }
                self.drain_urcs();
            }
        }
        self.recheck_after_noise();
    }

    /// A `recv` URC hit by a UART fault arrives as a corrupted line, and the modem announces
    /// nothing more until its buffer is read: when the digester saw corrupted input, mark every
    /// open socket for one read (a round trip each, only after a fault; no periodic traffic).
    fn recheck_after_noise(&mut self) {
        let s = self.shared.stats();
        let noise = s
            .garbage_lines
            .wrapping_add(s.unknown_urcs)
            .wrapping_add(s.discarded_bytes);
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
        let reader = async {
            let mut buf = [0u8; 64];
            loop {
                match rx.read(&mut buf).await {
                    Ok(0) => embassy_time::Timer::after_millis(10).await,
                    Ok(n) => parts.ingest(buf.get(..n).unwrap_or(&[])),
                    Err(_) => {
                        warn!("UART read error");
                        embassy_time::Timer::after_millis(10).await
                    }
                }
            }
        };
        match select3(reader, modem.core.tx.serve(&mut tx), modem.service()).await {
            Either3::First(never) => never,
            Either3::Second(never) => never,
            Either3::Third(never) => never,
        }
    }
}
