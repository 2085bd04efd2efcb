//! Byte-level tests of the digester: real-log quirks, binary payloads, noise, fragmentation,
//! replies longer than the line buffer.

extern crate std;
use std::cell::RefCell;
use std::string::String;
use std::vec::Vec;

use super::expect::{Event, Expect, ExpectCell};
use super::feed::UrcFn;
use super::{Digester, Final};
use crate::{CmeError, Error};

/// What the digester delivered, with owned bytes, in the order it was delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Urc(String),
    Line(String),
    /// Payload pieces of one payload, joined (how they were cut depends on the chunking).
    Payload(Vec<u8>),
    End(Result<Final, Error>),
    Prompt,
}

fn push(evs: &RefCell<Vec<Ev>>, ev: Ev) {
    let mut v = evs.borrow_mut();
    if let (Some(Ev::Payload(p)), Ev::Payload(more)) = (v.last_mut(), &ev) {
        p.extend_from_slice(more);
        return;
    }
    v.push(ev);
}

/// How [`drive`] hands the wire to the digester.
enum Feed<'i> {
    /// Through `feed`, cut at these lengths (the rest in one piece); a prompt is recorded.
    Cuts(&'i mut dyn Iterator<Item = usize>),
    /// As the runner reads: into `write_buf`, at most this many bytes at a time, then
    /// `advance`.
    Reads(&'i mut dyn Iterator<Item = usize>),
}

/// Feeds `wire` through a digester with an `N`-byte line buffer, with `expect` in flight
/// (until its final result code); returns the events and the counters.
fn drive<const N: usize>(
    expect: Option<Expect>,
    wire: &[u8],
    how: Feed<'_>,
) -> (Vec<Ev>, super::DigestStats) {
    let shared = ExpectCell::new();
    let evs = RefCell::new(Vec::new());
    let on = |ev: Event<'_>| {
        push(
            &evs,
            match ev {
                Event::Line(l) => Ev::Line(String::from_utf8_lossy(l).into_owned()),
                Event::Payload(p) => Ev::Payload(p.to_vec()),
                Event::End(r) => Ev::End(r),
            },
        )
    };
    let _guard = shared.listen(&on);
    if let Some(e) = expect {
        shared.begin(e);
    }
    let mut buf = [0u8; N];
    let mut d = Digester::new(
        &shared,
        &mut buf,
        UrcFn(|l: &[u8]| push(&evs, Ev::Urc(String::from_utf8_lossy(l).into_owned()))),
    );
    let mut rest = wire;
    match how {
        Feed::Cuts(cuts) => {
            let mut prompted = false;
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).clamp(1, rest.len());
                let _ = d.feed(&rest[..n]);
                rest = &rest[n..];
                if shared.prompt_seen() && !prompted {
                    prompted = true;
                    push(&evs, Ev::Prompt);
                }
            }
        }
        Feed::Reads(reads) => {
            while !rest.is_empty() {
                let room = d.write_buf();
                assert!(!room.is_empty());
                let n = reads
                    .next()
                    .unwrap_or(rest.len())
                    .clamp(1, rest.len())
                    .min(room.len());
                room[..n].copy_from_slice(&rest[..n]);
                d.advance(n);
                rest = &rest[n..];
            }
        }
    }
    drop(_guard);
    let out = evs.borrow().clone();
    (out, shared.stats())
}

/// Feeds `wire` cut at `cuts` (the rest in one piece) through a digester with an `N`-byte
/// line buffer, with `expect` in flight (until its final result code).
fn run_cuts<const N: usize>(
    expect: Option<Expect>,
    wire: &[u8],
    cuts: &mut dyn Iterator<Item = usize>,
) -> (Vec<Ev>, super::DigestStats) {
    drive::<N>(expect, wire, Feed::Cuts(cuts))
}

/// Feeds `wire` in chunks of `chunk` bytes with `expect` in flight; returns the events.
fn run(expect: Option<Expect>, wire: &[u8], chunk: usize) -> (Vec<Ev>, super::DigestStats) {
    run_cuts::<2048>(expect, wire, &mut core::iter::repeat(chunk))
}

fn all_chunkings(expect: Option<Expect>, wire: &[u8]) -> Vec<Ev> {
    let (reference, _) = run(expect, wire, wire.len().max(1));
    for chunk in [1, 2, 3, 5, 7, 64] {
        let (evs, _) = run(expect, wire, chunk);
        assert_eq!(evs, reference, "chunk size {chunk} changed the result");
    }
    reference
}

fn urc(s: &str) -> Ev {
    Ev::Urc(s.into())
}

fn line(s: &str) -> Ev {
    Ev::Line(s.into())
}

const OK: Ev = Ev::End(Ok(Final::Ok));

