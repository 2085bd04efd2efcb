//! The async API: [`new`] gives a [`Runner`] (owns the UART receive side) and a [`Modem`]
//! whose handles ([`Sim`], [`Network`], [`DataCall`]) share one AT channel.

mod channel;
mod data_call;
mod dns;
mod modem;
mod network;
mod runner;
mod sim;
mod socket;
mod tls;

pub use channel::Channel;
pub use data_call::{Apn, DataCall, DataCallInfo};
pub use dns::Resolver;
/// The address type asked of [`Modem::resolve`] (from `embedded-nal`).
pub use embedded_nal_async::AddrType;
pub use modem::{CMD_BUF, Config, Identity, Modem, Resources, new};
pub use network::{Network, NotReady};
pub use runner::Runner;
pub use sim::{Sim, SimStatus};
pub use socket::{Remote, Socket, SocketReader, SocketWriter, TcpStack};
pub use tls::{ServerAuth, TlsConfig, TlsVersion};
