//! Aliyun dynamic registration (MQTT 3.1.1 exchange and JSON answer) against a
//! platform that sends arbitrary bytes; stored credentials records. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::aliyun_register(data);
});
