//! Board layer and application steps shared by the footprint binaries (`src/bin/row*.rs`).
//!
//! This is a size-measurement firmware, not an application: it is built by
//! `scripts/footprint.sh` and never flashed. It is still complete and honest firmware, so that
//! the linker keeps exactly what a real product keeps:
//!
//! * the UART is the nRF52840's UART0 as volatile MMIO (interrupt-driven receive into a ring,
//!   blocking transmit), so nothing the modem might answer is known to the compiler;
//! * time is an `embassy-time` driver on SysTick (1 kHz) with embassy's integrated timer queue;
//! * the executor is `embassy-executor` (thread mode); every task future lives in its static
//!   task storage, and every driver buffer is in a `static` cell, so `.bss` shows the real RAM;
//! * results are consumed through `core::hint::black_box` and a GPIO write, never dropped.
//!
//! Buffers: `quectel::asynch::Resources` with one socket ([`SOCKETS`]; N = 256 and R = 2048 are
//! the defaults), as every row uses one connection; MQTT
//! uses [`MQTT_BUFFER`] bytes with [`MQTT_RX`] for receiving; MCU TLS uses `TlsBuffers`'
//! defaults.
#![no_std]

use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use core::future::poll_fn;
use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};
use core::task::{Poll, Waker};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{NVIC, SYST};
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_executor::Spawner;
use embassy_sync::waitqueue::AtomicWaker;
use embassy_time::{Duration, Timer, with_timeout};
use embedded_io_async::{Read, Write};
use quectel::asynch::{self, Apn, Config, Remote, Resources, SimStatus};
use static_cell::ConstStaticCell;

/// Ingress (line) buffer size (`Resources`' default).
pub const N: usize = 256;
/// Socket slots: every row uses one connection (issue 15 measures the row with one socket;
/// the crate's default is 2).
pub const SOCKETS: usize = 1;
/// Each socket's receive and transmit ring (`Resources`' default).
pub const RING: usize = 2048;
/// The modem handle of this firmware.
pub type Modem = asynch::Modem<'static>;
/// The runner of this firmware.
pub type Runner = asynch::Runner<'static, UartRx, UartTx>;

/// Size of the MQTT (minimq) buffer: receive part plus transmit/in-flight part.
pub const MQTT_BUFFER: usize = 4096;
/// Receive part of [`MQTT_BUFFER`]: the largest inbound MQTT packet.
pub const MQTT_RX: usize = 2048;

/// Test PKI (P-256, generated with openssl for this measurement only; see certs/README.md).
pub mod certs {
    /// CA certificate, PEM (uploaded to the modem).
    pub const CA_PEM: &[u8] = include_bytes!("../certs/ca.pem");
    /// Device certificate, PEM.
    pub const DEVICE_PEM: &[u8] = include_bytes!("../certs/device.pem");
    /// Device key, PEM (SEC1).
    pub const KEY_PEM: &[u8] = include_bytes!("../certs/device.key.pem");
    /// CA certificate, DER (MCU TLS).
    pub const CA_DER: &[u8] = include_bytes!("../certs/ca.der");
    /// Device certificate, DER.
    pub const DEVICE_DER: &[u8] = include_bytes!("../certs/device.der");
    /// Device key, DER (SEC1).
    pub const KEY_DER: &[u8] = include_bytes!("../certs/device.key.der");
}

/// Broker / server used by the rows.
pub const HOST: &str = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com";
/// Client id (AWS IoT: the thing name).
pub const CLIENT_ID: &str = "861234567890123";

// --- registers (nRF52840) --------------------------------------------------------------------

const UART0: usize = 0x4000_2000;
const UART_STARTRX: usize = UART0;
const UART_STARTTX: usize = UART0 + 0x008;
const UART_RXDRDY: usize = UART0 + 0x108;
const UART_TXDRDY: usize = UART0 + 0x11C;
const UART_INTENSET: usize = UART0 + 0x304;
const UART_ENABLE: usize = UART0 + 0x500;
const UART_PSELTXD: usize = UART0 + 0x50C;
const UART_PSELRXD: usize = UART0 + 0x514;
const UART_RXD: usize = UART0 + 0x518;
const UART_TXD: usize = UART0 + 0x51C;
const UART_BAUDRATE: usize = UART0 + 0x524;
/// UARTE0_UART0 interrupt number.
const UART0_IRQ: u16 = 2;

const GPIO_P0: usize = 0x5000_0000;
const GPIO_OUTSET: usize = GPIO_P0 + 0x508;
const GPIO_OUTCLR: usize = GPIO_P0 + 0x50C;

