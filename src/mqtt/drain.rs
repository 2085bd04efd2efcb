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
//! So a write (or flush) that fails because the peer closed ([`ErrorKind::BrokenPipe`]: the
//! socket's `Error::ConnectionClosed`, MCU TLS's `TlsError::Closed`) counts as a write that
//! went nowhere, as a TCP stack does on a half-closed connection, and the error is kept;
//! reads go on handing out what the transport still has. When the transport has nothing more
//! (end of stream, or an error), the read returns the write's error and the connection ends
//! with it, as it did before, only after the last complete message was delivered. The
//! PUBACKs that went nowhere are not lost messages: the broker sends those messages again
//! (DUP) on the resumed session, at least once. A QoS 1 publish in that window counts as in
//! flight (the resumed session or the `Outbox` sends it again); a QoS 0 one is lost, as on
//! any link that breaks after the write.
//!
//! This relies on reads that end once the transport is drained. The modem socket's do after
//! the module reported the connection `closed` (they hand out what it still holds, then the
//! end of the stream), which is when its writes fail with `ConnectionClosed`. Its writes also
//! fail so once when the module answers a send with `ERROR` instead of the prompt (the
//! manuals' "not connected"); the socket stays open then (the bytes stay queued and go out if
//! the connection still works, `tests/faults.rs`), reads go on as before, and the `closed`
//! URC that usually follows ends them. Should none come, the MQTT keep-alive bounds the wait
//! (its PINGREQ goes nowhere, the PINGRESP does not come), and so does the acknowledgement
//! timeout while a QoS 1 message waits. Other write errors (a modem reboot, a deactivated
//! context, a send that failed) end the connection at once.
//!
//! MQTT 5's `Guard` (which sits between minimq and the transport anyway) does this with the
//! two functions below; MQTT 3.1.1's client gets [`Drain`], a transport wrapper doing the same.

use embedded_io_async::ErrorKind;
#[cfg(feature = "mqtt311")]
use embedded_io_async::{ErrorType, Read, Write};

/// A write's (or flush's) outcome, with a failure because the peer closed kept in `broken`
/// and turned into `done` (a write of every byte, that went nowhere).
pub(crate) fn written<T, E: embedded_io_async::Error>(
    r: Result<T, E>,
    broken: &mut Option<E>,
    done: T,
) -> Result<T, E> {
    match r {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            *broken = Some(e);
            Ok(done)
        }
        r => r,
    }
}

/// A read's outcome: as it came while every write went through (`broken` empty); once a write
/// found the peer gone (`broken` holds its error), the bytes it got or, when the transport has
/// nothing more, that write's error.
pub(crate) fn drained<E>(
    r: Result<usize, E>,
    broken: &mut Option<E>,
    empty: bool,
) -> Result<usize, E> {
    match r {
        Ok(n) if n > 0 || empty => Ok(n),
        // Drained (or failed): the connection ends with the write's error.
        r => match broken.take() {
            Some(e) => Err(e),
            None => r,
        },
    }
}

/// A transport that keeps reading after a write found the peer gone (see the module docs):
/// the MQTT 3.1.1 client's.
#[cfg(feature = "mqtt311")]
pub(crate) struct Drain<IO: ErrorType> {
    inner: IO,
    /// The error of the write that found the peer gone, until a read hands it to the client.
    broken: Option<IO::Error>,
}

#[cfg(feature = "mqtt311")]
impl<IO: ErrorType> Drain<IO> {
    pub(crate) fn new(inner: IO) -> Self {
        Self {
            inner,
            broken: None,
        }
    }
}

#[cfg(feature = "mqtt311")]
impl<IO: ErrorType> ErrorType for Drain<IO> {
    type Error = IO::Error;
}

#[cfg(feature = "mqtt311")]
impl<IO: Read + Write> Read for Drain<IO> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IO::Error> {
        let empty = buf.is_empty();
        let r = self.inner.read(buf).await;
        drained(r, &mut self.broken, empty)
    }
}

#[cfg(feature = "mqtt311")]
impl<IO: Read + Write> Write for Drain<IO> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IO::Error> {
        let r = self.inner.write(buf).await;
        written(r, &mut self.broken, buf.len())
    }

    async fn flush(&mut self) -> Result<(), IO::Error> {
        let r = self.inner.flush().await;
        written(r, &mut self.broken, ())
    }
}
