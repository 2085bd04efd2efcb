//! Commands with arguments: each is written (one printable `AT` line, nothing
//! injected) and arbitrary bytes are parsed as its reply, whole and in random pieces (the same
//! result either way). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::command_replies(data);
});
