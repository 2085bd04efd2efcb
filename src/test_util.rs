//! Test-only helpers shared by the unit tests of several modules.

extern crate std;

use std::vec::Vec;

use embedded_io_async::{ErrorType, Read, Write};

use crate::Error;

/// A transport that hands out `chunk` bytes at a time and is pending every other poll; writes
/// are swallowed. Models a slow UART under a reader that may be dropped at any await.
pub(crate) struct Trickle {
    data: Vec<u8>,
    /// How many bytes were read so far.
    pub(crate) pos: usize,
    chunk: usize,
    ready: bool,
}

impl Trickle {
    /// Serves `data`, `chunk` bytes per read.
    pub(crate) fn new(data: Vec<u8>, chunk: usize) -> Self {
        Self {
            data,
            pos: 0,
            chunk,
            ready: false,
        }
    }
}

impl ErrorType for Trickle {
    type Error = Error;
}

impl Read for Trickle {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        core::future::poll_fn(|cx| {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return core::task::Poll::Pending;
            }
            let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            core::task::Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for Trickle {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        Ok(buf.len())
    }
    async fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Polls `fut` once with a no-op waker.
pub(crate) fn poll_once<F: core::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = core::pin::pin!(fut);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        core::task::Poll::Ready(v) => Some(v),
        core::task::Poll::Pending => None,
    }
}
