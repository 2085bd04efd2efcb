//! Byte-exact exchanges with the scripted mock modem: what the driver sends, and how it copes
//! with real-log quirks (echo on at boot, URCs between lines, fragmentation).

mod support;

use mock_modem::Script;
use quectel::asynch::SimStatus;
use quectel::model::Model;

const INIT: &str = r#"
# The modem boots with echo on.
frag 1
! RDY
echo on
> AT
< OK
> ATE0
< OK
echo off
> AT+CMEE=2
< OK
> ATI
< Quectel
! +QIURC: "pdpdeact",1
<raw "\r\nBG96\r\nRevision: BG96MAR02A07M1G\r\n\r\nOK\r\n"
> AT+CGSN
< 866425030000001
< OK
> AT+CREG=2
< OK
> AT+CGREG=2
< OK
> AT+CEREG=2
< ERROR
> AT+CPIN?
! +QIND: "csq",20,99
< +CPIN: SIM PIN
< OK
"#;

#[test]
fn init_sequence_is_byte_exact_and_survives_quirks() {
    let script = Script::parse(INIT).unwrap();
    let (rx, tx, handle) = script.spawn();
    let (id, status, state) = support::with_endpoints(rx, tx, async |m| {
        let id = m.init().await.unwrap();
        let status = m.sim().status().await.unwrap();
        (id, status, m.state())
    });
    assert_eq!(id.model, Model::Bg96);
    assert_eq!(id.imei.as_str(), "866425030000001");
    assert_eq!(status, SimStatus::PinRequired);
    assert_eq!(
        state.pdp_deact_events, 1,
        "URC inside ATI's answer was lost"
    );
    assert!(state.boots >= 1);
    handle.finish().unwrap();
}
