//! `Debug` for the handles, runners and buffers: what identifies them (a socket's id and kind,
//! buffer sizes, the modem's state snapshot), never their contents. Kept apart from the types
//! so that it says in one place what a log may show; secrets (keys, passwords, PINs) are in
//! none of these types, and the configuration types that hold them (`TlsConfig`, `Apn`,
//! `MqttConfig`, `DeviceIdentity`, ...) redact them in their own `Debug`.
//!
//! (`defmt::Format` is not implemented for these: they are handles, not values to log.)

use core::fmt;

use crate::asynch;
use crate::blocking;

/// `Type { .. }`.
fn opaque(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    f.debug_struct(name).finish_non_exhaustive()
}

impl fmt::Debug for asynch::Modem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Modem")
            .field("model", &self.model())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<const N: usize, const S: usize, const R: usize> fmt::Debug for asynch::Resources<N, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("ingress", &N)
            .field("sockets", &S)
            .field("socket_ring", &R)
            .finish_non_exhaustive()
    }
}

impl<R, W, P> fmt::Debug for asynch::Runner<'_, R, W, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Runner")
    }
}

impl fmt::Debug for asynch::Sim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Sim")
    }
}

impl fmt::Debug for asynch::Network<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Network")
    }
}

impl fmt::Debug for asynch::DataCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "DataCall")
    }
}

impl fmt::Debug for asynch::Socket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id())
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for asynch::SocketReader<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "SocketReader")
    }
}

impl fmt::Debug for asynch::SocketWriter<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "SocketWriter")
    }
}

impl fmt::Debug for asynch::Resolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Resolver")
    }
}

impl fmt::Debug for asynch::TcpStack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "TcpStack")
    }
}

impl<R, W> fmt::Debug for blocking::Halves<R, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Halves")
    }
}

impl fmt::Debug for blocking::Modem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Modem")
    }
}

impl fmt::Debug for blocking::Sim<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Sim")
    }
}

impl fmt::Debug for blocking::Network<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "Network")
    }
}

impl fmt::Debug for blocking::DataCall<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        opaque(f, "DataCall")
    }
}

impl fmt::Debug for blocking::Socket<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "mqtt")]
mod mqtt {
    use core::fmt;

    use crate::mqtt::{Mqtt, MqttConnection, Outbox};

    impl<'c: 'buf, 'buf> fmt::Debug for Mqtt<'c, 'buf> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Mqtt")
                .field("failures", &self.failures())
                .finish_non_exhaustive()
        }
    }

    impl<const Q: usize, const L: usize> fmt::Debug for Outbox<Q, L> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Outbox")
                .field("queued", &self.len())
                .field("capacity", &Q)
                .field("max_payload", &L)
                .finish()
        }
    }

    impl<IO: minimq::Io<Error = crate::Error>> fmt::Debug for MqttConnection<'_, '_, IO> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("MqttConnection")
                .field("resumed_session", &self.resumed_session())
                .finish_non_exhaustive()
        }
    }
}

#[cfg(feature = "mcu-tls")]
mod tls {
    use core::fmt;

    use crate::tls::{McuTlsProvider, TlsBuffers, TlsClock};

    /// The provider holds the client's signing key: nothing of it is shown.
    impl<R, C: TlsClock> fmt::Debug for McuTlsProvider<'_, R, C> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("McuTlsProvider { .. }")
        }
    }

    impl<const R: usize, const W: usize> fmt::Debug for TlsBuffers<R, W> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TlsBuffers")
                .field("read", &R)
                .field("write", &W)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use crate::at::{Expect, Response};
    use crate::command::CmdWriter;

    #[test]
    fn command_lines_and_responses_do_not_show_their_text() {
        let mut buf = [0u8; 64];
        let mut w = CmdWriter::new(&mut buf);
        w.str("AT+CPIN=").unwrap();
        w.quoted("4711").unwrap();
        let shown = format!("{w:?}");
        assert!(!shown.contains("4711"), "{shown}");
        assert!(shown.contains("len: 14"), "{shown}");

        let body = b"\r\n+QICSGP: 1,\"internet\",\"user\",\"s3cret\",1\r\n\r\nOK\r\n";
        let shown = format!("{:?}", Response::new(body, Expect::prefixed(b"+QICSGP:")));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("Ok"), "{shown}");
    }
}
