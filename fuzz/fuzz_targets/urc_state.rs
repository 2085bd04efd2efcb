//! URC lines parsed and applied to the driver state and a pool of socket slots,
//! with the effects a user relies on checked (reboot, `pdpdeact`, `closed`, `recv`, open results). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quectel::__fuzz::urc_state(data);
});
