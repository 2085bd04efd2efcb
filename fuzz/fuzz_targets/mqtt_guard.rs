//! The MQTT receive guard (drops packets larger than minimq's buffer) against a
//! model of the packet framing, with arbitrary pieces and reads dropped half-way. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::mqtt_guard(data);
});
