//! Row 1: AT + SIM + data call only (`Modem::init`, SIM status/PIN, network, data call
//! configure/activate/info).
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
        fw::pause().await;
    }
}
