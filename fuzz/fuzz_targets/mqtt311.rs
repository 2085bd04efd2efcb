//! The MQTT 3.1.1 decoder, and a 3.1.1 session (CONNECT, subscribe, publish, poll, a second
//! connection) against a broker that sends arbitrary bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::mqtt311(data);
});
