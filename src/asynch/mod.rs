//! The async API: [`new`] gives a [`Runner`] (owns the UART, both halves) and a [`Modem`]
//! (no UART type, `Copy`) whose handles ([`Sim`], [`Network`], [`DataCall`], [`Socket`]) share
//! one AT channel.

mod channel;
mod clock;
mod data_call;
mod dns;
mod modem;
mod network;
pub(crate) mod outline;
mod pins;
mod power;
mod power_ext;
mod runner;
mod sim;
mod sleep;
mod socket;
mod tls;
mod tx;

pub use clock::{forget_network_time, network_utc_now};
pub use data_call::{Apn, DataCall, DataCallInfo};
pub use dns::Resolver;
/// The address type asked of [`Modem::resolve`] (from `embedded-nal`).
pub use embedded_nal_async::AddrType;
pub(crate) use modem::split;
pub use modem::{Config, Identity, Modem, Resources, new};
pub use network::{Network, NotReady};
pub use pins::{ControlPins, NoPins, PowerPins};
pub use power::Power;
pub(crate) use runner::RunnerParts;
pub use runner::{Never, Runner};
pub use sim::{Sim, SimStatus};
pub use sleep::{NoSleep, NotWired, SleepControl, UartSleep};
pub use socket::{Remote, Socket, SocketReader, SocketWriter, TcpStack};
pub use tls::{ServerAuth, TlsConfig, TlsVersion};
pub use tx::{CMD_BUF, MAX_SEND};
