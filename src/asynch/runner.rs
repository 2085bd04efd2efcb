//! The runner: the only owner of the UART, both halves.

use embassy_futures::select::{Either, Either4, select, select4};
use embedded_io_async::{Read, Write};

use super::Modem;
use super::pins::{ControlPins, NoPins};
use super::sleep::{NoSleep, SleepControl, UartSleep};
use crate::socket::SocketPool;

use crate::at::{Digester, ExpectCell, Urc, UrcSink};
use crate::socket::Phase;
use crate::state::StateCell;

/// Applies URCs to the state and the socket slots the moment the digester reads them: no
/// bounded channel between the ingress and the state, so a reply with any number of URCs inside
/// it loses none.
#[derive(Clone, Copy)]
pub(crate) struct ApplyUrcs<'a> {
    pub(crate) state: &'a StateCell,
    pub(crate) pool: &'a dyn SocketPool,
}

impl UrcSink for ApplyUrcs<'_> {
    #[inline(never)]
    fn urc(&mut self, line: &[u8], split: Option<crate::at::line::Split<'_>>) -> bool {
        // (Set for a `+CEREG` with fields after those its report reads.)
        let mut more = false;
        let parsed = Urc::parse_split_more(line, split, &mut more);
        // (By reference: the URC stays where it was built, no copy.)
        let Some(urc) = parsed.as_ref() else {
            // Not a well-formed URC (a bare line the digester took for one): nothing to apply.
            return true;
        };
        match urc {
            Urc::Ready => info!("modem (re)booted"),
            Urc::Unknown(_) => debug!("unknown URC"),
            _ => trace!("URC"),
        }
        // `+CEREG` with `<n>` = 4 carries the PSM timers the network granted, after the fields
        // its report reads (`more`: no comma count). (The split's text: the prefix is not
        // looked for again.)
        let grant = match split {
            Some(s) if more => crate::state::cereg_psm_grant_fields(s.text),
            _ => None,
        };
        // The state and the socket slots in one critical section, by one dispatch.
        crate::util::lock::with(|cs| self.state.apply_in(cs, urc, grant, Some(self.pool)));
        matches!(urc, Urc::Unknown(_))
    }
}

/// The digester as the runner runs it: URCs applied straight to the state.
pub(crate) type RunnerDigester<'a> = Digester<'a, ApplyUrcs<'a>>;

/// The receive path: the digester (with its line buffer) and what URCs update. No I/O type and
/// no buffer size in the type, so that the blocking facade shares it.
pub(crate) struct RunnerParts<'a> {
    pub(crate) digester: RunnerDigester<'a>,
    pub(crate) pool: &'a dyn SocketPool,
    /// The digester's counters (for [`RunnerParts::recheck_after_noise`]).
    pub(crate) shared: &'a ExpectCell,
    /// Corrupted lines seen so far (garbage, unknown URCs, discarded bytes).
    pub(crate) noise: u32,
}

