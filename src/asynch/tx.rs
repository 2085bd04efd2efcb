//! The transmit mailbox: how handles get bytes onto the UART without owning it.
//!
//! The runner owns the UART's transmit half (as embassy-net-ppp and cyw43 own their I/O). The
//! AT channel renders a command line (or stages a payload) into the mailbox's buffers and posts a
//! request; the runner writes those bytes and posts the outcome. Handles therefore carry no UART
//! type, and a request, once posted, is always written whole: a command future dropped while
//! its line is being written can no longer leave half a line on the wire.

use core::cell::Cell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::{Mutex, MutexGuard};
use embassy_sync::waitqueue::AtomicWaker;

use crate::Error;

/// Size of the command-line buffer: the longest command line, `\r` included, that the driver
/// can write (a longer one is refused with [`Error::Overflow`](crate::Error::Overflow), nothing
/// is cut). The driver's longest is a `AT+QICSGP` with a 100-byte APN (3GPP TS 23.003's
/// limit) and a user name and password of 127 bytes each (the modules' limits; longer ones are
/// refused with `InvalidArgument` before anything is written): 380 bytes. A host name in
/// `AT+QIDNSGIP` (253 bytes at most) or `AT+QIOPEN` (150) and the SSL context's one-line
/// configuration are shorter (`asynch::tx::tests::longest_lines_fit`). Payloads (a socket send, a
/// file upload) go through it too, in pieces of this size: the modem takes the announced byte
/// count in any number of UART writes, so the bytes on the wire are the same.
pub const CMD_BUF: usize = 384;
/// Largest payload of one send (`AT+QISEND` takes 1460 at most on every model).
pub const MAX_SEND: usize = 1460;

/// The bytes a request writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// `line[..n]`: a command line, or a piece of a payload.
    Line(usize),
    /// Bytes that never change (the AT channel's sequence marker): written as they are, and
    /// whatever the line buffer holds stays there.
    Static(&'static [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Idle,
    Posted(Source),
    Done(Result<(), Error>),
}

/// The buffer a request is written from. No payload is staged whole: a socket send is copied
/// from its transmit ring piece by piece (an earlier 1460-byte staging buffer held a second
/// copy of bytes that were in the ring already).
pub(crate) struct TxBuffers {
    pub(crate) line: [u8; CMD_BUF],
}

impl TxBuffers {
    fn bytes(&self, src: Source) -> &[u8] {
        match src {
            Source::Line(n) => self.line.get(..n).unwrap_or(&[]),
            Source::Static(bytes) => bytes,
        }
    }
}

/// One write request at a time between the AT channel (which holds the channel lock while it
/// posts) and the runner.
pub(crate) struct TxMailbox {
    buffers: Mutex<CriticalSectionRawMutex, TxBuffers>,
    request: BlockingMutex<CriticalSectionRawMutex, Cell<Request>>,
    runner: AtomicWaker,
    poster: AtomicWaker,
}

impl TxMailbox {
    pub(crate) const fn new() -> Self {
        Self {
            buffers: Mutex::new(TxBuffers { line: [0; CMD_BUF] }),
            request: BlockingMutex::new(Cell::new(Request::Idle)),
            runner: AtomicWaker::new(),
            poster: AtomicWaker::new(),
        }
    }

    fn get(&self) -> Request {
        self.request.lock(Cell::get)
    }

    fn set(&self, r: Request) {
        self.request.lock(|c| c.set(r));
    }

