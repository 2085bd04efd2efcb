//! Scripted mode.

use std::time::Duration;

use quectel_mock::{Script, Step};

const T: Duration = Duration::from_secs(3);

#[test]
fn parse_all_step_kinds() {
    let s = Script::parse(
        r#"
# comment
> AT+CPIN?            # expect
< +CPIN: READY
<raw "\r\n+QIRD: 5\r\n\x00\r\nOK\r\n"   # raw
~ 50ms
! +QIURC: "recv",0
frag 1
frag 2 3ms
echo on
timeout 2s
>raw "ab\x1a"
close
"#,
    )
    .unwrap();
    let steps: Vec<Step> = s.steps.into_iter().map(|s| s.step).collect();
    assert_eq!(steps[0], Step::Expect("AT+CPIN?".into()));
    assert_eq!(steps[1], Step::Send(b"\r\n+CPIN: READY\r\n".to_vec()));
    assert_eq!(
        steps[2],
        Step::Send(b"\r\n+QIRD: 5\r\n\x00\r\nOK\r\n".to_vec())
    );
    assert_eq!(steps[3], Step::Delay(Duration::from_millis(50)));
    assert_eq!(steps[4], Step::Send(b"\r\n+QIURC: \"recv\",0\r\n".to_vec()));
    assert_eq!(steps.len(), 11);
    assert!(Script::parse("bogus").is_err());
    assert_eq!(Script::parse("\n\n~ 5 parsecs").unwrap_err().line, 3);
}

#[test]
fn conversation_with_echo_and_fragmentation() {
    let (mut rx, mut tx, h) = Script::parse(
        r#"
echo on
frag 1
> AT
< OK
echo off
> AT+QIRD=0,1500
<raw "\r\n+QIRD: 5\r\nhe\x00lo\r\n\r\nOK\r\n"
> AT+QISEND=0,*
<raw "\r\n> "
>raw "hello"
< SEND OK
"#,
    )
    .unwrap()
    .spawn();
    tx.send("AT\r");
    assert_eq!(rx.read_until(b"OK\r\n", T), b"AT\r\r\nOK\r\n");
    tx.send("AT+QIRD=0,1500\r\n");
    assert_eq!(
        rx.read_until(b"OK\r\n", T),
        b"\r\n+QIRD: 5\r\nhe\x00lo\r\n\r\nOK\r\n"
    );
    tx.send("AT+QISEND=0,5\r");
    assert_eq!(rx.read_until(b"> ", T), b"\r\n> ");
    tx.send("hello");
    assert_eq!(rx.read_until(b"OK\r\n", T), b"\r\nSEND OK\r\n");
    assert_eq!(h.finish(), Ok(()));
}

#[test]
fn mismatch_is_reported_and_script_continues() {
    let (mut rx, mut tx, h) = Script::parse("> AT+CPIN?\n< OK\n> AT+CSQ\n< +CSQ: 1,99\n< OK")
        .unwrap()
        .spawn();
    tx.send("AT+CPIN=1234\r");
    assert_eq!(rx.read_until(b"OK\r\n", T), b"\r\nOK\r\n");
    tx.send("AT+CSQ\r");
    assert_eq!(rx.read_until(b"OK\r\n", T), b"\r\n+CSQ: 1,99\r\n\r\nOK\r\n");
    let errs = h.finish().unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("line 1") && errs[0].contains("AT+CPIN=1234"),
        "{errs:?}"
    );
}

#[test]
fn timeout_and_unconsumed_steps() {
    let (_rx, mut tx, h) = Script::parse("timeout 100ms\n> AT\n< OK\n> AT+CSQ\n< OK")
        .unwrap()
        .spawn();
    tx.send("AT\r");
    let errs = h.finish().unwrap_err();
    assert!(
        errs[0].contains("line 4") && errs[0].contains("timed out"),
        "{errs:?}"
    );
    assert!(
        errs[1].contains("unconsumed") && errs[1].contains("line 5"),
        "{errs:?}"
    );
}

#[test]
fn abort_reports_remaining_steps() {
    let (_rx, _tx, h) = Script::parse("> AT\n< OK").unwrap().spawn();
    std::thread::sleep(Duration::from_millis(30));
    let errs = h.abort().unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| e.contains("unconsumed")));
}

#[test]
fn trailing_urcs_run_without_host_input() {
    let (mut rx, mut tx, h) = Script::parse("> AT\n< OK\n~ 20ms\n! RDY\n! +CFUN: 1")
        .unwrap()
        .spawn();
    tx.send("AT\r");
    assert_eq!(
        rx.read_until(b"+CFUN: 1\r\n", T),
        b"\r\nOK\r\n\r\nRDY\r\n\r\n+CFUN: 1\r\n"
    );
    assert!(h.wait_done(T));
    assert_eq!(h.finish(), Ok(()));
}
