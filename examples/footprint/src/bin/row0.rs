//! Row 0: the bare image. Board, clock, UART, `embassy-time` driver and an executor with two
//! tasks (a UART reader and this one), as in every row, and no driver: what each row adds is
//! its size minus this one's.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embedded_io_async::Write;
use footprint as fw;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let mut tx = fw::start_bare(&spawner);
    loop {
        let r = tx.write_all(b"AT\r").await;
        fw::report(&r);
        fw::pause().await;
    }
}
