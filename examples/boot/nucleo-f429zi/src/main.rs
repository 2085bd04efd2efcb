//! The embassy-boot bootloader of the OTA-capable NUCLEO-F429ZI example.
//!
//! At every reset it reads the state partition: after the application asked for an update
//! (`mark_updated`) it swaps the DFU and ACTIVE partitions sector by sector (power-fail safe:
//! the progress is recorded in the state partition), and when the swapped-in image did not
//! confirm itself (`mark_booted`) before the next reset, it swaps back (rollback). Then it starts
//! the application in ACTIVE. Layout: `examples/nucleo-f429zi/partitions.x`.
//!
//! ACTIVE and DFU are in the 128 KiB sectors, the state in a 16 KiB one: each is a partition of
//! the embassy-stm32 flash region with its erase size, so the swap unit is 128 KiB, copied
//! through a 4 KiB buffer. A product should also start the independent watchdog here so that a
//! new image that hangs before it confirms is reset, and therefore rolled back; the example
//! application does not feed a watchdog, so this bootloader does not start one.

#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::{entry, exception};
use embassy_boot_stm32::{BootLoader, BootLoaderConfig};
use embassy_stm32::flash::{BANK1_REGION3, Flash};
use embassy_sync::blocking_mutex::Mutex;

/// The copy buffer of the swap (the swap unit, 128 KiB, must be a multiple of it).
const BUFFER_SIZE: usize = 4096;

#[entry]
fn main() -> ! {
    let p = embassy_stm32::init(Default::default());
    let layout = Flash::new_blocking(p.FLASH).into_blocking_regions();
    let state = Mutex::new(RefCell::new(layout.bank1_region1));
    let slots = Mutex::new(RefCell::new(layout.bank1_region3));
    let config = BootLoaderConfig::from_linkerfile_blocking(&slots, &slots, &state);
    let active_start = BANK1_REGION3.base() + config.active.offset();
    let bl = BootLoader::prepare::<_, _, _, BUFFER_SIZE>(config);
    // SAFETY: ACTIVE holds an application linked at `active_start` (memory-ota.x).
    unsafe { bl.load(active_start) }
}

#[unsafe(no_mangle)]
#[cfg_attr(target_os = "none", unsafe(link_section = ".HardFault.user"))]
unsafe extern "C" fn HardFault() {
    cortex_m::peripheral::SCB::sys_reset();
}

#[exception]
unsafe fn DefaultHandler(_: i16) -> ! {
    cortex_m::peripheral::SCB::sys_reset();
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset();
}