impl RunnerParts<'_> {
    /// Processes bytes received from the modem: each line is dealt with when its `\n`
    /// arrives (a byte that completes nothing costs a copy and a comparison).
    #[inline]
    pub(crate) fn ingest(&mut self, bytes: &[u8]) {
        if !self.digester.feed_one(bytes) {
            self.ingest_rest(bytes);
        }
    }

    /// [`RunnerParts::ingest`] for what the one-byte path did not take.
    #[inline(never)]
    fn ingest_rest(&mut self, bytes: &[u8]) {
        if self.digester.feed_rest(bytes) {
            self.recheck_after_noise();
        }
    }

    /// Reads from `rx` straight into the digester's line buffer (no copy) and processes what
    /// came, forever; after an empty read or a read error it pauses for 10 ms.
    ///
    /// A plain `fn` returning one loop that keeps the two references once (an `async fn`
    /// read once per round, in a loop around it, kept them three times) and awaits the read
    /// and the pause from one place each: runner task 464 -> 440 B.
    #[allow(clippy::manual_async_fn)]
    fn read_forever<'s, R: Read>(
        &'s mut self,
        rx: &'s mut R,
    ) -> impl core::future::Future<Output = Never> + 's {
        async move {
            loop {
                let buf = self.digester.write_buf();
                let pause = match rx.read(buf).await {
                    Ok(0) => true,
                    Ok(n) => {
                        self.digester.advance(n);
                        self.recheck_after_noise();
                        false
                    }
                    Err(_) => {
                        warn!("UART read error");
                        true
                    }
                };
                if pause {
                    embassy_time::Timer::after_millis(10).await;
                }
            }
        }
    }

    /// A `recv` URC hit by a UART fault arrives as a corrupted line, and the modem announces
    /// nothing more until its buffer is read: when the digester saw corrupted input, mark every
    /// open socket for one read (a round trip each, only after a fault; no periodic traffic).
    #[inline]
    fn recheck_after_noise(&mut self) {
        // (Inlined: three loads and a comparison after every piece; the marking out of line.)
        let noise = self.shared.noise();
        if noise != self.noise {
            self.noise = noise;
            self.mark_open_sockets();
        }
    }

    /// [`RunnerParts::recheck_after_noise`] after corrupted input: every open socket read once.
    #[inline(never)]
    fn mark_open_sockets(&mut self) {
        for i in 0..self.pool.slots() {
            let s = self.pool.state(i);
            // (A socket in push mode holds nothing to read: what a lost header announced is
            // gone; see `Config::push_receive`.)
            if s.phase == Phase::Open && !s.push {
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
/// fn modem_task(
///     runner: quectel::asynch::Runner<'static, UartRx, UartTx>,
/// ) -> impl Future<Output = quectel::asynch::Never> {
///     runner.run()
/// }
/// ```
///
/// (A task `fn` returning [`Runner::run`]'s future keeps the runner once in the task's storage;
/// `async fn modem_task(runner: …) -> ! { runner.run().await }` works too, but keeps the runner
/// as its argument for the task's whole life as well, about 100 bytes more.)
pub struct Runner<'a, R, W, P = NoPins, S = NoSleep> {
    parts: RunnerParts<'a>,
    rx: R,
    tx: W,
    modem: Modem<'a>,
    pins: P,
    sleep: S,
}

impl<'a, R: Read, W: Write> Runner<'a, R, W> {
    pub(crate) fn new(parts: RunnerParts<'a>, rx: R, tx: W, modem: Modem<'a>) -> Self {
        Self {
            parts,
            rx,
            tx,
            modem,
            pins: NoPins,
            sleep: NoSleep,
        }
    }

    /// Gives the runner the module's control pins (PWRKEY, RESET_N), so that
    /// [`Modem::hard_reset`](super::Modem::hard_reset) (and the MQTT client's recovery, when the
    /// module stops answering) can reset it. The runner releases them when it starts.
    pub fn with_pins<P: ControlPins>(self, pins: P) -> Runner<'a, R, W, P> {
        self.modem
            .core
            .pins
            .store(pins.present(), core::sync::atomic::Ordering::Relaxed);
        Runner {
            parts: self.parts,
            rx: self.rx,
            tx: self.tx,
            modem: self.modem,
            pins,
            sleep: NoSleep,
        }
    }
}

impl<'a, R: Read, W: Write, P: ControlPins> Runner<'a, R, W, P> {
    /// Gives the runner the UART sleep pins (DTR, optionally RI): it wakes the module before
    /// every write and lets it sleep when the UART is idle (see [`UartSleep`]), so that
    /// [`Power::set_uart_sleep`](super::Power::set_uart_sleep) (`AT+QSCLK=1`) can be used.
    /// With control pins too, call [`Runner::with_pins`] first.
    pub fn with_uart_sleep<D, RI>(
        self,
        sleep: UartSleep<D, RI>,
    ) -> Runner<'a, R, W, P, UartSleep<D, RI>>
    where
        D: embedded_hal::digital::OutputPin,
        RI: embedded_hal_async::digital::Wait,
    {
        self.modem
            .core
            .sleep
            .store(true, core::sync::atomic::Ordering::Relaxed);
        Runner {
            parts: self.parts,
            rx: self.rx,
            tx: self.tx,
            modem: self.modem,
            pins: self.pins,
            sleep,
        }
    }
}

impl<'a, R: Read, W: Write, P: ControlPins, S: SleepControl> Runner<'a, R, W, P, S> {
    /// Processes bytes received from the modem, for firmware that reads the UART itself (from
    /// an interrupt or DMA) instead of letting [`Runner::run`] read `rx`. Any piece size works,
    /// one byte included (a byte that completes nothing costs a copy and a comparison); what a
    /// piece completes (information lines into the waiting command's result, URCs into the
    /// state, payloads into the socket rings) is dealt with before this returns.
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.parts.ingest(bytes)
    }

    /// Runs the driver forever: reads the UART (everything received goes through here), writes
    /// the commands the handles post, and moves socket data between the modem and the sockets'
    /// rings (`AT+QIRD` when data is announced, `AT+QISEND` when data is queued).
    ///
    /// A plain `fn` returning the future (an `async fn` would keep the runner twice in its
    /// future: as its argument and as the parts moved out of it). Its output is `!`
    /// ([`Never`]): a task `fn` returns it, as above (or `runner.run().await` in an
    /// `async fn … -> !` task).
    pub fn run(self) -> impl core::future::Future<Output = Never> {
        let Self {
            mut parts,
            mut rx,
            mut tx,
            modem,
            mut pins,
            sleep,
        } = self;
        async move {
            // With UART sleep, every write wakes the module first (DTR low), and DTR goes high
            // again when the UART is idle; it starts high.
            if !sleep.release() {
                warn!("DTR refused to change");
            }
            let idle = sleep.serve(|| modem.core.channel.try_lock().is_err());
            // Each read lands straight in the line buffer, as much as it has room for.
            let reader = parts.read_forever(&mut rx);
            // Resets through the control pins, when a handle asks for one. No pin is left
            // asserted by an earlier run.
            if !pins.release() {
                warn!("a control pin refused to change");
            }
            let resets = async {
                loop {
                    // A PSM wake is a PWRKEY pulse too (a later request replaces an earlier one).
                    let ok = if modem.core.reset.wait().await {
                        pins.reset().await
                    } else {
                        pins.wake().await
                    };
                    if !ok {
                        warn!("a control pin refused to change");
                    }
                }
            };
            let serve = select(modem.core.tx.serve(&mut tx, &sleep), idle);
            match select4(reader, serve, modem.service(), resets).await {
                Either4::First(never) => never,
                Either4::Second(Either::First(never) | Either::Second(never)) => never,
                Either4::Third(never) => never,
                Either4::Fourth(never) => never,
            }
        }
    }
}

