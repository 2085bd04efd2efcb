//! Feeds arbitrary bytes to the parsers of the modem's responses and URCs
//! (`+CREG:`, `+QIURC:`, `+QMTRECV:`, ...). They must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::parse_responses(data);
});