#[test]
fn echo_on() {
    let evs = all_chunkings(Some(Expect::NONE), b"AT\r\r\nOK\r\n");
    assert_eq!(evs, [OK]);
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CPIN:")),
        b"AT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n",
    );
    assert_eq!(evs, [line("+CPIN: READY"), OK]);
    // ATE0's own echo is still emitted.
    let evs = all_chunkings(Some(Expect::NONE), b"ATE0\r\r\nOK\r\n");
    assert_eq!(evs, [OK]);
}

#[test]
fn echo_off_and_blank_lines() {
    let evs = all_chunkings(
        Some(Expect::BARE),
        b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n",
    );
    assert_eq!(
        evs,
        [
            line("Quectel"),
            line("BG96"),
            line("Revision: BG96MAR02A07M1G"),
            OK
        ]
    );
    // Without the blank line before OK (BG770A quirk), and with extra blank lines.
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CSQ:")),
        b"\r\n\r\n+CSQ: 15,3\r\nOK\r\n",
    );
    assert_eq!(evs, [line("+CSQ: 15,3"), OK]);
}

#[test]
fn urc_before_and_inside_a_response_in_order() {
    let wire = b"\r\n+QIURC: \"recv\",0\r\n\r\n+CSQ: 15,3\r\n\r\n+QIURC: \"closed\",1\r\n\r\nOK\r\n\r\nRDY\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CSQ:")), wire);
    assert_eq!(
        evs,
        [
            urc("+QIURC: \"recv\",0"),
            line("+CSQ: 15,3"),
            urc("+QIURC: \"closed\",1"),
            OK,
            urc("RDY"),
        ]
    );
}

#[test]
fn several_urcs_inside_a_multi_line_response() {
    let wire = b"\r\n+CGACT: 1,1\r\n+QIURC: \"recv\",2\r\n+CGACT: 2,0\r\n+CREG: 5\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CGACT:")), wire);
    assert_eq!(
        evs,
        [
            line("+CGACT: 1,1"),
            urc("+QIURC: \"recv\",2"),
            line("+CGACT: 2,0"),
            urc("+CREG: 5"),
            OK
        ]
    );
}

fn qird_wire(payload: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    w.extend_from_slice(format!("\r\n+QIRD: {}\r\n", payload.len()).as_bytes());
    w.extend_from_slice(payload);
    w.extend_from_slice(b"\r\n\r\nOK\r\n");
    w
}

use std::format;

#[test]
fn qird_payload_with_ok_and_nul_inside() {
    let payload: &[u8] = b"\r\nOK\r\n\x00\x00> \r\n+QIURC: \"recv\",0\r\nERROR\r\n \x1a\xff ";
    let mut wire = b"\r\n+QIURC: \"recv\",0\r\n".to_vec();
    wire.extend_from_slice(&qird_wire(payload));
    wire.extend_from_slice(b"\r\n+QIURC: \"recv\",0\r\n");
    let expect = Expect::payload(b"+QIRD:");
    let evs = all_chunkings(Some(expect), &wire);
    assert_eq!(
        evs,
        [
            urc("+QIURC: \"recv\",0"),
            line(&format!("+QIRD: {}", payload.len())),
            Ev::Payload(payload.to_vec()),
            OK,
            urc("+QIURC: \"recv\",0"),
        ]
    );
}

#[test]
fn qird_payload_longer_than_the_line_buffer() {
    // 1500 bytes through a 64-byte buffer: the payload passes through in pieces.
    let payload: Vec<u8> = (0u32..1500).map(|i| (i * 31 % 251) as u8).collect();
    let expect = Expect::payload(b"+QIRD:");
    let wire = qird_wire(&payload);
    for chunk in [1, 7, 64, 1000] {
        let (evs, stats) = run_cuts::<64>(Some(expect), &wire, &mut core::iter::repeat(chunk));
        assert_eq!(
            evs,
            [line("+QIRD: 1500"), Ev::Payload(payload.clone()), OK],
            "chunk {chunk}"
        );
        assert_eq!(stats.long_lines, 0);
    }
}

#[test]
fn qird_zero_and_query_form() {
    let expect = Expect::payload(b"+QIRD:");
    let evs = all_chunkings(Some(expect), b"\r\n+QIRD: 0\r\n\r\nOK\r\n");
    assert_eq!(evs, [line("+QIRD: 0"), OK]);
    let evs = all_chunkings(Some(expect), b"\r\n+QIRD: 3615,3529,86\r\n\r\nOK\r\n");
    assert_eq!(evs, [line("+QIRD: 3615,3529,86"), OK]);
}

