//! The runner's intake path (`RunnerParts::ingest`) with socket reads whose
//! payloads land in the socket rings, bytes outside commands, reads of the rings and sockets
//! opened and freed: ring bytes never exceed what was announced, nothing is lost between ring
//! and reader, the command bookkeeping stays consistent. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::intake(data);
});
