//! The QEMU `mps2-an386` board layer: what a HAL would give a real board.
//!
//! * UART0 (CMSDK APB UART at 0x4000_4000, RX interrupt = IRQ 0) as
//!   `embedded_io_async::{Read, Write}`: the RX interrupt moves bytes into a 2 KiB pipe and wakes
//!   the reader; TX is blocking (a byte at a time, as fast as QEMU takes them).
//! * An embassy-time driver: `now()` from the free-running 32-bit CMSDK TIMER0 (25 MHz,
//!   1 MHz ticks), expiry checked by a 1 kHz SysTick interrupt (a generic timer queue).
//! * Exit through semihosting (QEMU's exit status is the verdict); a HardFault or an unexpected
//!   interrupt exits with 1.

use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{debug, hprintln};
use critical_section::{CriticalSection, Mutex};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use embassy_time_queue_utils::Queue;

/// Core and peripheral clock of the MPS2 FPGA images (QEMU: 25 MHz).
const CLOCK_HZ: u32 = 25_000_000;

// --- registers -----------------------------------------------------------------------------

const UART0: usize = 0x4000_4000;
const UART_DATA: usize = UART0;
const UART_STATE: usize = UART0 + 0x4; // bit0 TX full, bit1 RX full
const UART_CTRL: usize = UART0 + 0x8; // bit0 TX en, bit1 RX en, bit3 RX interrupt en
const UART_INTSTATUS: usize = UART0 + 0xC; // write 1 to bit1: acknowledge RX
const UART_BAUDDIV: usize = UART0 + 0x10;
const CTRL_TX_RX: u32 = 0b0011;
const CTRL_RX_INT: u32 = 1 << 3;
/// QEMU's interrupt line of UART0 RX on mps2-an386.
const UART0_RX_IRQ: u16 = 0;

const TIMER0: usize = 0x4000_0000;
const TIMER_CTRL: usize = TIMER0;
const TIMER_VALUE: usize = TIMER0 + 0x4;
const TIMER_RELOAD: usize = TIMER0 + 0x8;

