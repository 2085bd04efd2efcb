//! The AT channel: one command in flight, typed results, stale responses never delivered to the
//! wrong command.

use atat::AtatCmd;
use atat::asynch::AtatClient as _;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_io_async::Write;

use crate::Error;
use crate::at::{Expect, ExpectCell};
use crate::command::{CmdWriter, Command, complete};
use crate::state::StateCell;

/// Extra time allowed for writing a command on top of its response time.
const WRITE_ALLOWANCE_MS: u64 = 1_000;

struct Wrapped<'c, C: Command> {
    cmd: &'c C,
}

/// The typed result travels through atat as a successful "response".
pub(crate) struct Outcome<T>(pub Result<T, Error>);

impl<T> atat::AtatResp for Outcome<T> {}

impl<C: Command> AtatCmd for Wrapped<'_, C> {
    type Response = Outcome<C::Response>;
    const MAX_TIMEOUT_MS: u32 = C::TIMEOUT_MS;

    fn write(&self, _buf: &mut [u8]) -> usize {
        // The line is written by `send_with` from the channel's own buffer.
        0
    }

    fn parse(
        &self,
        resp: Result<&[u8], atat::InternalError>,
    ) -> Result<Self::Response, atat::Error> {
        Ok(Outcome(complete(self.cmd, resp)))
    }
}

/// Sends typed commands over atat's client.
pub struct Channel<'a, W: Write, const N: usize> {
    client: atat::asynch::Client<'a, W, N>,
    shared: &'a ExpectCell,
    state: &'a StateCell,
    line: &'a mut [u8],
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
        line: &'a mut [u8],
    ) -> Self {
        Self {
            client,
            shared,
            state,
            line,
            last_deadline: Instant::from_ticks(0),
            partial: false,
        }
    }

    /// If an earlier command was abandoned (its future dropped) before its final result code
    /// arrived, waits until that result code arrives, its deadline passes, or the modem reboots,
    /// so that it cannot be taken for the answer to the next command.
    async fn settle(&mut self) {
        if self.partial {
            // A command line was cut off mid-write: end it, so that the modem answers it (with
            // ERROR, most likely) and the next command starts on a fresh line.
            self.shared.begin(Expect::NONE);
            self.last_deadline = Instant::now() + Duration::from_millis(WRITE_ALLOWANCE_MS + 300);
            let w = self.client.inner();
            if w.write_all(b"\r").await.is_ok() && w.flush().await.is_ok() {
                self.partial = false;
            }
        }
        let boots = self.state.get().boots;
        while self.shared.current().is_some() {
            if Instant::now() >= self.last_deadline || self.state.get().boots != boots {
                debug!("abandoning the answer of an earlier command");
                self.shared.complete();
                break;
            }
            Timer::after(Duration::from_millis(5)).await;
        }
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
        self.settle().await;
        let boots = self.state.get().boots;
        let timeout = u64::from(C::TIMEOUT_MS) + WRITE_ALLOWANCE_MS;
        self.last_deadline = Instant::now() + Duration::from_millis(timeout);
        let Self {
            client,
            shared,
            line,
            partial,
            ..
        } = self;
        let shared: &ExpectCell = shared;
        let line = &line[..len];
        let wrapped = Wrapped { cmd };
        // The command counts as in flight from its first written byte: dropped before that
        // (e.g. during the pause between commands), nothing is left to wait for.
        let exchange = with_timeout(
            Duration::from_millis(timeout),
            client.send_with(&wrapped, async |w: &mut W| {
                shared.begin(C::EXPECT);
                *partial = true;
                let r = w.write_all(line).await;
                *partial = false;
                r
            }),
        );
        let rebooted = self.state.wait_for(|s| (s.boots != boots).then_some(()));
        match select(exchange, rebooted).await {
            Either::First(Ok(Ok(Outcome(result)))) => result,
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

    /// The shared state.
    pub fn state(&self) -> &'a StateCell {
        self.state
    }

    /// The command bookkeeping shared with the digester.
    pub fn shared(&self) -> &'a ExpectCell {
        self.shared
    }
}