#[test]
fn one_byte_fragmentation_of_a_whole_session() {
    let mut wire = Vec::new();
    wire.extend_from_slice(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n");
    wire.extend_from_slice(b"\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n");
    let (evs, _) = run(None, &wire, 1);
    assert_eq!(
        evs,
        [
            urc("RDY"),
            urc("+CFUN: 1"),
            urc("+CPIN: READY"),
            urc("+QUSIM: 1"),
            urc("+QIND: SMS DONE")
        ]
    );
}

#[test]
fn garbage_is_not_error() {
    let expect = Expect::prefixed(b"+CSQ:");
    let (evs, stats) = run(
        Some(expect),
        b"\r\nERrOR\r\n\x01\x7f\xfe\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
        1,
    );
    assert_eq!(evs, [line("+CSQ: 20,99"), OK]);
    assert_eq!(stats.garbage_lines, 2);
    // Garbage with a command in flight, then a real error.
    let (evs, stats) = run(Some(Expect::NONE), b"ERrOR\r\n0K\r\nERROR\r\n", 3);
    assert_eq!(evs, [Ev::End(Ok(Final::Error))]);
    assert_eq!(stats.garbage_lines, 2);
}

/// An information line taken by its plain prefix (without the classification) is checked
/// printable when the word pass did not (a line split between pieces, a tab in it): noise with
/// the prefix stays noise, however the bytes are cut; the prefix of a registration report
/// still goes the classification's way.
#[test]
fn lines_by_their_prefix_split_or_not_noise_stays_noise() {
    let wire: &[u8] =
        b"\r\n+CSQ: 2\x01,99\r\n+CSQ: 20,99\r\n+CSQ:\t1\r\n+CSQ: 1\x7f\r\n+CSQX: 3\r\n\
        +CSQ:\x01 12,99,0,0,0,0,0,0,0\r\n+CSQ: 12,99,0,0,0,0,0,0,\x010\r\n\r\nOK\r\n";
    let expect = Some(Expect::prefixed(b"+CSQ:"));
    let evs = all_chunkings(expect, wire);
    assert_eq!(
        evs,
        [line("+CSQ: 20,99"), line("+CSQ:\t1"), urc("+CSQX: 3"), OK]
    );
    for chunk in [1, 2, 3, 5, 7, 64, wire.len()] {
        let (_, stats) = run(expect, wire, chunk);
        assert_eq!(stats.garbage_lines, 4, "chunk {chunk}");
    }
    let wire: &[u8] =
        b"\r\n+CEREG: 2,1,\"1A2B\",\"01A2D102\",8\r\n+CEREG: 1,\"1A2B\"\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CEREG:")), wire);
    assert_eq!(
        evs,
        [
            line("+CEREG: 2,1,\"1A2B\",\"01A2D102\",8"),
            urc("+CEREG: 1,\"1A2B\""),
            OK
        ]
    );
}

/// A bare command's lines that start with a digit are taken without the classification;
/// noise among them stays noise, and the bare words, URCs and the echo are still told apart,
/// however the bytes are cut.
#[test]
fn a_bare_commands_digit_lines_any_cut() {
    let wire: &[u8] = b"ATI\r\r\n866425030000001\r\n8\x01664\r\n\r\nRDY\r\n89860\t1\r\n\
        Quectel\r\n0\r\n12345678901234567890123456789012345678901234567890123456789012345\x7f\r\n\
        \r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::BARE), wire);
    assert_eq!(
        evs,
        [
            line("866425030000001"),
            urc("RDY"),
            line("89860\t1"),
            line("Quectel"),
            line("0"),
            OK
        ]
    );
    for chunk in [1, 2, 3, 5, 7, 64, wire.len()] {
        let (_, stats) = run(Some(Expect::BARE), wire, chunk);
        assert_eq!(
            (stats.garbage_lines, stats.echo_lines),
            (2, 1),
            "chunk {chunk}"
        );
    }
}

#[test]
fn cme_errors_numeric_and_verbose() {
    let evs = all_chunkings(Some(Expect::prefixed(b"+CPIN:")), b"\r\n+CME ERROR: 10\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::Cme(CmeError(10))))]);
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CPIN:")),
        b"\r\n+CME ERROR: SIM not inserted\r\n",
    );
    assert_eq!(evs, [Ev::End(Ok(Final::Cme(CmeError(10))))]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\n+CMS ERROR: 302\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::Cms(302)))]);
}

#[test]
fn unknown_urc_then_known_urc() {
    let (evs, stats) = run(
        None,
        b"\r\n+QFOO: 1,\"x\"\r\n\r\n+QIURC: \"pdpdeact\",1\r\n",
        1,
    );
    assert_eq!(evs, [urc("+QFOO: 1,\"x\""), urc("+QIURC: \"pdpdeact\",1")]);
    assert_eq!(stats.unknown_urcs, 1);
    // And the typed parser reports the unknown one as such.
    assert!(matches!(
        super::Urc::parse_line(b"+QFOO: 1,\"x\""),
        Some(super::Urc::Unknown(_))
    ));
}

