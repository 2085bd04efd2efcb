//! Byte-exact tests of the behavioural simulator.

use std::time::Duration;

use quectel_mock::{HostRx, HostTx, MockModem, Model, ModemHandle, Pacing, SimState, reg};

const T: Duration = Duration::from_secs(3);

/// Send a command and read until the expected bytes have all arrived, returning
/// what was read (asserting nothing else).
/// `until == b"\r\n"` means "until a final result code line".
fn xfer(rx: &mut HostRx, tx: &mut HostTx, cmd: &str, until: &[u8]) -> Vec<u8> {
    tx.send(cmd);
    if until != b"\r\n" {
        return rx.read_until(until, T);
    }
    let mut got = Vec::new();
    loop {
        let more = rx.read_until(b"\r\n", T);
        if more.is_empty() {
            return got;
        }
        got.extend_from_slice(&more);
        let text = String::from_utf8_lossy(&got);
        let last = text
            .trim_end_matches("\r\n")
            .rsplit("\r\n")
            .next()
            .unwrap_or("");
        if text.ends_with("\r\n")
            && (last == "OK" || last == "ERROR" || last.starts_with("+CME ERROR:"))
        {
            return got;
        }
    }
}

fn quiet(rx: &mut HostRx) -> Vec<u8> {
    rx.read_for(Duration::from_millis(150), T)
}

/// A booted modem (boot URCs consumed), echo off, registration settled.
fn booted(m: MockModem) -> (HostRx, HostTx, ModemHandle) {
    let (mut rx, mut tx, h) = m.spawn();
    let boot = rx.read_until(b"SMS DONE\r\n", T);
    assert!(
        boot.ends_with(b"SMS DONE\r\n"),
        "boot: {:?}",
        String::from_utf8_lossy(&boot)
    );
    assert_eq!(
        xfer(&mut rx, &mut tx, "ATE0\r", b"OK\r\n"),
        b"ATE0\r\r\nOK\r\n"
    );
    (rx, tx, h)
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn echo_on_then_off() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96).boot(None).spawn();
    assert_eq!(xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n"), b"AT\r\r\nOK\r\n");
    assert_eq!(
        xfer(&mut rx, &mut tx, "ATE0\r", b"OK\r\n"),
        b"ATE0\r\r\nOK\r\n"
    );
    assert_eq!(xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n"), b"\r\nOK\r\n");
    assert_eq!(xfer(&mut rx, &mut tx, "ATE1\r", b"OK\r\n"), b"\r\nOK\r\n");
    assert_eq!(
        xfer(&mut rx, &mut tx, "at\r\n", b"OK\r\n"),
        b"at\r\r\nOK\r\n"
    );
    assert!(quiet(&mut rx).is_empty());
    assert_eq!(h.commands(), vec!["AT", "ATE0", "AT", "ATE1", "at"]);
    h.shutdown();
}

#[test]
fn boot_sequence_bg96_and_ec25_and_bg95() {
    let cases: [(Model, &[u8]); 3] = [
        (
            Model::Bg96,
            b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nAPP RDY\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n",
        ),
        (
            Model::Ec25,
            b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n",
        ),
        (
            Model::Bg95,
            b"\r\nRDY\r\n\r\nAPP RDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n",
        ),
    ];
    for (model, want) in cases {
        let (mut rx, _tx, h) = MockModem::new(model).spawn();
        assert_eq!(s(&quiet(&mut rx)), s(want), "{model}");
        h.shutdown();
    }
}

#[test]
fn boot_with_pin_stops_at_sim_pin_and_boot_delay() {
    let (mut rx, _tx, h) = MockModem::new(Model::Bg96)
        .pin(Some("1234"))
        .boot(Some(Duration::from_millis(200)))
        .spawn();
    assert!(
        rx.read_for(Duration::from_millis(100), Duration::from_millis(100))
            .is_empty()
    );
    assert_eq!(
        s(&quiet(&mut rx)),
        "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nAPP RDY\r\n\r\n+CPIN: SIM PIN\r\n"
    );
    h.shutdown();
}

#[test]
fn ati_for_two_models_and_revisions() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96).boot(None).echo(false).spawn();
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "ATI\r", b"OK\r\n")),
        "\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n"
    );
    h.shutdown();
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg95).boot(None).echo(false).spawn();
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "ATI\r", b"OK\r\n")),
        "\r\nQuectel\r\nBG95-M3\r\nRevision: BG95M3LAR02A03\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CGMR\r", b"OK\r\n")),
        "\r\nBG95M3LAR02A03\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QGMR\r", b"OK\r\n")),
        "\r\nBG95M3LAR02A03_01.204.01.204\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CGSN\r", b"OK\r\n")),
        "\r\n861234567890123\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QCCID\r", b"OK\r\n")),
        "\r\n+QCCID: 89860025128306012474\r\n\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn cpin_flow_with_urc_after_ok() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .pin(Some("1234"))
        .search_time(Duration::from_millis(50))
        .spawn();
    rx.read_until(b"SIM PIN\r\n", T);
    tx.send("ATE0\r");
    rx.read_until(b"OK\r\n", T);
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"OK\r\n")),
        "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CIMI\r", b"\r\n")),
        "\r\n+CME ERROR: 11\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN=0000\r", b"\r\n")),
        "\r\n+CME ERROR: 16\r\n"
    );
    assert_eq!(
        s(&xfer(
            &mut rx,
            &mut tx,
            "AT+CPIN=\"1234\"\r",
            b"SMS DONE\r\n"
        )),
        "\r\nOK\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"OK\r\n")),
        "\r\n+CPIN: READY\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CIMI\r", b"OK\r\n")),
        "\r\n460023210226023\r\n\r\nOK\r\n"
    );
    assert!(h.wait_for(T, |st| st.reg_stat == reg::HOME));
    h.shutdown();
}

