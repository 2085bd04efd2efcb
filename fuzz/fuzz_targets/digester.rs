//! Feeds arbitrary bytes from the modem's UART through the AT digester
//! (URC / response / echo framing). It must never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::digest_bytes(data);
});