#[test]
fn reboot_while_a_command_waits() {
    // The command was sent; the modem reboots instead of answering; echo is back on afterwards.
    let wire = b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nAPP RDY\r\nAT\r\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CSQ:")), wire);
    assert_eq!(evs, [urc("RDY"), urc("+CFUN: 1"), urc("APP RDY"), OK]);
}

#[test]
fn registration_urc_vs_read_response() {
    let expect = Expect::prefixed(b"+CEREG:");
    let wire = b"\r\n+CEREG: 5,\"1A2B\",\"01A2D102\",8\r\n\r\n+CEREG: 2,1,\"1A2B\",\"01A2D101\",8\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(expect), wire);
    assert_eq!(
        evs,
        [
            urc("+CEREG: 5,\"1A2B\",\"01A2D102\",8"),
            line("+CEREG: 2,1,\"1A2B\",\"01A2D101\",8"),
            OK
        ]
    );
}

#[test]
fn prompt_only_when_asked() {
    let evs = all_chunkings(Some(Expect::PROMPT), b"\r\n> ");
    assert_eq!(evs, [Ev::Prompt]);
    let evs = all_chunkings(Some(Expect::PROMPT), b"AT+QISEND=0,5\r\r\n> ");
    assert_eq!(evs, [Ev::Prompt]);
    // Without a prompt command in flight, "> " is just noise.
    let (evs, _) = run(None, b"\r\n> \r\n\r\nRDY\r\n", 1);
    assert_eq!(evs, [urc("RDY")]);
}

