//! The runner: the only owner of the UART's receive side.

use atat::{AtatIngress as _, Ingress, UrcSubscription};
use embedded_io_async::{Read, Write};

use super::Modem;
use crate::socket::SocketPool;

use crate::at::{Digester, Urc};
use crate::state::StateCell;

/// URCs buffered between the ingress and the state (never more than this many per chunk).
pub(crate) const URC_CAPACITY: usize = 24;
/// Bytes handed to the ingress at a time, so that one chunk can never produce more URCs than
/// the channel holds.
const FEED_CHUNK: usize = 8;

/// Feeds received bytes through the digester and applies URCs to the state.
pub struct Runner<'a, const N: usize> {
    ingress: Ingress<'a, Digester<'a>, Urc, N, URC_CAPACITY, 1>,
    urcs: UrcSubscription<'a, Urc, URC_CAPACITY, 1>,
    state: &'a StateCell,
    pool: &'a dyn SocketPool,
}

impl<'a, const N: usize> Runner<'a, N> {
    pub(crate) fn new(
        ingress: Ingress<'a, Digester<'a>, Urc, N, URC_CAPACITY, 1>,
        urcs: UrcSubscription<'a, Urc, URC_CAPACITY, 1>,
        state: &'a StateCell,
        pool: &'a dyn SocketPool,
    ) -> Self {
        Self {
            ingress,
            urcs,
            state,
            pool,
        }
    }

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

    /// Processes bytes received from the modem (from a read loop, an interrupt or DMA).
    pub fn ingest(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(FEED_CHUNK) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match self.ingress.try_write(rest) {
                    Ok(0) => {
                        // The digester always frees a full buffer, so this cannot happen.
                        error!("ingress buffer full; {} bytes dropped", rest.len());
                        rest = &[];
                    }
                    Ok(n) => rest = &rest[n..],
                    Err(_) => {
                        // Cannot happen with the chunk size above (the bytes were committed).
                        error!("URC channel full");
                        rest = &[];
                    }
                }
                self.drain_urcs();
            }
        }
    }

    /// Runs the driver forever: reads the UART (everything received goes through here), and
    /// moves socket data between the modem and the sockets' rings (`AT+QIRD` when data is
    /// announced, `AT+QISEND` when data is queued). Run it concurrently with the handles, e.g.
    /// as its own task, with the same `modem`.
    pub async fn run<R: Read, W: Write>(self, rx: R, modem: &Modem<'a, W, N>) -> ! {
        match embassy_futures::select::select(self.read_loop(rx), modem.service()).await {
            embassy_futures::select::Either::First(never) => never,
            embassy_futures::select::Either::Second(never) => never,
        }
    }

    async fn read_loop<R: Read>(mut self, mut rx: R) -> ! {
        let mut buf = [0u8; 64];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) => embassy_time::Timer::after_millis(10).await,
                Ok(n) => self.ingest(&buf[..n]),
                Err(_) => {
                    warn!("UART read error");
                    embassy_time::Timer::after_millis(10).await
                }
            }
        }
    }
}
