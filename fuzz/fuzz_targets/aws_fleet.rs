//! AWS IoT fleet provisioning answers (certificate, thing, rejection JSON) into
//! buffers of any size; stored identity records. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::aws_fleet(data);
});