#[test]
fn send_results() {
    let evs = all_chunkings(Some(Expect::NONE), b"\r\nSEND OK\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::SendOk))]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\nSEND FAIL\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::SendFail))]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\nCONNECT\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::Connect))]);
}

#[test]
fn a_long_reply_streams_through_a_small_buffer() {
    // 40 lines of a file listing (1.2 KB) through a 64-byte buffer, a URC in the middle.
    let mut wire = Vec::new();
    let mut want = Vec::new();
    for i in 0..40 {
        wire.extend_from_slice(format!("\r\n+QFLST: \"file{i}.pem\",1220").as_bytes());
        want.push(line(&format!("+QFLST: \"file{i}.pem\",1220")));
        if i == 20 {
            wire.extend_from_slice(b"\r\n+QIURC: \"recv\",3");
            want.push(urc("+QIURC: \"recv\",3"));
        }
    }
    wire.extend_from_slice(b"\r\n\r\nOK\r\n");
    want.push(OK);
    for chunk in [1, 7, 64, 2000] {
        let (evs, stats) = run_cuts::<64>(
            Some(Expect::prefixed(b"+QFLST:")),
            &wire,
            &mut core::iter::repeat(chunk),
        );
        assert_eq!(evs, want, "chunk {chunk}");
        assert_eq!(stats.overflows, 0);
    }
}

/// Feeds `wire` through a 64-byte line buffer as the runner reads: into
/// [`Digester::write_buf`], at most `reads.next()` bytes at a time, then `advance`.
fn run_reads(
    expect: Option<Expect>,
    wire: &[u8],
    reads: &mut dyn Iterator<Item = usize>,
) -> (Vec<Ev>, super::DigestStats) {
    drive::<64>(expect, wire, Feed::Reads(reads))
}

/// The unfinished line is kept where it is after a piece and moved to the front only when
/// the room after it runs out: lines of every length that fits (up to the whole buffer with
/// its `\r\n`), URCs between them, cut at random and read at random sizes (as the runner
/// reads), give the events a large buffer gives for the stream in one piece.
#[test]
fn lines_kept_in_place_any_cut_agree_with_one_piece() {
    let mut x = 0x6d2b_79f5_u32;
    let mut wire = Vec::new();
    for i in 0..400 {
        // `+QFLST: "<name>",1` with its `\r\n`s: 16 bytes of framing, then up to 48 of name.
        let len = crate::at::xorshift32(&mut x) as usize % 49;
        let name: String = (0..len)
            .map(|_| char::from(b'a' + (crate::at::xorshift32(&mut x) % 26) as u8))
            .collect();
        wire.extend_from_slice(format!("\r\n+QFLST: \"{name}\",1\r\n").as_bytes());
        if i % 7 == 3 {
            wire.extend_from_slice(b"\r\n+QIURC: \"recv\",2\r\n");
        }
    }
    wire.extend_from_slice(b"\r\nOK\r\n");
    let expect = Some(Expect::prefixed(b"+QFLST:"));
    let (want, want_stats) = run(expect, &wire, wire.len());
    assert_eq!(want.len(), 400 + 57 + 1);
    for max in [1, 5, 17, 63, 64, 200] {
        let mut seed = 0x1234_5678_u32 ^ max as u32;
        let mut cuts =
            core::iter::from_fn(move || Some(crate::at::xorshift32(&mut seed) as usize % max + 1));
        let (evs, stats) = run_cuts::<64>(expect, &wire, &mut cuts);
        assert_eq!(evs, want, "feed, pieces up to {max}");
        assert_eq!(stats, want_stats, "feed, pieces up to {max}");
        let (evs, stats) = run_reads(expect, &wire, &mut cuts);
        assert_eq!(evs, want, "reads up to {max}");
        assert_eq!(stats, want_stats, "reads up to {max}");
    }
}

#[test]
fn a_line_longer_than_the_buffer_fails_its_command_and_resyncs() {
    let shared = ExpectCell::new();
    let evs = RefCell::new(Vec::new());
    let on = |ev: Event<'_>| {
        if let Event::End(r) = ev {
            evs.borrow_mut().push(Ev::End(r))
        }
    };
    let _guard = shared.listen(&on);
    shared.begin(Expect::prefixed(b"+QFLST:"));
    let mut buf = [0u8; 64];
    let mut d = Digester::new(
        &shared,
        &mut buf,
        UrcFn(|l: &[u8]| evs.borrow_mut().push(urc(core::str::from_utf8(l).unwrap()))),
    );
    let long = format!("\r\n+QFLST: \"{}.pem\",1220\r\n", "x".repeat(200));
    for piece in long.as_bytes().chunks(7) {
        let _ = d.feed(piece);
    }
    let _ = d.feed(b"\r\n+QIURC: \"recv\",3\r\n\r\nOK\r\n");
    assert_eq!(shared.current(), None, "the command is complete");
    shared.begin(Expect::prefixed(b"+CSQ:"));
    let _ = d.feed(b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n");
    assert_eq!(
        *evs.borrow(),
        [urc("+QIURC: \"recv\",3"), Ev::End(Err(Error::Overflow)), OK]
    );
    assert_eq!(shared.stats().overflows, 1);
    assert_eq!(shared.stats().long_lines, 1);
}

#[test]
fn overlong_noise_line_is_skipped() {
    let noise = [b'x'; 1000];
    let mut wire = noise.to_vec();
    wire.extend_from_slice(b"\r\n\r\nRDY\r\n");
    let (evs, stats) = run_cuts::<128>(None, &wire, &mut core::iter::repeat(100));
    assert_eq!(evs, [urc("RDY")]);
    assert!(stats.discarded_bytes >= 1000);
    assert_eq!(stats.long_lines, 1);
}

#[test]
fn unsolicited_final_is_counted() {
    let (evs, stats) = run(None, b"\r\nOK\r\n", 1);
    assert_eq!(evs, []);
    assert_eq!(stats.unsolicited_finals, 1);
}

/// A 5 KiB multi-line reply with URCs between its lines, through a 256-byte line buffer, in
/// 1-byte, 7-byte and random chunks: every line reaches the parser, every URC is delivered, in
/// order, the same for every chunking (issue 11).
#[test]
fn five_kib_reply_with_urcs_between_lines_any_chunking() {
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut i = 0;
    while wire.len() < 5 * 1024 {
        let l = format!(
            "+QCFG: \"band\",{i},\"0x{:08x}\",\"0x{:016x}\"",
            i * 977,
            i * 131
        );
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(l.as_bytes());
        want.push(line(&l));
        if i % 5 == 2 {
            let u = format!("+QIURC: \"recv\",{}", i % 12);
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(u.as_bytes());
            want.push(urc(&u));
        }
        i += 1;
    }
    wire.extend_from_slice(b"\r\n\r\nOK\r\n");
    want.push(OK);
    assert!(wire.len() >= 5 * 1024);
    let expect = Some(Expect::prefixed(b"+QCFG:"));
    let mut seed = 0x2545_f491_u32;
    let mut random =
        core::iter::from_fn(move || Some((crate::at::xorshift32(&mut seed) % 300) as usize + 1));
    let runs: [(&str, &mut dyn Iterator<Item = usize>); 3] = [
        ("1-byte", &mut core::iter::repeat(1)),
        ("7-byte", &mut core::iter::repeat(7)),
        ("random", &mut random),
    ];
    for (name, cuts) in runs {
        let (evs, stats) = run_cuts::<256>(expect, &wire, cuts);
        assert_eq!(evs.len(), want.len(), "{name}");
        assert_eq!(evs, want, "{name} chunks");
        assert_eq!(
            stats.long_lines + stats.overflows + stats.garbage_lines,
            0,
            "{name}"
        );
    }
}

#[test]
fn no_carrier_ends_only_a_call_command() {
    // Inside an ordinary reply it is a URC (a call ended): the command keeps its own answer.
    let wire = b"\r\n+CSQ: 15,3\r\n\r\nNO CARRIER\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CSQ:")), wire);
    assert_eq!(evs, [line("+CSQ: 15,3"), urc("NO CARRIER"), OK]);
    for text in ["BUSY", "NO ANSWER", "NO DIALTONE"] {
        let wire = format!("\r\n{text}\r\n\r\nOK\r\n");
        let evs = all_chunkings(Some(Expect::NONE), wire.as_bytes());
        assert_eq!(evs, [urc(text), OK]);
    }
    // For a command that can produce it, it is the final result code.
    let evs = all_chunkings(Some(Expect::NONE.with_call()), b"\r\nNO CARRIER\r\n");
    assert_eq!(evs, [Ev::End(Ok(Final::NoCarrier))]);
    assert_eq!(
        super::Urc::parse_line(b"NO CARRIER"),
        Some(super::Urc::Notice(super::urc::Notice::CallEnded))
    );
}

