//! A std-only simulator of Quectel cellular modems (BG96, BG95-M3, BG77, EC21,
//! EC25, EG91, EC600N) *on the wire*, for testing the `quectel` driver.
//!
//! The simulator speaks bytes: it receives the host's command lines and answers
//! with exactly framed responses and URCs (`\r\n<text>\r\n`, an empty line before
//! the final result code, the echoed command line when echo is on). It does not
//! share any parsing code with the driver, so it can catch the driver's
//! misunderstandings.
//!
//! # Transport
//!
//! [`MockModem::spawn`] and [`Script::spawn`] return a [`HostRx`] (implements
//! `embedded_io::{Read, ReadReady}` and `embedded_io_async::Read`) and a
//! [`HostTx`] (implements `embedded_io::Write` and `embedded_io_async::Write`)
//! plus a handle. The modem runs in its own thread. Async reads register the
//! task's waker and are woken when bytes arrive, so any executor works. When the
//! modem side is gone, reads return `Ok(0)` and writes fail with
//! [`PipeError::BrokenPipe`]. [`Wire`] (from `handle.wire()`, `rx.wire()`,
//! `tx.wire()`) exposes byte counters and transcripts of both directions.
//!
//! Output pacing ([`Pacing`]) splits every write of the modem into chunks of at
//! most `chunk` bytes (down to 1) with an optional delay between chunks.
//!
//! The simulators run on any [`Link`]; [`StreamLink`] adapts a
//! `std::io::Read + Write` pair (TCP stream, PTY), which is what the
//! `mock-modem` binary uses.
//!
//! # Behavioural mode
//!
//! ```
//! use std::time::Duration;
//! use mock_modem::{MockModem, Model};
//!
//! let (mut rx, mut tx, modem) = MockModem::new(Model::Bg96).boot(None).spawn();
//! tx.send("AT\r");
//! let got = rx.read_until(b"OK\r\n", Duration::from_secs(2));
//! assert_eq!(got, b"AT\r\r\nOK\r\n");
//! modem.shutdown();
//! ```
//!
//! [`MockModem`] is a builder (SIM PIN/PUK/absent/busy/failure, registration
//! outcome and search time, PDP activation time/failure, identities, pacing,
//! fault knobs). The running modem keeps state: echo, CMEE, CFUN, SIM, the
//! registration URC modes, PDP contexts with addresses, the last TCP/IP error.
//! [`ModemHandle`] lets a test reboot it, inject URCs or raw bytes, change the
//! registration, pull the SIM, silence it, and inspect a [`ModemState`] snapshot.
//! Supported commands are listed on [`MockModem`]'s module (`AT`, `ATE0/1`,
//! `ATI`, `+CMEE`, `+CGMR`, `+QGMR`, `+CGSN`/`+GSN`, `+QCCID`, `+CIMI`, `+CPIN`,
//! `+CFUN`, `+QPOWD`, `+CREG`/`+CGREG`/`+CEREG`, `+COPS`, `+CSQ`, `+QCSQ`,
//! `+QNWINFO`, `+CGATT`, `+CGDCONT`, `+QICSGP`, `+QIACT`, `+QIDEACT`, `+CGACT`,
//! `+CGPADDR`, `+QIDNSCFG`, `+QIGETERROR`, `+QINISTAT`, `+QPINC`, `&W`, and a
//! few configuration commands accepted with `OK`); anything else answers `ERROR`.
//! Lines that do not start with `AT` are echoed (if echo is on) and ignored;
//! over-long lines (> [`MAX_LINE`] bytes) answer `ERROR`.
//!
//! # Scripted mode
//!
//! A script is a list of steps, one per line:
//!
//! | Step | Meaning |
//! |---|---|
//! | `# text` | comment (also after a step, when `#` follows whitespace outside quotes) |
//! | `> AT+CPIN?` | wait (up to the timeout) for the host's next command line and compare it without its terminator; a trailing `*` makes it a prefix match. Empty lines from the host are skipped. |
//! | `>raw "hello\x1A"` | wait for exactly these bytes (e.g. a payload after a `> ` prompt) |
//! | `< +CPIN: READY` | send a framed line `\r\n+CPIN: READY\r\n` |
//! | `<raw "\r\n> "` | send raw bytes; escapes `\r \n \t \0 \xHH \" \\` |
//! | `! +QIURC: "recv",0` | send a URC (framed like `<`; separate for readability) |
//! | `~ 50ms` | pause (`us`, `ms`, `s`; a bare number is milliseconds) |
//! | `frag 1` / `frag 4 2ms` | from now on write in chunks of N bytes (0 = whole) with an optional delay between chunks |
//! | `echo on` / `echo off` | echo the host's lines (`AT\r`) before the following replies (default off) |
//! | `timeout 2s` | how long following `>` steps wait (default 5 s) |
//! | `close` | drop the link; the host reads EOF |
//!
//! A mismatch is recorded and the script continues; a timeout records an
//! error and stops the script. Steps after the last `>` run right away. When
//! all steps have run the link stays open (host input is drained) until
//! [`ScriptHandle::finish`] (waits for the end, then reports) or
//! [`ScriptHandle::abort`] (reports remaining steps as unconsumed).
//!
//! ```
//! use std::time::Duration;
//! use mock_modem::Script;
//!
//! let script = Script::parse(r#"
//!     echo on
//!     > AT+CPIN?          # the driver asks for the SIM state
//!     < +CPIN: READY
//!     < OK
//!     ! +QIURC: "pdpdeact",1
//! "#).unwrap();
//! let (mut rx, mut tx, handle) = script.spawn();
//! tx.send("AT+CPIN?\r");
//! let got = rx.read_until(b"\"pdpdeact\",1\r\n", Duration::from_secs(2));
//! assert_eq!(got, b"AT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n\r\n+QIURC: \"pdpdeact\",1\r\n");
//! assert_eq!(handle.finish(), Ok(()));
//! ```
#![warn(missing_docs)]

mod link;
mod model;
mod modem;
mod pipe;
mod script;

pub use link::{Link, MAX_LINE, Pacing, Recv, StreamLink, frame, frame_response};
pub use model::{Model, cme_text, ip_error_text};
pub use modem::{MockModem, ModemHandle, ModemState, SimState, reg};
pub use pipe::{
    HostRx, HostTx, ModemEnd, PIPE_CAPACITY, PipeError, TRANSCRIPT_CAPACITY, Wire, duplex,
};
pub use script::{
    DEFAULT_EXPECT_TIMEOUT, Script, ScriptError, ScriptHandle, ScriptStep, Step, parse_duration,
    unescape_quoted,
};
