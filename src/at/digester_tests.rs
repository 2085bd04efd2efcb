//! Byte-level tests of the digester: real-log quirks, binary payloads, noise, fragmentation.

extern crate std;
use std::string::String;
use std::vec::Vec;

use super::expect::{Expect, ExpectCell};
use super::feed::{Event, Feeder};

/// An event with owned bytes, for comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Urc(String),
    Ok(Vec<u8>),
    Err(Vec<u8>),
    Overflow,
    Prompt,
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Urc(u) => Ev::Urc(String::from_utf8_lossy(u).into_owned()),
        Event::Response(Ok(b)) => Ev::Ok(b.to_vec()),
        Event::Response(Err(atat::InternalError::Custom(b))) => Ev::Err(b.to_vec()),
        Event::Response(Err(_)) => Ev::Overflow,
        Event::Prompt => Ev::Prompt,
    }
}

/// Feeds `wire` in chunks of `chunk` bytes with `expect` in flight; returns the events.
fn run(expect: Option<Expect>, wire: &[u8], chunk: usize) -> (Vec<Ev>, super::DigestStats) {
    let shared = ExpectCell::new();
    if let Some(e) = expect {
        shared.begin(e);
    }
    let mut f = Feeder::<'_, 2048>::new(&shared);
    let mut evs = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        f.feed(piece, |e| evs.push(own(e))).unwrap();
    }
    (evs, shared.stats())
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

#[test]
fn echo_on() {
    let evs = all_chunkings(Some(Expect::NONE), b"AT\r\r\nOK\r\n");
    assert_eq!(evs, [Ev::Ok(b"OK".to_vec())]);
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CPIN:")),
        b"AT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n",
    );
    assert_eq!(evs, [Ev::Ok(b"+CPIN: READY\r\n\r\nOK".to_vec())]);
    // ATE0's own echo is still emitted.
    let evs = all_chunkings(Some(Expect::NONE), b"ATE0\r\r\nOK\r\n");
    assert_eq!(evs, [Ev::Ok(b"OK".to_vec())]);
}

#[test]
fn echo_off_and_blank_lines() {
    let evs = all_chunkings(
        Some(Expect::BARE),
        b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n",
    );
    assert_eq!(
        evs,
        [Ev::Ok(
            b"Quectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK".to_vec()
        )]
    );
    // Without the blank line before OK (BG770A quirk), and with extra blank lines.
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CSQ:")),
        b"\r\n\r\n+CSQ: 15,3\r\nOK\r\n",
    );
    assert_eq!(evs, [Ev::Ok(b"+CSQ: 15,3\r\nOK".to_vec())]);
}

#[test]
fn urc_before_and_inside_a_response() {
    let wire = b"\r\n+QIURC: \"recv\",0\r\n\r\n+CSQ: 15,3\r\n\r\n+QIURC: \"closed\",1\r\n\r\nOK\r\n\r\nRDY\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CSQ:")), wire);
    assert_eq!(
        evs,
        [
            urc("+QIURC: \"recv\",0"),
            Ev::Ok(b"+CSQ: 15,3\r\n\r\n+QIURC: \"closed\",1\r\n\r\nOK".to_vec()),
            urc("+QIURC: \"closed\",1"),
            urc("RDY"),
        ]
    );
    // The response view skips the URC that stayed inside it.
    let Ev::Ok(body) = &evs[1] else {
        unreachable!()
    };
    let r = super::Response::new(body, Expect::prefixed(b"+CSQ:"));
    assert_eq!(r.first().unwrap(), b"15,3");
}

#[test]
fn several_urcs_inside_a_multi_line_response() {
    let wire = b"\r\n+CGACT: 1,1\r\n+QIURC: \"recv\",2\r\n+CGACT: 2,0\r\n+CREG: 5\r\n\r\nOK\r\n";
    let evs = all_chunkings(Some(Expect::prefixed(b"+CGACT:")), wire);
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[1], urc("+QIURC: \"recv\",2"));
    assert_eq!(evs[2], urc("+CREG: 5"));
    let Ev::Ok(body) = &evs[0] else {
        panic!("{evs:?}")
    };
    let r = super::Response::new(body, Expect::prefixed(b"+CGACT:"));
    let lines: Vec<&[u8]> = r.prefixed(b"+CGACT:").collect();
    assert_eq!(lines, [&b"1,1"[..], &b"2,0"[..]]);
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
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert_eq!(evs[0], urc("+QIURC: \"recv\",0"));
    assert_eq!(evs[2], urc("+QIURC: \"recv\",0"));
    let Ev::Ok(body) = &evs[1] else { panic!() };
    let r = super::Response::new(body, expect);
    assert_eq!(r.payload().unwrap(), payload);
    assert_eq!(r.final_code(), Some(super::Final::Ok));
}