/// Core clock (SysTick source).
const CORE_HZ: u32 = 64_000_000;

fn rd(addr: usize) -> u32 {
    // SAFETY: a peripheral register of this MCU.
    unsafe { read_volatile(addr as *const u32) }
}

fn wr(addr: usize, v: u32) {
    // SAFETY: a peripheral register of this MCU.
    unsafe { write_volatile(addr as *mut u32, v) }
}

// --- UART ------------------------------------------------------------------------------------

const RX_RING: usize = 256;

struct Ring {
    buf: [u8; RX_RING],
    head: usize,
    len: usize,
}

static RX: Mutex<RefCell<Ring>> = Mutex::new(RefCell::new(Ring {
    buf: [0; RX_RING],
    head: 0,
    len: 0,
}));
static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// UART receive half (interrupt-driven ring).
pub struct UartRx(());
/// UART transmit half (blocking, byte by byte).
pub struct UartTx(());

fn uart_init() -> (UartRx, UartTx) {
    wr(UART_PSELTXD, 6);
    wr(UART_PSELRXD, 8);
    wr(UART_BAUDRATE, 0x01D7_E000); // 115200
    wr(UART_ENABLE, 4);
    wr(UART_STARTRX, 1);
    wr(UART_STARTTX, 1);
    wr(UART_INTENSET, 1 << 2); // RXDRDY
    // SAFETY: the handler below is ready before the interrupt is unmasked.
    unsafe { NVIC::unmask(Irq(UART0_IRQ)) };
    (UartRx(()), UartTx(()))
}

#[derive(Clone, Copy)]
struct Irq(u16);
// SAFETY: a valid interrupt number of this MCU.
unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

fn uart_irq() {
    // Acknowledge first, then drain: a byte arriving in between raises the event again.
    while rd(UART_RXDRDY) != 0 {
        wr(UART_RXDRDY, 0);
        let b = rd(UART_RXD) as u8;
        critical_section::with(|cs| {
            let mut r = RX.borrow_ref_mut(cs);
            if r.len < RX_RING {
                let i = (r.head + r.len) % RX_RING;
                r.buf[i] = b;
                r.len += 1;
            }
        });
    }
    RX_WAKER.wake();
}

/// cortex-m-rt sends every device interrupt here (no PAC).
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == UART0_IRQ as i16 {
        uart_irq();
    }
}

impl embedded_io_async::ErrorType for UartRx {
    type Error = Infallible;
}

impl Read for UartRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        poll_fn(|cx| {
            RX_WAKER.register(cx.waker());
            let n = critical_section::with(|cs| {
                let mut r = RX.borrow_ref_mut(cs);
                let n = r.len.min(buf.len());
                for b in buf.iter_mut().take(n) {
                    *b = r.buf[r.head];
                    r.head = (r.head + 1) % RX_RING;
                }
                r.len -= n;
                n
            });
            if n == 0 && !buf.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(Ok(n))
            }
        })
        .await
    }
}

impl embedded_io_async::ErrorType for UartTx {
    type Error = Infallible;
}

impl Write for UartTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            wr(UART_TXD, u32::from(b));
            while rd(UART_TXDRDY) == 0 {}
            wr(UART_TXDRDY, 0);
        }
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

// --- time driver: SysTick at 1 kHz, integrated timer queue ------------------------------------

/// Ticks of `embassy-time` per SysTick interrupt (tick-hz-1_000_000, 1 ms period).
const TICKS_PER_MS: u64 = 1_000;

struct SysTickDriver {
    ms: Mutex<Cell<u64>>,
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<embassy_time_queue_utils::Queue>>,
}

impl SysTickDriver {
    fn now_cs(&self, cs: CriticalSection<'_>) -> u64 {
        let ms = self.ms.borrow(cs).get();
        // Sub-millisecond part from the down-counting current value.
        let reload = CORE_HZ / 1000 - 1;
        let elapsed = u64::from(reload - SYST::get_current().min(reload));
        ms * TICKS_PER_MS + elapsed * TICKS_PER_MS / u64::from(CORE_HZ / 1000)
    }

    fn expire(&self, cs: CriticalSection<'_>) {
        let now = self.now_cs(cs);
        let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
        self.alarm.borrow(cs).set(next);
    }
}

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_cs(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            if self.queue.borrow_ref_mut(cs).schedule_wake(at, waker) {
                self.expire(cs);
            }
        })
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ms: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(embassy_time_queue_utils::Queue::new())),
});

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ms = DRIVER.ms.borrow(cs);
        ms.set(ms.get() + 1);
        if DRIVER.now_cs(cs) >= DRIVER.alarm.borrow(cs).get() {
            DRIVER.expire(cs);
        }
    });
}