#[test]
fn bare_notices_and_unknown_bare_lines() {
    // Known bare notices are URCs anywhere, also inside a bare answer.
    let wire = b"\r\nQuectel\r\nCall Ready\r\nBG96\r\nSMS Ready\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::BARE), wire);
    assert_eq!(
        evs,
        [
            line("Quectel"),
            urc("Call Ready"),
            line("BG96"),
            urc("SMS Ready"),
            line("Revision: BG96MAR02A07M1G"),
            OK
        ]
    );
    // Outside a command, an unknown bare line is an unknown URC, not merged into the next
    // answer.
    let (evs, stats) = run(None, b"\r\nSome Notice\r\n\r\nRDY\r\n", 1);
    assert_eq!(evs, [urc("Some Notice"), urc("RDY")]);
    assert_eq!(stats.unknown_urcs, 1);
    assert!(matches!(
        super::Urc::parse_line(b"Some Notice"),
        Some(super::Urc::Unknown(s)) if s.as_str() == "Some Notice"
    ));
}

#[test]
fn a_success_before_the_line_a_command_always_answers_is_stale() {
    let marker = Expect::prefixed(b"+CMEE:").with_line();
    let (evs, stats) = run(Some(marker), b"\r\nOK\r\n\r\n+CMEE: 2\r\n\r\nOK\r\n", 1);
    assert_eq!(evs, [line("+CMEE: 2"), OK]);
    assert_eq!(stats.unsolicited_finals, 1);
    // An error still ends it.
    let (evs, _) = run(Some(marker), b"\r\nERROR\r\n", 1);
    assert_eq!(evs, [Ev::End(Ok(Final::Error))]);
}

/// Bytes lost on the UART inside a payload (an overrun): the payload takes bytes of its
/// trailer, so its `\r\n` is not where the header said; counted, and the socket is told.
#[test]
fn a_payload_that_lost_bytes_is_reported_corrupted() {
    struct Sink(RefCell<Vec<u8>>, core::cell::Cell<u32>);
    impl super::expect::PayloadSink for Sink {
        fn pushes(&self, _slot: u8) -> bool {
            false
        }
        fn deliver(&self, _slot: u8, data: &[u8]) {
            self.0.borrow_mut().extend_from_slice(data);
        }
        fn delivered(&self, _slot: u8) {}
        fn corrupted(&self, slot: u8) {
            assert_eq!(slot, 3);
            self.1.set(self.1.get() + 1);
        }
    }
    let payload = b"0123456789abcdefghij";
    let expect = Expect::payload(b"+QIRD:").to_slot(3);
    // Intact, then 1, 3, 4 and 5 bytes lost from the middle of the payload.
    for (lost, detected) in [(0, 0), (1, 1), (3, 1), (4, 1), (5, 1)] {
        let mut wire = qird_wire(payload);
        let at = 16;
        wire.drain(at..at + lost);
        for chunk in [1, 7, 64] {
            let shared = ExpectCell::new();
            shared.begin(expect);
            let sink = Sink(RefCell::new(Vec::new()), core::cell::Cell::new(0));
            let mut buf = [0u8; 64];
            let mut d = Digester::new(&shared, &mut buf, UrcFn(|_: &[u8]| {})).with_payloads(&sink);
            for piece in wire.chunks(chunk) {
                let _ = d.feed(piece);
            }
            let _ = d.feed(b"\r\nOK\r\n\r\nOK\r\n");
            assert_eq!(sink.1.get(), detected, "lost {lost}, chunk {chunk}");
            assert_eq!(shared.stats().corrupted_payloads, detected, "lost {lost}");
            if lost == 0 {
                assert_eq!(sink.0.borrow().as_slice(), payload);
            }
        }
    }
}

