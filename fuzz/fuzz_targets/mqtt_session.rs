//! An MQTT session (CONNECT, re-subscription, `serve` with an outbox) against a
//! broker that sends arbitrary bytes, twice on the same session. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::mqtt_session(data);
});
