//! The critical section the driver's own cells take.
//!
//! `critical_section::with` with the cell borrowed inside it (`Mutex::borrow`), rather than
//! embassy-sync's `Mutex::lock`, which LLVM keeps as one out-of-line function per cell and
//! closure. Measured in row 3 of `scripts/footprint.sh`: 184 B smaller. (The acquire and
//! release made out-of-line functions, called from every section, measured 88 B larger: with
//! `cortex-m`'s single-core implementation each is a couple of instructions, which a call and
//! the registers saved around it outweigh.)

use critical_section::CriticalSection;

/// Runs `f` in a critical section.
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(CriticalSection<'_>) -> R) -> R {
    critical_section::with(f)
}
