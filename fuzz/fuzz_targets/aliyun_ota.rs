//! Aliyun OTA: the upgrade message, HTTP response heads, URLs and whole range fetches against
//! a platform and a file server that send arbitrary bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::aliyun_ota(data);
});
