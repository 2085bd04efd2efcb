//! The network clock's reads: [`Network::network_time`] (`AT+QLTS`) and [`Network::time`]
//! (`AT+CCLK?`, when the module's clock is set) set it, as the time URCs do
//! (`crate::state::clock`). MCU TLS checks certificate dates against it when the caller gives
//! no clock (`tls::NetworkClock`).

use super::Network;
use crate::Error;
use crate::command::nettime::{GetNetworkTime, NetworkTime, QltsMode};
pub(super) use crate::state::clock::record;

pub use crate::state::clock::{forget_network_time, network_utc_now};

impl Network<'_> {
    /// The time the network sent (`AT+QLTS[=<mode>]`), with its time zone and daylight-saving
    /// adjustment; `None` if the network never sent it. It also sets the network clock
    /// ([`network_utc_now`]).
    pub async fn network_time(&self, mode: QltsMode) -> Result<Option<NetworkTime>, Error> {
        let t = self.modem().send(&GetNetworkTime { mode }).await?;
        // Mode 0 is the time of the last synchronisation, not now.
        if let (Some(t), QltsMode::CurrentUtc | QltsMode::CurrentLocal) = (t, mode) {
            record(t.unix_utc());
        }
        Ok(t)
    }
}