/// Direct push: the `n` bytes after `+QSSLURC: "recv",<id>,<n>` / `+QIURC: "recv",<id>,<n>` go
/// to that socket whatever they contain (`OK`, a prompt, a URC, NUL), with or without the
/// trailing `\r\n`, also between two lines of a reply; bytes pushed for a socket that is not
/// in push mode are dropped and counted, never read as lines. Any chunking, a 64-byte line
/// buffer.
#[test]
fn direct_push_payloads_go_to_their_socket_any_chunking() {
    struct Sink {
        data: RefCell<Vec<(u8, Vec<u8>)>>,
        delivered: core::cell::Cell<u32>,
    }
    impl super::expect::PayloadSink for Sink {
        fn pushes(&self, slot: u8) -> bool {
            slot == 1 || slot == 4
        }
        fn deliver(&self, slot: u8, data: &[u8]) {
            let mut v = self.data.borrow_mut();
            // An entry is open until its payload is `delivered`.
            let open = v.len() as u32 > self.delivered.get();
            match v.last_mut() {
                Some((s, d)) if open && *s == slot => d.extend_from_slice(data),
                _ => v.push((slot, data.to_vec())),
            }
        }
        fn delivered(&self, _slot: u8) {
            self.delivered.set(self.delivered.get() + 1);
        }
        fn corrupted(&self, slot: u8) {
            panic!("socket {slot} reported corrupted");
        }
    }
    let p1: &[u8] = b"\r\nOK\r\n> +QIURC: \"recv\",0\r\n\0\xff\r\nERROR\r\n";
    let p2: Vec<u8> = (0u16..300).map(|i| (i * 13 % 256) as u8).collect();
    let mut wire = Vec::new();
    wire.extend_from_slice(b"\r\n+CSQ: 15,3\r\n");
    wire.extend_from_slice(format!("\r\n+QSSLURC: \"recv\",4,{}\r\n", p1.len()).as_bytes());
    wire.extend_from_slice(p1);
    wire.extend_from_slice(b"\r\n");
    // Socket 2 is not in push mode; no trailing CR LF after its bytes.
    wire.extend_from_slice(b"\r\n+QIURC: \"recv\",2,9\r\nOK\r\nhey!!");
    wire.extend_from_slice(format!("\r\n+QIURC: \"recv\",1,{}\r\n", p2.len()).as_bytes());
    wire.extend_from_slice(&p2);
    wire.extend_from_slice(b"\r\n\r\nOK\r\n");
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let shared = ExpectCell::new();
        let evs = RefCell::new(Vec::new());
        let on = |ev: Event<'_>| {
            push(
                &evs,
                match ev {
                    Event::Line(l) => Ev::Line(String::from_utf8_lossy(l).into_owned()),
                    Event::Payload(p) => Ev::Payload(p.to_vec()),
                    Event::End(r) => Ev::End(r),
                },
            )
        };
        let _guard = shared.listen(&on);
        shared.begin(Expect::prefixed(b"+CSQ:"));
        let sink = Sink {
            data: RefCell::new(Vec::new()),
            delivered: core::cell::Cell::new(0),
        };
        let mut buf = [0u8; 64];
        let mut d = Digester::new(
            &shared,
            &mut buf,
            UrcFn(|l: &[u8]| push(&evs, Ev::Urc(String::from_utf8_lossy(l).into_owned()))),
        )
        .with_payloads(&sink);
        for piece in wire.chunks(chunk) {
            let _ = d.feed(piece);
        }
        drop(_guard);
        assert_eq!(
            evs.borrow().as_slice(),
            [line("+CSQ: 15,3"), OK],
            "chunk {chunk}"
        );
        assert_eq!(
            sink.data.borrow().as_slice(),
            [(4, p1.to_vec()), (1, p2.clone())],
            "chunk {chunk}"
        );
        assert_eq!(sink.delivered.get(), 2);
        let stats = shared.stats();
        assert_eq!(stats.discarded_bytes, 9, "chunk {chunk}");
        assert_eq!(
            stats.garbage_lines + stats.unknown_urcs + stats.corrupted_payloads,
            0
        );
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn recorded_exchange() -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(b"AT+QIRD=0,1500\r\r\n+QIURC: \"recv\",1\r\n");
        let payload: Vec<u8> = (0u16..300).map(|i| (i * 7 % 256) as u8).collect();
        w.extend_from_slice(&qird_wire(&payload));
        w.extend_from_slice(b"\r\n+QIURC: \"closed\",0\r\nERrOR\r\n");
        w
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_the_same_events(cuts in proptest::collection::vec(1usize..40, 0..60)) {
            let wire = recorded_exchange();
            let expect = Some(Expect::payload(b"+QIRD:"));
            let (reference, ref_stats) = run(expect, &wire, wire.len());
            let (evs, stats) = run_cuts::<256>(expect, &wire, &mut cuts.into_iter());
            prop_assert_eq!(&evs, &reference);
            prop_assert_eq!(stats, ref_stats);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..300) {
            let (evs, _) = run_cuts::<128>(Some(Expect::payload(b"+QIRD:")), &data, &mut core::iter::repeat(chunk));
            let delivered: usize = evs.iter().map(|e| match e {
                Ev::Urc(s) | Ev::Line(s) => s.len(),
                Ev::Payload(p) => p.len(),
                _ => 0,
            }).sum();
            prop_assert!(delivered <= data.len());
        }
    }
}