fn rd(addr: usize) -> u32 {
    // SAFETY: a memory-mapped peripheral register of the mps2-an386 machine.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn wr(addr: usize, value: u32) {
    // SAFETY: a memory-mapped peripheral register of the mps2-an386 machine.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

// --- init ----------------------------------------------------------------------------------

/// Starts TIMER0 and SysTick (time), sets UART0 up with its RX interrupt.
pub fn init() {
    let mut p = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals taken"));

    // Free-running 32-bit down-counter at 25 MHz: the time base.
    wr(TIMER_RELOAD, u32::MAX);
    wr(TIMER_VALUE, u32::MAX);
    wr(TIMER_CTRL, 1);
    // 1 kHz SysTick: only checks the timer queue.
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(CLOCK_HZ / 1000 - 1);
    p.SYST.clear_current();
    p.SYST.enable_interrupt();
    p.SYST.enable_counter();

    // UART0: the baud divider only matters to QEMU's sanity check (>= 16).
    wr(UART_BAUDDIV, CLOCK_HZ / 115_200);
    wr(UART_CTRL, CTRL_TX_RX | CTRL_RX_INT);
    // SAFETY: the handler (`DefaultHandler`) and the pipe it fills are ready.
    unsafe { cortex_m::peripheral::NVIC::unmask(Irq(UART0_RX_IRQ)) };
}

#[derive(Clone, Copy)]
struct Irq(u16);

// SAFETY: a valid external interrupt number of the machine.
unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

// --- exit ----------------------------------------------------------------------------------

/// Ends QEMU with status 0 (pass) or 1 (fail).
pub fn exit(pass: bool) -> ! {
    debug::exit(if pass {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

fn fail(why: &str) -> ! {
    hprintln!("[fw] FAIL: {}", why);
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("[fw] HardFault: {:?}", frame);
    exit(false)
}

// --- UART ----------------------------------------------------------------------------------

/// Bytes received and not yet read.
static RX_PIPE: Pipe<CriticalSectionRawMutex, 2048> = Pipe::new();
/// The RX interrupt is off because the pipe was full (QEMU then holds the next bytes back).
static RX_PAUSED: AtomicBool = AtomicBool::new(false);
/// UART bytes read by the driver (modem -> MCU) and written (MCU -> modem), for the report.
static RX_BYTES: AtomicU32 = AtomicU32::new(0);
static TX_BYTES: AtomicU32 = AtomicU32::new(0);

/// UART bytes so far: (received, sent).
#[allow(dead_code)]
pub fn uart_bytes() -> (u32, u32) {
    (
        RX_BYTES.load(Ordering::Relaxed),
        TX_BYTES.load(Ordering::Relaxed),
    )
}

/// Moves received bytes into the pipe while it has room; pauses the RX interrupt when it is
/// full (the byte stays in the UART, so nothing is lost).
fn drain_rx() {
    while rd(UART_STATE) & 0b10 != 0 {
        if RX_PIPE.free_capacity() == 0 {
            RX_PAUSED.store(true, Ordering::Relaxed);
            wr(UART_CTRL, CTRL_TX_RX);
            return;
        }
        let byte = rd(UART_DATA) as u8;
        let _ = RX_PIPE.try_write(&[byte]);
    }
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == UART0_RX_IRQ as i16 {
        // Acknowledge first: a byte arriving during the drain then raises the IRQ again.
        wr(UART_INTSTATUS, 0b10);
        drain_rx();
    } else {
        hprintln!("[fw] unexpected interrupt {}", irqn);
        exit(false);
    }
}

/// Receive half of UART0.
pub struct UartRx;

/// Transmit half of UART0.
pub struct UartTx;

impl embedded_io_async::ErrorType for UartRx {
    type Error = Infallible;
}

impl embedded_io_async::ErrorType for UartTx {
    type Error = Infallible;
}

impl embedded_io_async::Read for UartRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = RX_PIPE.read(buf).await;
        RX_BYTES.fetch_add(n as u32, Ordering::Relaxed);
        if RX_PAUSED.load(Ordering::Relaxed) {
            // There is room again: take what waits in the UART, then let it interrupt again.
            critical_section::with(|_| {
                RX_PAUSED.store(false, Ordering::Relaxed);
                wr(UART_CTRL, CTRL_TX_RX | CTRL_RX_INT);
                drain_rx();
            });
        }
        Ok(n)
    }
}

impl embedded_io_async::Write for UartTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            while rd(UART_STATE) & 0b01 != 0 {}
            wr(UART_DATA, u32::from(b));
        }
        TX_BYTES.fetch_add(buf.len() as u32, Ordering::Relaxed);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

// --- time ----------------------------------------------------------------------------------

/// TIMER0 counts (25 MHz) since start.
#[allow(dead_code)]
pub fn now_counts() -> u64 {
    critical_section::with(|cs| {
        TIME.now_cs(cs);
        TIME.counts.borrow(cs).get()
    })
}

struct QemuTime {
    /// TIMER0 counts since start (25 MHz).
    counts: Mutex<Cell<u64>>,
    /// TIMER0's value at the last reading.
    last: Mutex<Cell<u32>>,
    queue: Mutex<RefCell<Queue>>,
}

impl QemuTime {
    fn now_cs(&self, cs: CriticalSection<'_>) -> u64 {
        let value = rd(TIMER_VALUE);
        let last = self.last.borrow(cs).replace(value);
        // A down-counter: elapsed = last - value (mod 2^32); read at least every 171 s (SysTick).
        let counts = self.counts.borrow(cs).get() + u64::from(last.wrapping_sub(value));
        self.counts.borrow(cs).set(counts);
        counts / u64::from(CLOCK_HZ / 1_000_000)
    }
}

impl embassy_time_driver::Driver for QemuTime {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_cs(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow(cs).borrow_mut();
            queue.schedule_wake(at, waker);
            // Wakes what is already due; the rest waits for SysTick.
            queue.next_expiration(self.now_cs(cs));
        })
    }
}

embassy_time_driver::time_driver_impl!(static TIME: QemuTime = QemuTime {
    counts: Mutex::new(Cell::new(0)),
    last: Mutex::new(Cell::new(u32::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let now = TIME.now_cs(cs);
        TIME.queue.borrow(cs).borrow_mut().next_expiration(now);
    });
}