fn time_init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

// --- hardware RNG (MCU TLS) ------------------------------------------------------------------

/// The nRF52840 RNG as a `rand_core` 0.6 `CryptoRng` (bias correction on).
#[cfg(feature = "mcu-tls")]
pub struct HwRng(());

#[cfg(feature = "mcu-tls")]
impl HwRng {
    const BASE: usize = 0x4000_D000;

    /// Starts the generator.
    pub fn new() -> Self {
        wr(Self::BASE + 0x504, 1); // CONFIG.DERCEN
        wr(Self::BASE, 1); // TASKS_START
        Self(())
    }

    fn byte(&mut self) -> u8 {
        while rd(Self::BASE + 0x100) == 0 {} // EVENTS_VALRDY
        wr(Self::BASE + 0x100, 0);
        rd(Self::BASE + 0x508) as u8 // VALUE
    }
}

#[cfg(feature = "mcu-tls")]
impl Default for HwRng {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "mcu-tls")]
impl rand_core::RngCore for HwRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.byte();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(feature = "mcu-tls")]
impl rand_core::CryptoRng for HwRng {}

// --- panic: halt (panic = "abort", no message formatting) ------------------------------------

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    loop {
        cortex_m::asm::wfi();
    }
}

// --- start-up --------------------------------------------------------------------------------

/// The driver's buffers: `Resources` with one socket, in a `ConstStaticCell`.
/// `Resources::new()` is all zero bytes, so this lands in `.bss` (no flash image) and taking
/// it needs no stack frame of its size (`scripts/footprint.sh` checks both).
static RESOURCES: ConstStaticCell<Resources<N, SOCKETS, RING>> =
    ConstStaticCell::new(Resources::new());

/// The runner's task is `run`'s future itself: a plain `fn` returning it (embassy takes a task
/// `fn` returning `impl Future`), so the task's storage holds the runner once. An
/// `async fn runner_task(runner: Runner) -> !` keeps its argument (the 108-byte runner) for the
/// task's whole life next to the parts `run` moved out of it.
#[embassy_executor::task]
fn runner_task(runner: Runner) -> impl core::future::Future<Output = quectel::asynch::Never> {
    runner.run()
}

/// Brings up the board (clock, UART) and the driver; spawns the runner task.
pub fn start(spawner: &Spawner) -> Modem {
    let cp = cortex_m::Peripherals::take().unwrap_or_else(|| unreachable!());
    time_init(cp.SYST);
    let (rx, tx) = uart_init();
    let (runner, modem) = asynch::new(RESOURCES.take(), rx, tx, Config::default());
    spawner.spawn(runner_task(runner).unwrap_or_else(|_| unreachable!()));
    modem
}

/// The bare image's "driver": a task that reads the UART into a buffer and nothing else.
#[embassy_executor::task]
async fn bare_rx_task(mut rx: UartRx) -> ! {
    let mut buf = [0u8; 64];
    loop {
        let n = rx.read(&mut buf).await.unwrap_or(0);
        black_box(buf.get(..n));
    }
}

/// The bare image (`row0-bare`): the same board, clock, UART, time driver and executor with two
/// tasks as every row, and no driver. `scripts/footprint.sh` subtracts it from each row to get
/// what the crate adds.
pub fn start_bare(spawner: &Spawner) -> UartTx {
    let cp = cortex_m::Peripherals::take().unwrap_or_else(|| unreachable!());
    time_init(cp.SYST);
    let (rx, tx) = uart_init();
    spawner.spawn(bare_rx_task(rx).unwrap_or_else(|_| unreachable!()));
    tx
}

/// Reports a step's outcome on a GPIO (P0.13: ok, P0.14: failed).
pub fn report<T, E>(r: &Result<T, E>) {
    match r {
        Ok(_) => wr(GPIO_OUTSET, 1 << 13),
        Err(_) => wr(GPIO_OUTCLR, 1 << 14),
    }
}

// --- the rows' application steps -------------------------------------------------------------

/// Row 1: start-up, SIM status and PIN, network, data call configure/activate/info.
pub async fn at_sim_datacall(modem: &Modem) -> Result<(), quectel::Error> {
    let id = modem.init().await?;
    black_box(&id);
    let sim = modem.sim();
    match sim.status().await? {
        SimStatus::PinRequired => sim.unlock("1234").await?,
        SimStatus::Ready => {}
        other => {
            black_box(other.quecpython_code());
            return Err(quectel::Error::InvalidState);
        }
    }
    sim.wait_ready(Duration::from_secs(10)).await?;
    black_box(sim.iccid().await?);
    let dc = modem.data_call();
    dc.configure(1, &Apn::new("internet")).await?;
    if modem
        .network()
        .wait_network_ready(1, Duration::from_secs(60))
        .await
        .is_err()
    {
        return Err(quectel::Error::Timeout);
    }
    if !dc.is_active(1).await? {
        dc.activate(1).await?;
    }
    let info = dc.info(1).await?;
    black_box(&info);
    Ok(())
}