#[test]
fn three_wrong_pins_then_puk() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Ec25)
        .pin(Some("1234"))
        .puk("87654321")
        .echo(false)
        .spawn();
    rx.read_until(b"SIM PIN\r\n", T);
    for _ in 0..3 {
        assert_eq!(
            s(&xfer(&mut rx, &mut tx, "AT+CPIN=1111\r", b"\r\n")),
            "\r\n+CME ERROR: 16\r\n"
        );
    }
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"OK\r\n")),
        "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN=1234\r", b"\r\n")),
        "\r\n+CME ERROR: 12\r\n"
    );
    let got = xfer(
        &mut rx,
        &mut tx,
        "AT+CPIN=\"87654321\",\"4321\"\r",
        b"SMS DONE\r\n",
    );
    assert_eq!(
        s(&got),
        "\r\nOK\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: PB DONE\r\n\r\n+QIND: SMS DONE\r\n"
    );
    h.shutdown();
}

#[test]
fn cme_error_forms() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .sim(SimState::NotInserted)
        .echo(false)
        .spawn();
    assert!(s(&rx.read_until(b"NOT READY\r\n", T)).ends_with("\r\n+CPIN: NOT READY\r\n"));
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\n+CME ERROR: 10\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CMEE=0\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CMEE=2\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\n+CME ERROR: SIM not inserted\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CMEE?\r", b"OK\r\n")),
        "\r\n+CMEE: 2\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+FOOBAR\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    h.shutdown();
}

#[test]
fn sim_busy_then_ready() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .sim_busy_for(Duration::from_millis(300))
        .echo(false)
        .spawn();
    rx.read_until(b"APP RDY\r\n", T);
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\n+CME ERROR: 14\r\n"
    );
    assert_eq!(
        s(&rx.read_until(b"SMS DONE\r\n", T)),
        "\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    );
    h.shutdown();
}

