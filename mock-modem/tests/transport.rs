//! The in-memory transport under blocking and async readers.

use std::time::Duration;

use embedded_io::{Read as _, ReadReady as _, Write as _};
use quectel_mock::{MockModem, Model, PipeError, Script};

#[test]
fn blocking_read_and_ready() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96).boot(None).spawn();
    assert!(!rx.read_ready().unwrap());
    tx.write_all(b"AT\r").unwrap();
    tx.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4];
    while !got.ends_with(b"OK\r\n") {
        let n = rx.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"AT\r\r\nOK\r\n");
    h.shutdown();
    // Modem gone: EOF for reads, BrokenPipe for writes.
    assert_eq!(rx.read(&mut buf).unwrap(), 0);
    assert!(rx.read_ready().unwrap());
    assert_eq!(tx.write(b"AT\r"), Err(PipeError::BrokenPipe));
    assert_eq!(
        embedded_io::Error::kind(&PipeError::BrokenPipe),
        embedded_io::ErrorKind::BrokenPipe
    );
}

#[test]
fn async_read_is_woken_under_block_on() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .boot(None)
        .chunk(1, Duration::from_millis(1))
        .spawn();
    let got = embassy_futures::block_on(async {
        embedded_io_async::Write::write_all(&mut tx, b"ATI\r")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"OK\r\n") {
            let n = embedded_io_async::Read::read(&mut rx, &mut buf)
                .await
                .unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    assert_eq!(
        got,
        b"ATI\r\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn async_read_sees_eof_after_close_step() {
    let (mut rx, _tx, h) = Script::parse("< HELLO\nclose").unwrap().spawn();
    let got = embassy_futures::block_on(async {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = embedded_io_async::Read::read(&mut rx, &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    assert_eq!(got, b"\r\nHELLO\r\n");
    assert_eq!(h.finish(), Ok(()));
}

/// A minimal executor that parks the thread until woken: proves the reader
/// registers its waker (a missed wake would hang until the test timeout).
fn park_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread, AtomicUsize);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicUsize::new(0)));
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            assert!(unpark.1.load(Ordering::SeqCst) > 0, "never woken");
            return v;
        }
        // Park without a timeout-driven re-poll: only a wake gets us further.
        std::thread::park();
        assert!(
            std::time::Instant::now() < deadline,
            "stuck: reader was not woken"
        );
    }
}

#[test]
fn async_read_registers_waker() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .boot(None)
        .chunk(3, Duration::from_millis(2))
        .spawn();
    let got = park_block_on(async {
        embedded_io_async::Write::write_all(&mut tx, b"AT+CGSN\r")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"OK\r\n") {
            let n = embedded_io_async::Read::read(&mut rx, &mut buf)
                .await
                .unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    assert_eq!(got, b"AT+CGSN\r\r\n861234567890123\r\n\r\nOK\r\n");
    h.shutdown();
}
