//! Row 2: row 1 + a TCP socket through the modem (open, write, read, close).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use footprint as fw;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let modem = fw::start(&spawner);
    loop {
        let r = fw::at_sim_datacall(&modem).await;
        fw::report(&r);
        if r.is_ok() {
            fw::report(&fw::tcp_echo(&modem).await);
        }
        fw::pause().await;
    }
}