/// Row 2: a TCP socket through the modem: open, write, read, close.
pub async fn tcp_echo(modem: &Modem) -> Result<(), quectel::Error> {
    let mut sock = modem
        .connect(
            1,
            Remote::Tcp {
                host: HOST,
                port: 7,
            },
        )
        .await?;
    sock.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    sock.flush().await?;
    let mut buf = [0u8; 256];
    let n = with_timeout(Duration::from_secs(10), sock.read(&mut buf))
        .await
        .map_err(|_| quectel::Error::Timeout)??;
    black_box(&buf[..n]);
    sock.close().await
}

/// Waits between two rounds.
pub async fn pause() {
    Timer::after(Duration::from_secs(60)).await;
}

// --- on-chip flash (row 6: OTA) --------------------------------------------------------------

/// A region of the nRF52840's on-chip flash written through the NVMC registers, as an async
/// `NorFlash` (row 6's update partitions: what a product's flash driver costs, without a RAM
/// copy of the flash).
#[cfg(feature = "ota")]
pub mod flash {
    use core::ptr::{read_volatile, write_volatile};

    use embedded_storage_async::nor_flash::{
        ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
    };

    const NVMC_READY: usize = 0x4001_E400;
    const NVMC_CONFIG: usize = 0x4001_E504;
    const NVMC_ERASEPAGE: usize = 0x4001_E508;
    const PAGE: u32 = 4096;

    /// Out of the region, or misaligned.
    #[derive(Debug)]
    pub struct FlashError(NorFlashErrorKind);

    impl NorFlashError for FlashError {
        fn kind(&self) -> NorFlashErrorKind {
            self.0
        }
    }

    /// `size` bytes of flash from address `base`.
    pub struct Region {
        base: u32,
        size: u32,
    }

    impl Region {
        /// The region `start..end` (page-aligned addresses).
        pub const fn new(start: u32, end: u32) -> Self {
            Self {
                base: start,
                size: end - start,
            }
        }

        fn check(&self, offset: u32, len: usize, align: u32) -> Result<u32, FlashError> {
            let len = u32::try_from(len).map_err(|_| FlashError(NorFlashErrorKind::OutOfBounds))?;
            if offset % align != 0 || len % align != 0 {
                return Err(FlashError(NorFlashErrorKind::NotAligned));
            }
            match offset.checked_add(len) {
                Some(end) if end <= self.size => Ok(self.base + offset),
                _ => Err(FlashError(NorFlashErrorKind::OutOfBounds)),
            }
        }
    }

    fn ready() {
        // SAFETY: NVMC registers of the nRF52840.
        while unsafe { read_volatile(NVMC_READY as *const u32) } == 0 {}
    }

    fn config(mode: u32) {
        // SAFETY: NVMC register of the nRF52840 (0 read, 1 write, 2 erase).
        unsafe { write_volatile(NVMC_CONFIG as *mut u32, mode) };
        ready();
    }

    impl ErrorType for Region {
        type Error = FlashError;
    }

    impl ReadNorFlash for Region {
        const READ_SIZE: usize = 1;

        async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
            let at = self.check(offset, bytes.len(), 1)?;
            for (i, b) in bytes.iter_mut().enumerate() {
                // SAFETY: inside the region, which is on-chip flash.
                *b = unsafe { read_volatile((at as usize + i) as *const u8) };
            }
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.size as usize
        }
    }

    impl NorFlash for Region {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = PAGE as usize;

        async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
            let len = to.checked_sub(from).ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?;
            let at = self.check(from, len as usize, PAGE)?;
            config(2);
            for page in (at..at + len).step_by(PAGE as usize) {
                // SAFETY: NVMC register; the page is inside the region.
                unsafe { write_volatile(NVMC_ERASEPAGE as *mut u32, page) };
                ready();
            }
            config(0);
            Ok(())
        }

        async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
            let at = self.check(offset, bytes.len(), 4)?;
            config(1);
            for (i, w) in bytes.chunks_exact(4).enumerate() {
                let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                // SAFETY: a word inside the region, with writes enabled.
                unsafe { write_volatile((at as usize + 4 * i) as *mut u32, word) };
                ready();
            }
            config(0);
            Ok(())
        }
    }
}
