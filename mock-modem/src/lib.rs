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
//! UART pacing ([`MockModem::baud`], [`ModemHandle::set_baud`]) makes both
//! directions behave like a UART at that rate with [`UART_BITS_PER_BYTE`] (10)
//! bits per byte: modem output is written in ~2 ms batches, each no earlier
//! than the moment its last byte would have left a real UART, and each host
//! byte becomes visible to the modem only when its last bit would have
//! arrived. Both directions are scheduled against the time the line becomes
//! free (not per-byte sleeps), so long transfers keep the exact rate; a line
//! idle for more than 10 ms restarts its schedule. (The simulator is one
//! thread: while it writes a long response it does not take new host bytes,
//! which then arrive back to back afterwards.) Default: unpaced.
//!
//! The simulators run on any [`Link`]; [`StreamLink`] adapts a
//! `std::io::Read + Write` pair (TCP stream, PTY), which is what the
//! `quectel-mock` binary uses.
//!
//! # Behavioural mode
//!
//! ```
//! use std::time::Duration;
//! use quectel_mock::{MockModem, Model};
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
//! `+CGPADDR`, `+QIDNSCFG`, `+QIDNSGIP`, `+QIGETERROR`, `+QINISTAT`, `+QPINC`, `&W`, the
//! socket, SSL and file commands below, and a few configuration commands
//! accepted with `OK`); anything else answers `ERROR`.
//! A line may hold several commands, `AT+A=1;+B?;+C=2` (V.250 concatenation): they run
//! in order, their information lines come out in order, then one final result code, `OK`
//! or the error of the first command that failed (the ones after it are not run); such a
//! line is one entry of [`ModemHandle::commands`].
//! Lines that do not start with `AT` are echoed (if echo is on) and ignored;
//! over-long lines (> [`MAX_LINE`] bytes) answer `ERROR`.
//!
//! ## TCP sockets (buffer access mode)
//!
//! `AT+QIOPEN=<cid>,<id>,"TCP","<host>",<port>[,<local_port>[,<0|1>]]` answers `OK`
//! and later `+QIOPEN: <id>,<err>` after a real [`std::net::TcpStream`]
//! connect. Only loopback is ever contacted: `<host>` may be a 127.x/`::1`
//! literal, `localhost`, or a name of the mock's name table
//! ([`MockModem::host`]) that stands for a loopback address; any other name
//! gives 565 (DNS) and any other IP literal gives 566, both without touching
//! the network. Other codes: 563 id in
//! use (by a TCP *or* SSL socket), 561 context not active, 566 connection
//! refused. Access mode 2 (transparent), `"UDP"` and listeners answer `ERROR`. The error
//! (and a descriptive text) is kept for `AT+QIGETERROR`.
//!
//! Each socket has a reader thread filling a bounded receive buffer
//! ([`MockModem::socket_buffer`], default [`DEFAULT_SOCKET_BUFFER`]); a full
//! buffer stops reading from the connection (back-pressure). When data is
//! buffered and the socket is "armed" (initially, and after a `AT+QIRD` that
//! returned 0 bytes or emptied the buffer) the modem emits
//! `+QIURC: "recv",<id>` once and disarms. Peer close (EOF) gives
//! `+QIURC: "closed",<id>` after any buffered data has been announced; the
//! socket then stays in state 4, its data readable, until `AT+QICLOSE`.
//!
//! With access mode 1 (direct push; also for `AT+QSSLOPEN`) the data goes out inside the
//! URC as it arrives, at most 1500 bytes each: `\r\n+QIURC: "recv",<id>,<n>\r\n<n bytes>\r\n`
//! (`+QSSLURC` for SSL; the trailing CR LF is what FreeRTOS's BG96 port expects), never inside
//! a response, and nothing is left for `AT+QIRD`. There is no flow control: the reader
//! thread keeps reading the connection, as a real module keeps receiving.
//!
//! | Command | Answer |
//! |---|---|
//! | `AT+QISEND=<id>,<1-1460>` | `\r\n> `, then exactly `<len>` raw host bytes (not echoed), then `\r\nSEND OK\r\n` (`SEND FAIL` from the fault knob or a failed write). Socket not connected: `\r\nERROR\r\n` instead of the prompt. No payload byte for 5 s: `\r\nERROR\r\n`. A `\n` that arrived together with the command line is taken as its terminator, not payload. The Ctrl-Z form `AT+QISEND=<id>` answers `ERROR`. |
//! | `AT+QISEND=<id>,0` | `+QISEND: <total>,<acked>,<unacked>` (everything written counts as acked) |
//! | `AT+QIRD=<id>[,<1-1500>]` | `\r\n+QIRD: <n>\r\n<n bytes>\r\n\r\nOK\r\n`, or `\r\n+QIRD: 0\r\n\r\nOK\r\n`; unknown id, still opening, or closed (state 4) *and* empty: `ERROR` |
//! | `AT+QIRD=<id>,0` | `+QIRD: <total>,<read>,<unread>` (also in state 4) |
//! | `AT+QICLOSE=<id>[,<timeout>]` | `OK` (also for an unused id; `ERROR` for an SSL id) |
//! | `AT+QISTATE?` / `AT+QISTATE` / `=0,<cid>` / `=1,<id>` | `+QISTATE: <id>,"TCP","<ip>",<port>,<local_port>,<state>,<cid>,0,0,"uart1"` lines |
//!
//! `+QIURC: "pdpdeact",<cid>` injected with [`ModemHandle::inject_urc`] shuts
//! down every connection of that context; the sockets stay in state 4 (data
//! readable, no `closed` URC) until `AT+QICLOSE` or `AT+QIDEACT`.
//! `AT+QIDEACT`, `AT+CGACT=0` free the context's sockets at once; `AT+CFUN=0/4`,
//! reboots, `AT+QPOWD` and shutdown free all sockets (no URCs).
//!
//! ## Host names (`AT+QIDNSGIP`, `AT+QIDNSCFG`)
//!
//! The mock resolves names from a table the test sets, never through the
//! network:
//!
//! ```
//! use quectel_mock::{MockModem, Model};
//! let mock = MockModem::new(Model::Bg96)
//!     .host("device-api.test", &["127.0.0.1"])
//!     .host("dual.test", &["::1", "127.0.0.1"]);
//! # let _ = mock;
//! ```
//!
//! | Command | Answer |
//! |---|---|
//! | `AT+QIDNSGIP=<cid>,"<name>"` (name in the table, `localhost` or an IP literal) | `OK`, then `+QIURC: "dnsgip",0,<n>,600` and `n` lines `+QIURC: "dnsgip","<ip>"` |
//! | `AT+QIDNSGIP=<cid>,"<other name>"` | `OK`, then `+QIURC: "dnsgip",565,0,0` (565 kept for `AT+QIGETERROR`) |
//! | `AT+QIDNSGIP` on an inactive context / with bad arguments | `ERROR` (561 / 552) |
//! | `AT+QIDNSCFG=<cid>,"<pri>"[,"<sec>"]` | `OK`; stored for the context |
//! | `AT+QIDNSCFG=<cid>` (context active) | `+QIDNSCFG: <cid>,"<pri>","<sec>"`: the stored servers, else [`MockModem::dns`] |
//!
//! [`MockModem::dns_delay`] holds the results back for a while (to test
//! timeouts and cancelled lookups); a reboot drops results not yet sent.
//!
//! ## SSL sockets (real TLS with rustls)
//!
//! `AT+QSSLCFG="<option>",<ctx 0-5>,<value>` sets and `AT+QSSLCFG="<option>",<ctx>`
//! queries (`+QSSLCFG: "<option>",<ctx>,<value>`) the options `sslversion`
//! (0–4, default 4 = TLS 1.2 + 1.3; 3 = TLS 1.2 only; 0–2 are accepted but
//! the open then fails with 566, as rustls has no SSL 3/TLS 1.0/1.1),
//! `ciphersuite` (unquoted `0X….`, default `0XFFFF` = all; a quoted value is
//! `ERROR` like on a real BG96; a specific suite restricts rustls to it, and
//! one rustls lacks makes the open fail with 566), `seclevel` (0 no
//! verification — default, 1 verify the server against `cacert` and its name:
//! DNS name or IP SAN, 2 also present `clientcert`/`clientkey`), `cacert`,
//! `clientcert`, `clientkey` (file names in the simulated file system, PEM;
//! keys PKCS#8, SEC1 or PKCS#1), `ignorelocaltime` (default 1: expired / not yet
//! valid certificates are accepted; 0: checked against the host clock),
//! `negotiatetime` (10–300 s, default 300: handshake timeout) and `sni` (0/1;
//! default 0 on EC600N as seen on the LTE-Standard EG800K, 1 elsewhere; rustls
//! never sends SNI for IP addresses).
//!
//! `AT+QSSLOPEN=<cid>,<ctx>,<id>,"<host>",<port>[,<0|1>]` answers `OK`, then a
//! worker thread connects and handshakes, and the modem reports
//! `+QSSLOPEN: <id>,0` or `+QSSLOPEN: <id>,<err>`. Any TLS failure — handshake
//! error, verification failure, missing or unparsable certificate/key file —
//! is 566, with the detail (e.g. `ssl handshake failed: <rustls error>` or
//! `ssl: cacert file "ca.pem" not found`) as the `AT+QIGETERROR` text. After
//! the handshake the modem waits up to [`TLS_ALERT_WAIT`] (300 ms) for an alert,
//! so that a TLS 1.3 server refusing the client certificate shows as an open
//! failure; a later alert or close shows as `+QSSLURC: "closed",<id>`.
//! `AT+QSSLSEND=<id>,<len>` (and `=<id>,0` → `+QSSLSEND: <total>,<total>,0`),
//! `AT+QSSLRECV=<id>,<len>` (`+QSSLRECV: <n>` framed like `+QIRD`; `=<id>,0` →
//! `+QSSLRECV: <total>,<read>,<unread>`), `AT+QSSLCLOSE=<id>[,<timeout>]`
//! (sends close_notify), `AT+QSSLSTATE`, `AT+QSSLSTATE=<id>` and
//! `AT+QSSLSTATE=1,<id>` (`+QSSLSTATE: <id>,"SSLClient","<ip>",<port>,<local_port>,<state>,<cid>,<id>,0,"uart1",<ctx>`),
//! and the URCs `+QSSLURC: "recv",<id>` (same once-until-drained rule) and
//! `+QSSLURC: "closed",<id>` behave like their TCP counterparts.
//!
//! ## File system
//!
//! Names need the `UFS:` prefix on EC21/EC25/EG91/EC600N and must be bare on
//! BG96/BG95/BG77; the wrong form (or an empty, over-long or wildcard name)
//! is `+CME ERROR: 406`. Files survive reboots.
//!
//! | Command | Answer |
//! |---|---|
//! | `AT+QFUPL="<name>"[,<size>[,<timeout>[,<ackmode>]]]` | `\r\nCONNECT\r\n`, then exactly `<size>` (default 10240) raw bytes or fewer when input idles for `<timeout>` s (default 5), then `\r\n+QFUPL: <n>,<checksum>\r\n\r\nOK\r\n` ([`qfupl_checksum`], lower-case hex, unpadded; a partial file is kept). `<ackmode>` 1 sends `A` after every 1024 bytes. Existing name: 407; `<size>` > [`MAX_FILE_SIZE`]: 423; file system ([`MAX_FS_SIZE`], 64 files) full: 403; bad parameters: 425. `+++` is not special. |
//! | `AT+QFDEL="<name>"` | `OK` / `+CME ERROR: 405`; a pattern with `*` (e.g. `"*"`) deletes all matches |
//! | `AT+QFLST` / `AT+QFLST="<pattern>"` | `+QFLST: "<name>",<size>` lines (sorted by name; `*` wildcard; no match: just `OK`) |
//! | `AT+QFLDS` / `AT+QFLDS="UFS"` | `+QFLDS: <used>,<count>` / `+QFLDS: <free>,<total>` |
//!
//! [`ModemHandle::file`], [`ModemHandle::files`], [`ModemHandle::put_file`],
//! [`ModemHandle::remove_file`] and [`MockModem::file`] access the files directly.
//!
//! ## Fault knobs for sockets
//!
//! [`MockModem::send_fail`] / [`ModemHandle::fail_next_sends`] (next N sends
//! answer `SEND FAIL`, data not forwarded), [`MockModem::open_fail`] /
//! [`ModemHandle::set_open_fail`] (every open fails with the code),
//! [`ModemHandle::drop_socket`] (network drop: connection shut down,
//! `closed` URC, data stays readable), [`MockModem::drop_recv_urcs`] /
//! [`ModemHandle::drop_next_recv_urcs`] (lose N `recv` URCs; the data is still
//! there for a periodic `AT+QIRD`). [`ModemState::sockets`] lists the sockets.
//!
//! URCs are never emitted inside a response, a payload, or while the host is
//! in a data mode (after `> ` or `CONNECT`); they wait until it ends.
//!
//! ## PSM, virtual time and the charge ledger
//!
//! `AT+CPSMS=1,,,"<T3412>","<T3324>"` is acted on: after the radio tail ([`RRC_TAIL`]) plus the
//! granted active time without traffic the modem prints `PSM POWER DOWN`, closes its sockets
//! and drops every byte sent to it until [`ModemHandle::pwrkey`] (PWRKEY or PON_TRIG) or the
//! periodic TAU wakes it with `RDY`: echo, `AT+CMEE`, the URC settings and the SSL contexts are
//! the defaults again, registration and the PDP contexts are kept. Long sleeps take no wall
//! time: [`ModemHandle::advance`] skips virtual time at once, event by event.
//! [`ModemState::power`] reports PSM entries, wakes, UART bytes and a [`Ledger`] of virtual
//! time per [`PowerState`], which [`CurrentTable`] (per model, from the hardware design
//! manuals; the figures are marked UNCONFIRMED) turns into mAh per day.
//! `AT+QCFG="psm/urc",1` adds `+QPSMTIMER`, `+CEREG` with `<n>` = 4 the granted timers;
//! [`MockModem::psm_grant`] makes the network grant other timers than those asked for.
//!
//! ## Test peers
//!
//! The [`peers`] module has loopback servers for socket tests:
//! [`TcpEchoServer`] (optionally closing after N bytes), [`TlsEchoServer`]
//! (TLS 1.2/1.3, optional mandatory client certificate) and [`TestPki`] (a CA,
//! a server certificate for `localhost`/`127.0.0.1`, a client certificate,
//! an unrelated CA; P-256, PEM and DER). Their [`EchoHandle`] counts echoed
//! bytes and handshakes and stops (joining its threads) on `stop()` or drop.
//!
//! Threads: every socket has one worker thread; shutting the modem down
//! (dropping the host ends or [`ModemHandle::shutdown`]) closes the
//! connections and joins them.
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
//! use quectel_mock::Script;
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