#[test]
fn qird_zero_and_query_form() {
    let expect = Expect::payload(b"+QIRD:");
    let evs = all_chunkings(Some(expect), b"\r\n+QIRD: 0\r\n\r\nOK\r\n");
    let Ev::Ok(body) = &evs[0] else { panic!() };
    assert_eq!(super::Response::new(body, expect).payload(), Some(&b""[..]));
    let evs = all_chunkings(Some(expect), b"\r\n+QIRD: 3615,3529,86\r\n\r\nOK\r\n");
    assert_eq!(evs, [Ev::Ok(b"+QIRD: 3615,3529,86\r\n\r\nOK".to_vec())]);
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
    assert_eq!(evs.len(), 1);
    let Ev::Ok(body) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(
        super::Response::new(body, expect).first().unwrap(),
        b"20,99"
    );
    assert_eq!(stats.garbage_lines, 2);
    // Garbage with no command in flight, then a real error.
    let (evs, stats) = run(Some(Expect::NONE), b"ERrOR\r\n0K\r\nERROR\r\n", 3);
    assert_eq!(evs, [Ev::Err(b"ERROR".to_vec())]);
    assert_eq!(stats.garbage_lines, 2);
}

#[test]
fn cme_errors_numeric_and_verbose() {
    let evs = all_chunkings(Some(Expect::prefixed(b"+CPIN:")), b"\r\n+CME ERROR: 10\r\n");
    assert_eq!(evs, [Ev::Err(b"+CME ERROR: 10".to_vec())]);
    let evs = all_chunkings(
        Some(Expect::prefixed(b"+CPIN:")),
        b"\r\n+CME ERROR: SIM not inserted\r\n",
    );
    assert_eq!(evs, [Ev::Err(b"+CME ERROR: SIM not inserted".to_vec())]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\n+CMS ERROR: 302\r\n");
    assert_eq!(evs, [Ev::Err(b"+CMS ERROR: 302".to_vec())]);
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
    assert_eq!(
        evs,
        [
            urc("RDY"),
            urc("+CFUN: 1"),
            urc("APP RDY"),
            Ev::Ok(b"OK".to_vec())
        ]
    );
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
            Ev::Ok(b"+CEREG: 2,1,\"1A2B\",\"01A2D101\",8\r\n\r\nOK".to_vec())
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
    assert_eq!(evs, [Ev::Ok(b"SEND OK".to_vec())]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\nSEND FAIL\r\n");
    assert_eq!(evs, [Ev::Err(b"SEND FAIL".to_vec())]);
    let evs = all_chunkings(Some(Expect::NONE), b"\r\nCONNECT\r\n");
    assert_eq!(evs, [Ev::Ok(b"CONNECT".to_vec())]);
}

#[test]
fn overflowing_response_is_an_error_and_resyncs() {
    let shared = ExpectCell::new();
    shared.begin(Expect::prefixed(b"+QFLST:"));
    let mut f = Feeder::<'_, 256>::new(&shared);
    let mut wire = Vec::new();
    for i in 0..40 {
        wire.extend_from_slice(format!("\r\n+QFLST: \"file{i}.pem\",1220").as_bytes());
    }
    wire.extend_from_slice(b"\r\n\r\n+QIURC: \"recv\",3\r\n\r\nOK\r\n");
    let mut evs = Vec::new();
    for piece in wire.chunks(7) {
        f.feed(piece, |e| evs.push(own(e))).unwrap();
    }
    assert_eq!(evs, [Ev::Overflow, urc("+QIURC: \"recv\",3")]);
    assert_eq!(shared.current(), None, "the overflowed command is complete");
    assert_eq!(shared.stats().overflows, 1);
    // The next command works.
    shared.begin(Expect::prefixed(b"+CSQ:"));
    f.feed(b"\r\n+CSQ: 9,99\r\n\r\nOK\r\n", |e| evs.push(own(e)))
        .unwrap();
    assert_eq!(evs[2], Ev::Ok(b"+CSQ: 9,99\r\n\r\nOK".to_vec()));
}

#[test]
fn overlong_noise_line_is_skipped() {
    let shared = ExpectCell::new();
    let mut f = Feeder::<'_, 128>::new(&shared);
    let mut evs = Vec::new();
    let noise = [b'x'; 1000];
    f.feed(&noise, |e| evs.push(own(e))).unwrap();
    f.feed(b"\r\n\r\nRDY\r\n", |e| evs.push(own(e))).unwrap();
    assert_eq!(evs, [urc("RDY")]);
    assert!(shared.stats().discarded_bytes >= 1000);
}

#[test]
fn unsolicited_final_is_counted() {
    let (evs, stats) = run(None, b"\r\nOK\r\n", 1);
    assert_eq!(evs, [Ev::Ok(b"OK".to_vec())]);
    assert_eq!(stats.unsolicited_finals, 1);
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
            let shared = ExpectCell::new();
            shared.begin(Expect::payload(b"+QIRD:"));
            let mut f = Feeder::<'_, 2048>::new(&shared);
            let mut evs = Vec::new();
            let mut rest = &wire[..];
            for c in cuts {
                if rest.is_empty() { break; }
                let n = c.min(rest.len());
                f.feed(&rest[..n], |e| evs.push(own(e))).unwrap();
                rest = &rest[n..];
            }
            f.feed(rest, |e| evs.push(own(e))).unwrap();
            prop_assert_eq!(&evs, &reference);
            prop_assert_eq!(shared.stats(), ref_stats);
        }

        #[test]
        fn arbitrary_bytes_never_panic_or_stall(data in proptest::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..300) {
            let shared = ExpectCell::new();
            shared.begin(Expect::payload(b"+QIRD:"));
            let mut f = Feeder::<'_, 512>::new(&shared);
            for piece in data.chunks(chunk) {
                let fed = f.feed(piece, |_| {});
                prop_assert!(fed.is_ok());
            }
        }
    }
}