mod never {
    /// Names a function type's output.
    pub trait HasOutput {
        type Output;
    }

    impl<O> HasOutput for fn() -> O {
        type Output = O;
    }
}

/// The never type `!`, by a name that stable Rust accepts where `!` is not (as a future's
/// output): the output of [`Runner::run`]'s future, which never completes.
pub type Never = <fn() -> ! as never::HasOutput>::Output;

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's URC sink (`ApplyUrcs`: one parse, the state, the lookups and the socket
    /// slots in one critical section) does what the URC's parts do one after the other
    /// (`StateCell::apply_as_parts`, then `socket::apply_urc`), the generation once per URC,
    /// on URCs in random order.
    #[test]
    fn the_runner_sink_applies_urcs_as_their_parts_do() {
        use crate::socket::{Kind, Phase, SocketPool, Sockets};
        let lines: [&[u8]; 34] = [
            b"RDY",
            b"APP RDY",
            b"PSM POWER DOWN",
            b"POWERED DOWN",
            b"SMS Ready",
            b"RING",
            b"+CFUN: 1",
            b"+CPIN: READY",
            b"+CPIN: SIM PIN",
            b"+QUSIM: 1",
            b"+QIND: SMS DONE",
            b"+QIND: \"csq\",20,99",
            b"+QIND: PB DONE",
            b"+CEREG: 1,\"1A2B\",\"01A2D102\",8",
            b"+CEREG: 5,\"D509\",\"80D413D\",9,,,\"00100010\",\"00000110\"",
            b"+CEREG: 2",
            b"+CREG: 5",
            b"+CGREG: 1,\"1A2B\",\"01A2D102\"",
            b"+QPSMTIMER: 3600,60",
            b"+QIURC: \"recv\",0",
            b"+QIURC: \"recv\",2",
            b"+QIURC: \"closed\",1",
            b"+QIURC: \"closed\",3",
            b"+QIURC: \"pdpdeact\",1",
            b"+QIURC: \"dnsgip\",0,1,600",
            b"+QIURC: \"dnsgip\",\"10.0.0.1\"",
            b"+QSSLURC: \"recv\",1",
            b"+QSSLURC: \"closed\",2",
            b"+QIOPEN: 1,0",
            b"+QIOPEN: 2,566",
            b"+QSSLOPEN: 0,0",
            b"+CTZV: -20",
            b"+FOO: 1",
            b"+QIURC: \"recv\",x",
        ];
        let setup = |pool: &dyn SocketPool| {
            for (cid, phase) in [
                (1, Phase::Open),
                (1, Phase::Opening),
                (2, Phase::Open),
                (1, Phase::Abandoned),
            ] {
                let i = pool.claim(Kind::Tcp, cid).unwrap();
                pool.update(i, &mut |s| s.phase = phase);
            }
        };
        let mut x = 0x5eed_0a11u32;
        for _round in 0..40 {
            let (a, b) = (StateCell::new(), StateCell::new());
            let (pa, pb) = (Sockets::<4, 16>::new(), Sockets::<4, 16>::new());
            setup(&pa);
            setup(&pb);
            for cell in [&a, &b] {
                cell.update_dns(|d| {
                    d.busy = true;
                    d.issued = 2;
                });
            }
            let mut sink = ApplyUrcs {
                state: &a,
                pool: &pa,
            };
            for _ in 0..30 {
                let line = lines[crate::at::xorshift32(&mut x) as usize % lines.len()];
                let split = crate::at::line::split_prefix(line);
                let before = a.get().generation;
                let noise = sink.urc(line, split);
                let urc = Urc::parse_line(line);
                assert_eq!(
                    noise,
                    !matches!(urc, Some(ref u) if !matches!(u, Urc::Unknown(_)))
                );
                if let Some(urc) = urc {
                    b.apply_as_parts(&urc, line);
                    crate::socket::apply_urc(&pb, &urc);
                    assert_eq!(a.get().generation, before.wrapping_add(1), "{line:?}");
                }
                assert_eq!(a.get(), b.get(), "{line:?}");
                assert_eq!(a.dns(), b.dns(), "{line:?}");
                for i in 0..4 {
                    assert_eq!(pa.state(i), pb.state(i), "{line:?} slot {i}");
                }
                assert_eq!(pa.work(), pb.work(), "{line:?}");
            }
        }
    }
}