    /// Waits until no request is being written (an abandoned one finishes first), then gives
    /// access to the buffers to fill them.
    ///
    /// A plain `fn` returning an `async move` block, with [`Self::idle`] the `poll_fn` itself:
    /// the `async fn`s kept `self` twice and an `async fn`'s shell around the wait, in every
    /// command's future.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn buffers(
        &self,
    ) -> impl core::future::Future<Output = MutexGuard<'_, CriticalSectionRawMutex, TxBuffers>> + '_
    {
        async move {
            self.idle().await;
            self.buffers.lock().await
        }
    }

    /// Waits until the runner has written the last posted request (whoever posted it).
    pub(crate) fn idle(&self) -> impl core::future::Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if let Request::Posted(_) = self.get() {
                self.poster.register(cx.waker());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    /// Posts `src` (the caller filled the buffers and dropped its guard). The runner writes it
    /// even if the caller stops waiting.
    pub(crate) fn post(&self, src: Source) {
        self.set(Request::Posted(src));
        self.runner.wake();
    }

    /// Waits for the outcome of the request posted last.
    ///
    /// The `poll_fn` itself (4 bytes), not an `async fn` around it: the exchange keeps this
    /// future for the posting's life and then awaits it, so an `async fn`'s 12 bytes were
    /// kept twice in every command's future.
    pub(crate) fn outcome(&self) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        poll_fn(move |cx| match self.get() {
            Request::Posted(_) => {
                self.poster.register(cx.waker());
                Poll::Pending
            }
            Request::Done(r) => {
                self.set(Request::Idle);
                Poll::Ready(r)
            }
            Request::Idle => Poll::Ready(Ok(())),
        })
    }

    /// Posts `src` (when called) and returns the wait until it is written: every caller awaits
    /// it at once. A plain `fn`: an `async fn` would keep `self` and `src` in its future next to
    /// [`Self::outcome`]'s, and this future is part of every command's exchange.
    pub(crate) fn write(
        &self,
        src: Source,
    ) -> impl core::future::Future<Output = Result<(), Error>> + '_ {
        self.post(src);
        self.outcome()
    }

    /// Runner side: waits for a request, writes it with `write` (after `sleep` woke the
    /// module: DTR, when UART sleep is used), posts the outcome. Never returns.
    ///
    /// A plain `fn` returning an `async move` block: an `async fn` keeps its three arguments
    /// twice, in the runner task for the firmware's life.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn serve<'s, W: embedded_io_async::Write, S: super::sleep::SleepControl>(
        &'s self,
        tx: &'s mut W,
        sleep: &'s S,
    ) -> impl core::future::Future<Output = super::Never> + 's {
        async move {
            loop {
                poll_fn(|cx| {
                    self.runner.register(cx.waker());
                    match self.get() {
                        Request::Posted(_) => Poll::Ready(()),
                        _ => Poll::Pending,
                    }
                })
                .await;
                let result = {
                    let buffers = self.buffers.lock().await;
                    // A module that may be asleep (DTR would not change) could lose the bytes:
                    // the write fails rather than go out into the void. (The bytes are taken
                    // in the write's argument: a local slice was kept in the runner's future
                    // next to the write's.)
                    let r = if sleep.before_write().await {
                        // The request is read again here, not kept across the waits: it
                        // stays posted until the outcome below (a poster waits for an idle
                        // mailbox before it posts again).
                        let bytes = match self.get() {
                            Request::Posted(src) => buffers.bytes(src),
                            _ => &[],
                        };
                        match tx.write_all(bytes).await {
                            Ok(()) => tx.flush().await.map_err(|_| Error::Write),
                            Err(_) => Err(Error::Write),
                        }
                    } else {
                        warn!("DTR refused to change");
                        Err(Error::Write)
                    };
                    sleep.after_write();
                    r
                };
                if result.is_err() {
                    warn!("UART write failed");
                }
                self.set(Request::Done(result));
                self.poster.wake();
            }
        }
    }

    /// Runner side, for the blocking facade: writes a posted request with `write` right away,
    /// if there is one.
    pub(crate) fn serve_blocking(&self, write: &mut dyn FnMut(&[u8]) -> Result<(), Error>) {
        let Request::Posted(src) = self.get() else {
            return;
        };
        let Ok(buffers) = self.buffers.try_lock() else {
            // The poster still holds the buffers: it posted before releasing them; try again
            // on the next poll.
            return;
        };
        let result = write(buffers.bytes(src));
        drop(buffers);
        self.set(Request::Done(result));
        self.poster.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver's longest command lines fit the command-line buffer
    /// ([`CMD_BUF`]), `\r` included; one byte more of an argument is refused
    /// before anything is written.
    #[test]
    fn longest_lines_fit() {
        extern crate std;
        use crate::Error;
        use crate::command::dns::{MAX_HOST_NAME, ResolveHost};
        use crate::command::general::{Concat, LinePart};
        use crate::command::pdp::{Auth, ConfigureContext, ContextType, MAX_APN, MAX_CREDENTIAL};
        use crate::command::socket::{SslConfigure, SslOption};
        use crate::command::{CmdWriter, Command, DynCommand};
        use std::string::String;
        fn fits(c: &dyn DynCommand<()>) -> usize {
            let mut buf = [0u8; CMD_BUF];
            let mut w = CmdWriter::new(&mut buf);
            let (_, r) = c.dyn_render(&mut w);
            r.unwrap();
            w.raw(b"\r").unwrap();
            w.len()
        }
        let apn = "a".repeat(MAX_APN);
        let cred = "u".repeat(MAX_CREDENTIAL);
        let ctx = ConfigureContext {
            cid: 16,
            context_type: ContextType::Ipv4v6,
            apn: &apn,
            username: &cred,
            password: &cred,
            auth: Auth::PapOrChap,
        };
        assert_eq!(fits(&ctx), 380);
        let longer = String::from("a") + &apn;
        let mut buf = [0u8; 1024];
        for c in [
            ConfigureContext {
                apn: &longer,
                ..ctx
            },
            ConfigureContext {
                username: &(String::from("u") + &cred),
                ..ctx
            },
            ConfigureContext {
                password: &(String::from("u") + &cred),
                ..ctx
            },
        ] {
            assert_eq!(
                c.write(&mut CmdWriter::new(&mut buf)),
                Err(Error::InvalidArgument)
            );
        }
        let host = "h".repeat(MAX_HOST_NAME);
        assert!(
            fits(&ResolveHost {
                cid: 16,
                host: &host
            }) <= CMD_BUF
        );
        // The SSL context's one-line configuration as `configure_tls` writes it, with file
        // names as long as `tls_file_name` allows (24 bytes; `UFS:qkey5_0123abcd.pem` is 22).
        let name = "UFS:qkey5_0123abcd.pem..";
        let set = |option| SslConfigure { ctx: 5, option };
        let options = [
            set(SslOption::CaCert(name)),
            set(SslOption::ClientCert(name)),
            set(SslOption::ClientKey(name)),
            set(SslOption::SecLevel(2)),
            set(SslOption::Version(4)),
            set(SslOption::CipherSuite(0xffff)),
            set(SslOption::IgnoreLocalTime(true)),
            set(SslOption::NegotiateTime(300)),
            set(SslOption::Sni(true)),
        ];
        let parts: std::vec::Vec<&dyn LinePart> =
            options.iter().map(|o| o as &dyn LinePart).collect();
        assert!(fits(&Concat { parts: &parts }) <= CMD_BUF);
    }
}
