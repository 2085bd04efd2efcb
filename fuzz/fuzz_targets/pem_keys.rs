//! PEM certificates and keys (`quectel::pem`) and P-256 keys from SEC1 DER or a
//! scalar. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::pem_keys(data);
});