#[test]
fn registration_progress_with_urcs() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .search_time(Duration::from_millis(300))
        .boot(Some(Duration::from_millis(100)))
        .cell("1A2B", "1A2D101")
        .spawn();
    // Configure URC modes before the SIM comes up: first AT after boot.
    rx.read_until(b"SMS DONE\r\n", T);
    // Registration has already started (searching) before we enable URCs.
    assert_eq!(
        xfer(&mut rx, &mut tx, "ATE0\r", b"OK\r\n"),
        b"ATE0\r\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CREG=1\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CEREG=2\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CEREG?\r", b"OK\r\n")),
        "\r\n+CEREG: 2,2\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CSQ\r", b"OK\r\n")),
        "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+COPS?\r", b"OK\r\n")),
        "\r\n+COPS: 0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&rx.read_until(b",8\r\n", T)),
        "\r\n+CREG: 1\r\n\r\n+CEREG: 1,\"1A2B\",\"1A2D101\",8\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CEREG?\r", b"OK\r\n")),
        "\r\n+CEREG: 2,1,\"1A2B\",\"1A2D101\",8\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+COPS?\r", b"OK\r\n")),
        "\r\n+COPS: 0,0,\"Mock Telecom\",8\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QCSQ\r", b"OK\r\n")),
        "\r\n+QCSQ: \"CAT-M1\",-73,-102,195,-10\r\n\r\nOK\r\n"
    );
    // Test-driven change: roaming.
    h.set_registration(reg::ROAMING);
    assert_eq!(
        s(&rx.read_until(b",8\r\n", T)),
        "\r\n+CREG: 5\r\n\r\n+CEREG: 5,\"1A2B\",\"1A2D101\",8\r\n"
    );
    h.set_registration(reg::SEARCHING);
    assert_eq!(s(&quiet(&mut rx)), "\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n");
    h.shutdown();
}

#[test]
fn ec25_network_strings() {
    let (mut rx, mut tx, h) = booted(MockModem::new(Model::Ec25).search_time(Duration::ZERO));
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QNWINFO\r", b"OK\r\n")),
        "\r\n+QNWINFO: \"FDD LTE\",\"46011\",\"LTE BAND 3\",1850\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CREG=2\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CREG?\r", b"OK\r\n")),
        "\r\n+CREG: 2,1,\"1A2B\",\"1A2D101\",7\r\n\r\nOK\r\n"
    );
    assert!(s(&xfer(&mut rx, &mut tx, "AT+QCSQ\r", b"OK\r\n")).starts_with("\r\n+QCSQ: \"LTE\","));
    h.shutdown();
}

#[test]
fn pdp_activation_and_queries() {
    let (mut rx, mut tx, h) = booted(
        MockModem::new(Model::Bg96)
            .search_time(Duration::ZERO)
            .pdp_activation_time(Duration::from_millis(200)),
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QICSGP=1\r", b"OK\r\n")),
        "\r\n+QICSGP: 1,\"\",\"\",\"\",0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(
            &mut rx,
            &mut tx,
            "AT+QICSGP=1,1,\"UNINET\",\"\",\"\",1\r",
            b"OK\r\n"
        )),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QICSGP=1\r", b"OK\r\n")),
        "\r\n+QICSGP: 1,\"UNINET\",\"\",\"\",1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT?\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    tx.send("AT+QIACT=1\r");
    assert!(
        rx.read_for(Duration::from_millis(100), Duration::from_millis(100))
            .is_empty()
    );
    assert_eq!(s(&rx.read_until(b"OK\r\n", T)), "\r\nOK\r\n");
    let st = h.state();
    assert_eq!(st.active_contexts.len(), 1);
    let ip = st.active_contexts[0].1.clone();
    assert!(ip.starts_with("10."));
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT?\r", b"OK\r\n")),
        format!("\r\n+QIACT: 1,1,1,\"{ip}\"\r\n\r\nOK\r\n")
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CGPADDR=1\r", b"OK\r\n")),
        format!("\r\n+CGPADDR: 1,\"{ip}\"\r\n\r\nOK\r\n")
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CGACT?\r", b"OK\r\n")),
        "\r\n+CGACT: 1,1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIDNSCFG=1\r", b"OK\r\n")),
        "\r\n+QIDNSCFG: 1,\"8.8.8.8\",\"8.8.4.4\"\r\n\r\nOK\r\n"
    );
    // Already active -> ERROR.
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT=1\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT=17\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    // Network drops it.
    h.inject_urc("+QIURC: \"pdpdeact\",1");
    assert_eq!(
        s(&rx.read_until(b"1\r\n", T)),
        "\r\n+QIURC: \"pdpdeact\",1\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT?\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIDEACT=1\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn pdp_failure_and_qigeterror() {
    let (mut rx, mut tx, h) = booted(
        MockModem::new(Model::Bg95)
            .search_time(Duration::ZERO)
            .pdp_fail(Some(561)),
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIGETERROR\r", b"OK\r\n")),
        "\r\n+QIGETERROR: 0,operate successfully\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT=1\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIGETERROR\r", b"OK\r\n")),
        "\r\n+QIGETERROR: 561,open pdp context failed\r\n\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn pdp_fails_when_not_registered_and_ipv6() {
    let (mut rx, mut tx, h) = booted(
        MockModem::new(Model::Ec600n)
            .registration(reg::DENIED)
            .search_time(Duration::ZERO),
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT=1\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QICSGP=8\r", b"\r\n")),
        "\r\nERROR\r\n"
    );
    h.set_registration(reg::HOME);
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QICSGP=2,2,\"v6\"\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QIACT=2\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    let got = s(&xfer(&mut rx, &mut tx, "AT+QIACT?\r", b"OK\r\n"));
    assert!(got.starts_with("\r\n+QIACT: 2,1,2,\"2001:db8::"), "{got}");
    h.shutdown();
}

