//! The embassy-boot bootloader of the OTA-capable nRF52840-DK example.
//!
//! At every reset it reads the state partition: after the application asked for an update
//! (`mark_updated`) it swaps the DFU and ACTIVE partitions page by page (power-fail safe: the
//! progress is recorded in the state partition), and when the swapped-in image did not confirm
//! itself (`mark_booted`) before the next reset, it swaps back (rollback). Then it starts the
//! application in ACTIVE. Layout: `examples/nrf52840-dk/partitions.x`.
//!
//! A product should also start the watchdog here (embassy-boot-nrf's `WatchdogFlash`) so that
//! a new image that hangs before it confirms is reset, and therefore rolled back; the example
//! application does not feed a watchdog, so this bootloader does not start one.

#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::{entry, exception};
use embassy_boot_nrf::{BootLoader, BootLoaderConfig};
use embassy_nrf::nvmc::Nvmc;
use embassy_sync::blocking_mutex::Mutex;

#[entry]
fn main() -> ! {
    let p = embassy_nrf::init(Default::default());
    let flash = Mutex::new(RefCell::new(Nvmc::new(p.NVMC)));
    let config = BootLoaderConfig::from_linkerfile_blocking(&flash, &flash, &flash);
    let active_offset = config.active.offset();
    let bl: BootLoader = BootLoader::prepare(config);
    // SAFETY: ACTIVE holds an application linked at `active_offset` (memory-ota.x).
    unsafe { bl.load(active_offset) }
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