/// The README's examples, compiled and run as doctests (the README is in the package).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod edrx;
mod link;
mod model;
mod modem;
pub mod peers;
mod pipe;
mod script;
mod sleep;
mod sockets;

pub use edrx::EdrxPaging;
pub use link::{
    Link, MAX_LINE, Pacing, Recv, StreamLink, UART_BITS_PER_BYTE, frame, frame_response,
};
pub use model::{Model, cme_text, ip_error_text};
pub use modem::{
    CurrentTable, Ledger, MAX_FILE_SIZE, MAX_FS_SIZE, MockModem, ModemHandle, ModemState,
    PowerReport, PowerState, RRC_TAIL, SimState, SocketInfo, ctze_urc, qfupl_checksum, reg,
};
pub use peers::{EchoHandle, TcpEchoServer, TestPki, TlsEchoServer};
pub use pipe::{
    HostRx, HostTx, ModemEnd, PIPE_CAPACITY, PipeError, TRANSCRIPT_CAPACITY, Wire, duplex,
};
pub use script::{
    DEFAULT_EXPECT_TIMEOUT, Script, ScriptError, ScriptHandle, ScriptStep, Step, parse_duration,
    unescape_quoted,
};
pub use sleep::{MockDtr, MockRi, UartSleepStats, UartSleepTiming};
pub use sockets::{DEFAULT_SOCKET_BUFFER, TLS_ALERT_WAIT};
