//! Reading what was already received after the peer closed the connection.
//!
//! When the broker (or the network) closes a connection, the modem still holds what arrived
//! before the close, and the socket hands it out until it is drained (then `Ok(0)`). But an
//! MQTT client writes while it reads: the PUBACK for a QoS 1 message it has just delivered
//! fails on the closed socket, and a client that ends the connection on that failure drops
//! every complete packet still waiting behind it. The broker should send an unacknowledged
//! QoS 1 message again on the resumed session (MQTT 5, 4.4), but a broker that does not (seen
//! with mosquitto 2.0.11 in the soak) loses it for good.
//!
//! [`Drain`] sits under the client and turns the first write that fails because the peer
//! closed ([`ErrorKind::BrokenPipe`]) into a write that went nowhere, as a TCP stack does for
//! a half-closed connection; reads go on handing out what the transport still has. When the
//! transport has nothing more (end of stream, an error, or nothing within
//! [`DRAIN_TIMEOUT`]), the next read returns the write's error, and the connection ends with
//! it, as it did before, only after the last complete message was delivered. The PUBACKs
//! that went nowhere are not lost messages: the broker sends those messages again (DUP) on
//! the resumed session, at least once.
//!
//! Other write errors (a modem reboot, a deactivated context, a send that failed) end the
//! connection at once: after them the transport's reads may wait for data that never comes.

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Error as _, ErrorKind, ErrorType, Read, Write};

/// How long a read after the peer closed may wait for bytes the transport still holds (the
/// modem hands them out with `AT+QIRD`/`AT+QSSLRECV`, well within this). A transport that
/// stalls longer ends the connection with the write's error.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A transport that keeps reading after a write found the peer gone (see the module docs).
pub(crate) struct Drain<IO: ErrorType> {
    inner: IO,
    /// The error of the write that found the peer gone, until a read hands it to the client.
    broken: Option<IO::Error>,
}

impl<IO: ErrorType> Drain<IO> {
    pub(crate) fn new(inner: IO) -> Self {
        Self {
            inner,
            broken: None,
        }
    }

    /// Whether the error means the peer closed (reads may still hand out what came first):
    /// then it is kept for the reads, and the write counts as done.
    fn keep(&mut self, e: IO::Error) -> Result<(), IO::Error> {
        if e.kind() == ErrorKind::BrokenPipe {
            self.broken = Some(e);
            Ok(())
        } else {
            Err(e)
        }
    }
}

impl<IO: ErrorType> ErrorType for Drain<IO> {
    type Error = IO::Error;
}

impl<IO: Read + Write> Read for Drain<IO> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IO::Error> {
        if self.broken.is_none() {
            return self.inner.read(buf).await;
        }
        let r = with_timeout(DRAIN_TIMEOUT, self.inner.read(buf)).await;
        match (r, self.broken.take()) {
            (Ok(Ok(n)), e) if n > 0 || buf.is_empty() => {
                self.broken = e;
                Ok(n)
            }
            // Drained, failed or stalled: the connection ends with the write's error.
            (_, Some(e)) => Err(e),
            // Not reached: `broken` was set above and only this read takes it.
            (r, None) => r.unwrap_or(Ok(0)),
        }
    }
}

impl<IO: Read + Write> Write for Drain<IO> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IO::Error> {
        if self.broken.is_some() {
            return Ok(buf.len());
        }
        match self.inner.write(buf).await {
            Err(e) => self.keep(e).map(|()| buf.len()),
            ok => ok,
        }
    }

    async fn flush(&mut self) -> Result<(), IO::Error> {
        if self.broken.is_some() {
            return Ok(());
        }
        match self.inner.flush().await {
            Err(e) => self.keep(e),
            ok => ok,
        }
    }
}