#[test]
fn cfun_reboot_sequence() {
    let (mut rx, mut tx, h) =
        booted(MockModem::new(Model::Bg96).reboot_pause(Duration::from_millis(50)));
    let got = xfer(&mut rx, &mut tx, "AT+CFUN=1,1\r", b"SMS DONE\r\n");
    assert_eq!(
        s(&got),
        "\r\nOK\r\n\r\nPOWERED DOWN\r\n\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nAPP RDY\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    );
    // Echo is back on after the reboot.
    assert_eq!(xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n"), b"AT\r\r\nOK\r\n");
    assert_eq!(h.state().boots, 2);
    // Crash-style reboot from the test.
    assert_eq!(
        xfer(&mut rx, &mut tx, "ATE0\r", b"OK\r\n"),
        b"ATE0\r\r\nOK\r\n"
    );
    h.reboot();
    assert_eq!(
        s(&rx.read_until(b"SMS DONE\r\n", T)),
        "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\nAPP RDY\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    );
    assert_eq!(xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n"), b"AT\r\r\nOK\r\n");
    h.shutdown();
}

#[test]
fn cfun_levels() {
    let (mut rx, mut tx, h) = booted(MockModem::new(Model::Bg96).search_time(Duration::ZERO));
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CFUN?\r", b"OK\r\n")),
        "\r\n+CFUN: 1\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CFUN=0\r", b"OK\r\n")),
        "\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\n+CME ERROR: 13\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CSQ\r", b"OK\r\n")),
        "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CFUN=1\r", b"SMS DONE\r\n")),
        "\r\nOK\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    );
    assert!(h.wait_for(T, |st| st.reg_stat == reg::HOME));
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CSQ\r", b"OK\r\n")),
        "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn fragmentation_to_one_byte_keeps_bytes() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .boot(None)
        .pacing(Pacing {
            chunk: 1,
            delay: Duration::from_millis(1),
        })
        .spawn();
    let got = xfer(&mut rx, &mut tx, "ATI\r", b"OK\r\n");
    assert_eq!(
        s(&got),
        "ATI\r\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n"
    );
    h.shutdown();
}

#[test]
fn faults_garbage_drop_and_silence() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96)
        .boot(None)
        .echo(false)
        .garbage_before_response(b"\x00\xff")
        .spawn();
    assert_eq!(
        xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n"),
        b"\x00\xff\r\nOK\r\n"
    );
    h.set_garbage(b"");
    h.set_drop_final_results(true);
    tx.send("AT+CSQ\r");
    assert_eq!(s(&quiet(&mut rx)), "\r\n+CSQ: 99,99\r\n");
    h.set_drop_final_results(false);
    h.set_silent(true);
    tx.send("AT\r");
    assert!(quiet(&mut rx).is_empty());
    h.set_silent(false);
    h.inject_raw(b"\xde\xad");
    assert_eq!(quiet(&mut rx), b"\xde\xad");
    h.shutdown();
}

