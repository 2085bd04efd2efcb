//! AWS OTA: stream data blocks and rejections (CBOR), job documents (JSON), GetStream
//! requests into buffers of any size, code-signing certificates. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::aws_ota(data);
});