/// The blank-line skip's shortcut (one `\r\n` before a line) counts what its loop counts, for
/// every string of up to seven bytes of `\r`, `\n`, `>` and a letter.
#[test]
fn blank_line_shortcut_agrees_with_the_loop() {
    let alphabet = *b"\r\n>a";
    for len in 0..=7u32 {
        for mut k in 0..4usize.pow(len) {
            let rest: Vec<u8> = (0..len)
                .map(|_| {
                    let b = alphabet[k % 4];
                    k /= 4;
                    b
                })
                .collect();
            assert_eq!(
                super::digester::blank_len(&rest),
                super::digester::blank_len_loop(&rest),
                "{rest:?}"
            );
        }
    }
}

/// `OK` in a form other than the usual `OK\r` (no `\r`, spaces around it, two `\r`) ends the
/// command whatever it expects, through the classification (the digester takes only `OK\r`
/// before it), and is counted as unsolicited with no command in flight.
#[test]
fn ok_in_any_form_ends_the_command() {
    let forms: [&[u8]; 5] = [
        b"\r\nOK\n",
        b"\r\n OK\r\n",
        b"\r\nOK \r\n",
        b"\r\nOK\r\r\n",
        b"\r\n\tOK\t\r\n",
    ];
    let expects = [
        Expect::NONE,
        Expect::BARE,
        Expect::prefixed(b"+CSQ:"),
        Expect::payload(b"+QIRD:"),
    ];
    for wire in forms {
        for expect in expects {
            assert_eq!(
                all_chunkings(Some(expect), wire),
                [OK],
                "{wire:?} {expect:?}"
            );
        }
        let (evs, stats) = run(None, wire, wire.len());
        assert_eq!(evs, []);
        assert_eq!(stats.unsolicited_finals, 1, "{wire:?}");
        assert_eq!(stats.garbage_lines, 0, "{wire:?}");
    }
}

/// A line whose first or last byte (before its `\r`) is a control byte, a space, DEL or a high
/// byte is taken as the general path takes it (trimmed, then classified): the digester's test
/// for the usual line (no byte up to `0x20` at either end) sends the others to the trimming.
#[test]
fn lines_with_odd_end_bytes_are_classified_as_trimmed() {
    use super::line::{LineClass, classify};
    let expect = Expect::prefixed(b"+CSQ:");
    let mut ends: Vec<u8> = (0u8..=0x21).collect();
    ends.extend_from_slice(&[0x7e, 0x7f, 0x80, 0xff]);
    for &e in &ends {
        for body in [&b"+CSQ: 1,2"[..], b"OK", b"+CEREG: 1", b"ERROR"] {
            for line in [
                [&[e][..], body].concat(),
                [body, &[e][..]].concat(),
                [&[e][..], body, &[e][..]].concat(),
            ] {
                let wire = [&b"\r\n"[..], &line, b"\r\n"].concat();
                let (evs, stats) = run(Some(expect), &wire, wire.len());
                let text = crate::error::trim_ascii(&line);
                let printable = text.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
                let s = String::from_utf8_lossy(text).into_owned();
                let (want, garbage): (Vec<Ev>, u32) = match classify(text, Some(&expect), false) {
                    _ if !printable => (std::vec![], 1),
                    LineClass::Info => (std::vec![Ev::Line(s)], 0),
                    LineClass::Urc => (std::vec![Ev::Urc(s)], 0),
                    LineClass::Final(f) => (std::vec![Ev::End(Ok(f))], 0),
                    LineClass::Garbage => (std::vec![], 1),
                    LineClass::Blank | LineClass::Echo => (std::vec![], 0),
                };
                assert_eq!(evs, want, "{line:?}");
                assert_eq!(stats.garbage_lines, garbage, "{line:?}");
            }
        }
    }
}