#[test]
fn odd_input_never_panics() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96).boot(None).echo(false).spawn();
    tx.send(vec![b'A'; 5000]);
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "\r", b"ERROR\r\n")),
        "\r\nERROR\r\n"
    );
    tx.send(b"\n\n\xff\xfe\x00garbage\r".as_slice());
    tx.send("AT+CPIN=\"\r");
    tx.send("AT+CGDCONT=99\r");
    tx.send("AT=\r");
    let got = s(&quiet(&mut rx));
    assert!(!got.contains("OK"), "{got:?}");
    assert_eq!(s(&xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n")), "\r\nOK\r\n");
    h.shutdown();
}

#[test]
fn qpowd_then_silent() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Ec21).boot(None).echo(false).spawn();
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+QPOWD=1\r", b"DOWN\r\n")),
        "\r\nOK\r\n\r\nPOWERED DOWN\r\n"
    );
    tx.send("AT\r");
    assert!(quiet(&mut rx).is_empty());
    assert!(!h.state().powered);
    h.shutdown();
}

#[test]
fn remove_sim_emits_not_ready() {
    let (mut rx, mut tx, h) = booted(MockModem::new(Model::Bg96).search_time(Duration::ZERO));
    h.remove_sim();
    assert_eq!(s(&quiet(&mut rx)), "\r\n+CPIN: NOT READY\r\n");
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CPIN?\r", b"\r\n")),
        "\r\n+CME ERROR: 10\r\n"
    );
    h.shutdown();
}

#[test]
fn wire_counters_and_transcript() {
    let (mut rx, mut tx, h) = MockModem::new(Model::Bg96).boot(None).spawn();
    xfer(&mut rx, &mut tx, "AT\r", b"OK\r\n");
    let w = h.wire().unwrap();
    assert_eq!(w.host_transcript(), b"AT\r");
    assert_eq!(w.host_bytes(), 3);
    assert_eq!(w.modem_transcript(), b"AT\r\r\nOK\r\n");
    assert_eq!(w.modem_bytes(), 9);
    h.shutdown();
}

#[test]
fn concatenated_command_lines_run_in_order_and_stop_at_the_first_error() {
    let (mut rx, mut tx, h) = booted(MockModem::new(Model::Bg96).search_time(Duration::ZERO));
    // Information lines of each command in order, one final result code.
    assert_eq!(
        s(&xfer(
            &mut rx,
            &mut tx,
            "AT+CMEE=1;+CMEE?;+CEREG?\r",
            b"OK\r\n"
        )),
        "\r\n+CMEE: 1\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    );
    // A `;` inside quotes is part of the argument, not a separator.
    assert_eq!(
        s(&xfer(
            &mut rx,
            &mut tx,
            "AT+QSSLCFG=\"cacert\",1,\"a;b.pem\";+QSSLCFG=\"cacert\",1\r",
            b"OK\r\n"
        )),
        "\r\n+QSSLCFG: \"cacert\",1,\"a;b.pem\"\r\n\r\nOK\r\n"
    );
    // The first failure ends the line: CMEE=0 after it is not run.
    assert_eq!(
        s(&xfer(
            &mut rx,
            &mut tx,
            "AT+CMEE=2;+FOOBAR;+CMEE=0\r",
            b"\r\n"
        )),
        "\r\nERROR\r\n"
    );
    assert_eq!(
        s(&xfer(&mut rx, &mut tx, "AT+CMEE?\r", b"OK\r\n")),
        "\r\n+CMEE: 2\r\n\r\nOK\r\n"
    );
    // One command line, one log entry.
    assert_eq!(h.commands().last().map(String::as_str), Some("AT+CMEE?"));
    assert_eq!(h.commands().len(), 5);
    h.shutdown();
}
