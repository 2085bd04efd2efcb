//! The blocking API: the same handles, commands, digester and state as [`asynch`],
//! driven over `embedded_io::{Read, ReadReady, Write}` without an executor, threads or
//! interrupts.
//!
//! Each call runs the async code to completion with a busy-polling executor and, while it
//! waits, pulls received bytes from the UART itself (when `read_ready()` says there are some) and
//! feeds them to the digester. Nothing else needs to run concurrently. An embassy-time driver
//! must be linked (timeouts use it), as for the async API.

use embassy_futures::select::{Either3, select3};
use embassy_futures::yield_now;
use embedded_io::{Read, ReadReady, Write};

use crate::Error;
use crate::asynch::{
    self, Apn, Config, DataCallInfo, Identity, NotReady, Remote, Resources, SimStatus, TlsConfig,
};
use crate::at::urc::RegStatus;
use crate::command::Command;
use crate::socket::Kind;
use embassy_time::Duration;

/// The UART as the blocking facade uses it: one object-safe trait, so that the blocking
/// handles carry no UART type.
///
/// Implemented for every `embedded_io::{Read, ReadReady, Write}` type (one serial port) and for
/// [`Halves`] (a HAL's separate receive and transmit halves).
pub trait Uart {
    /// Whether [`Uart::read`] would return bytes without blocking.
    fn read_ready(&mut self) -> bool;
    /// Reads what was received (0 on an error).
    fn read(&mut self, buf: &mut [u8]) -> usize;
    /// Writes and flushes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error>;
}

impl<T: Read + ReadReady + Write> Uart for T {
    fn read_ready(&mut self) -> bool {
        ReadReady::read_ready(self).unwrap_or(false)
    }
    fn read(&mut self, buf: &mut [u8]) -> usize {
        Read::read(self, buf).unwrap_or(0)
    }
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Write::write_all(self, bytes).map_err(|_| Error::Write)?;
        Write::flush(self).map_err(|_| Error::Write)
    }
}

/// A UART given as its two halves (receive, transmit).
pub struct Halves<R, W> {
    /// The receive half.
    pub rx: R,
    /// The transmit half.
    pub tx: W,
}

impl<R, W> Halves<R, W> {
    /// Pairs `rx` and `tx`.
    pub fn new(rx: R, tx: W) -> Self {
        Self { rx, tx }
    }
}

impl<R: Read + ReadReady, W: Write> Uart for Halves<R, W> {
    fn read_ready(&mut self) -> bool {
        self.rx.read_ready().unwrap_or(false)
    }
    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.rx.read(buf).unwrap_or(0)
    }
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.tx.write_all(bytes).map_err(|_| Error::Write)?;
        self.tx.flush().map_err(|_| Error::Write)
    }
}

/// A blocking modem. Get the handles with [`Modem::sim`], [`Modem::network`],
/// [`Modem::data_call`], or run any async operation with [`Modem::run`].
pub struct Modem<'a> {
    modem: asynch::Modem<'a>,
    parts: asynch::RunnerParts<'a>,
    uart: &'a mut dyn Uart,
}

/// Creates a blocking modem over a UART (one serial port, or [`Halves`]).
pub fn new<'a, const N: usize, const S: usize, const RB: usize>(
    resources: &'a mut Resources<N, S, RB>,
    uart: &'a mut dyn Uart,
    config: Config,
) -> Modem<'a> {
    let (parts, modem) = asynch::split(resources, config);
    Modem { modem, parts, uart }
}

async fn pump(
    parts: &mut asynch::RunnerParts<'_>,
    uart: &mut dyn Uart,
    modem: asynch::Modem<'_>,
) -> core::convert::Infallible {
    let mut buf = [0u8; 64];
    loop {
        modem
            .core
            .tx
            .serve_blocking(&mut |bytes| uart.write_all(bytes));
        if uart.read_ready() {
            let n = uart.read(&mut buf);
            if n > 0 {
                parts.ingest(buf.get(..n).unwrap_or(&[]));
                continue;
            }
        }
        yield_now().await;
    }
}

impl<'a> Modem<'a> {
    /// Runs an async operation on the modem to completion, feeding received bytes, writing
    /// commands and doing the runner's socket work meanwhile.
    pub fn run<T>(&mut self, f: impl AsyncFnOnce(&asynch::Modem<'a>) -> T) -> T {
        let Self { modem, parts, uart } = self;
        let modem: asynch::Modem<'a> = *modem;
        embassy_futures::block_on(async move {
            match select3(pump(parts, *uart, modem), modem.service(), f(&modem)).await {
                Either3::First(never) => match never {},
                Either3::Second(never) => never,
                Either3::Third(t) => t,
            }
        })
    }

    /// Feeds whatever the UART has received, without waiting (to keep the state current between
    /// calls).
    pub fn poll(&mut self) {
        let mut buf = [0u8; 64];
        while self.uart.read_ready() {
            match self.uart.read(&mut buf) {
                0 => break,
                n => self.parts.ingest(buf.get(..n).unwrap_or(&[])),
            }
        }
    }

    /// Lets the driver work for `d`: feeds received bytes and moves socket data between the
    /// modem and the sockets' rings (TinyGSM's `maintain()`). Any other call does the same
    /// while it waits.
    pub fn idle(&mut self, d: Duration) {
        self.run(async |_| embassy_time::Timer::after(d).await)
    }

    /// See [`asynch::Modem::init`].
    pub fn init(&mut self) -> Result<Identity, Error> {
        self.run(async |m| m.init().await)
    }

    /// See [`asynch::Modem::send`].
    pub fn send<C: Command>(&mut self, cmd: &C) -> Result<C::Response, Error> {
        self.run(async |m| m.send(cmd).await)
    }

    /// See [`asynch::Modem::state`] (feeds pending bytes first).
    pub fn state(&mut self) -> crate::state::State {
        self.poll();
        self.modem.state()
    }

    /// The SIM handle.
    pub fn sim(&mut self) -> Sim<'_, 'a> {
        Sim { m: self }
    }

    /// The network handle.
    pub fn network(&mut self) -> Network<'_, 'a> {
        Network { m: self }
    }

    /// The data-call handle.
    pub fn data_call(&mut self) -> DataCall<'_, 'a> {
        DataCall { m: self }
    }

    /// See [`asynch::Modem::configure_tls`].
    pub fn configure_tls(&mut self, ssl_ctx: u8, config: &TlsConfig<'_>) -> Result<(), Error> {
        self.run(async |m| m.configure_tls(ssl_ctx, config).await)
    }

    /// See [`asynch::Modem::upload_file`].
    pub fn upload_file(&mut self, name: &str, data: &[u8]) -> Result<(), Error> {
        self.run(async |m| m.upload_file(name, data).await)
    }

    /// Opens a socket; see [`asynch::Modem::connect`]. The socket borrows the modem: use it,
    /// then close it (or drop it) before using the other handles.
    pub fn connect(&mut self, cid: u8, remote: Remote<'_>) -> Result<Socket<'_, 'a>, Error> {
        let (slot, kind) =
            self.run(async |m| m.connect(cid, remote).await.map(|s| s.into_slot()))?;
        Ok(Socket {
            m: self,
            slot,
            kind,
        })
    }
}

/// A blocking socket; implements `embedded_io::{Read, Write}`. See [`asynch::Socket`].
pub struct Socket<'m, 'a> {
    m: &'m mut Modem<'a>,
    slot: usize,
    kind: Kind,
}

impl Socket<'_, '_> {
    /// The modem's id of this socket.
    pub fn id(&self) -> u8 {
        self.slot as u8
    }

    /// Lets the driver work for `d` (see [`Modem::idle`]).
    pub fn idle(&mut self, d: Duration) {
        self.m.idle(d)
    }

    /// Flushes, then closes the socket in the modem.
    pub fn close(self) -> Result<(), Error> {
        let mut this = core::mem::ManuallyDrop::new(self);
        let (slot, kind) = (this.slot, this.kind);
        this.m.run(async |m| m.socket_close(slot, kind).await)
    }
}

impl Drop for Socket<'_, '_> {
    fn drop(&mut self) {
        self.m.modem.socket_abandon(self.slot);
    }
}

impl embedded_io::ErrorType for Socket<'_, '_> {
    type Error = Error;
}

impl embedded_io::Read for Socket<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let slot = self.slot;
        self.m.run(async |m| m.socket_read(slot, buf).await)
    }
}

impl embedded_io::Write for Socket<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let slot = self.slot;
        // A blocking write returns once the bytes are queued; they go out while later calls
        // (or `flush`) run.
        self.m.run(async |m| m.socket_write(slot, buf).await)
    }
    fn flush(&mut self) -> Result<(), Error> {
        let slot = self.slot;
        self.m.run(async |m| m.socket_flush(slot).await)
    }
}

/// Blocking SIM handle; see [`asynch::Sim`].
pub struct Sim<'m, 'a> {
    m: &'m mut Modem<'a>,
}

impl Sim<'_, '_> {
    /// See [`asynch::Sim::status`].
    pub fn status(&mut self) -> Result<SimStatus, Error> {
        self.m.run(async |m| m.sim().status().await)
    }
    /// See [`asynch::Sim::unlock`].
    pub fn unlock(&mut self, pin: &str) -> Result<(), Error> {
        self.m.run(async |m| m.sim().unlock(pin).await)
    }
    /// See [`asynch::Sim::unblock`].
    pub fn unblock(&mut self, puk: &str, new_pin: &str) -> Result<(), Error> {
        self.m.run(async |m| m.sim().unblock(puk, new_pin).await)
    }
    /// See [`asynch::Sim::iccid`].
    pub fn iccid(&mut self) -> Result<heapless::String<24>, Error> {
        self.m.run(async |m| m.sim().iccid().await)
    }
    /// See [`asynch::Sim::imsi`].
    pub fn imsi(&mut self) -> Result<heapless::String<16>, Error> {
        self.m.run(async |m| m.sim().imsi().await)
    }
}

/// Blocking network handle; see [`asynch::Network`].
pub struct Network<'m, 'a> {
    m: &'m mut Modem<'a>,
}

impl Network<'_, '_> {
    /// See [`asynch::Network::registration`].
    pub fn registration(&mut self) -> Result<RegStatus, Error> {
        self.m.run(async |m| m.network().registration().await)
    }
    /// See [`asynch::Network::signal`].
    pub fn signal(&mut self) -> Result<crate::command::network::Signal, Error> {
        self.m.run(async |m| m.network().signal().await)
    }
    /// See [`asynch::Network::operator`].
    pub fn operator(&mut self) -> Result<crate::command::network::Operator, Error> {
        self.m.run(async |m| m.network().operator().await)
    }
    /// See [`asynch::Network::wait_registered`].
    pub fn wait_registered(&mut self, timeout: Duration) -> Result<RegStatus, NotReady> {
        self.m
            .run(async |m| m.network().wait_registered(timeout).await)
    }
    /// See [`asynch::Network::wait_network_ready`].
    pub fn wait_network_ready(&mut self, cid: u8, timeout: Duration) -> Result<(), NotReady> {
        self.m
            .run(async |m| m.network().wait_network_ready(cid, timeout).await)
    }
}

/// Blocking data-call handle; see [`asynch::DataCall`].
pub struct DataCall<'m, 'a> {
    m: &'m mut Modem<'a>,
}

impl DataCall<'_, '_> {
    /// See [`asynch::DataCall::configure`].
    pub fn configure(&mut self, cid: u8, apn: &Apn<'_>) -> Result<(), Error> {
        self.m
            .run(async |m| m.data_call().configure(cid, apn).await)
    }
    /// See [`asynch::DataCall::activate`].
    pub fn activate(&mut self, cid: u8) -> Result<(), Error> {
        self.m.run(async |m| m.data_call().activate(cid).await)
    }
    /// See [`asynch::DataCall::deactivate`].
    pub fn deactivate(&mut self, cid: u8) -> Result<(), Error> {
        self.m.run(async |m| m.data_call().deactivate(cid).await)
    }
    /// See [`asynch::DataCall::info`].
    pub fn info(&mut self, cid: u8) -> Result<DataCallInfo, Error> {
        self.m.run(async |m| m.data_call().info(cid).await)
    }
}

/// Host names and DNS servers (kept apart from the other handles' methods).
impl Modem<'_> {
    /// Resolves a host name with the modem's resolver; see [`asynch::Modem::resolve`].
    pub fn resolve(
        &mut self,
        cid: u8,
        host: &str,
        addr_type: asynch::AddrType,
    ) -> Result<core::net::IpAddr, Error> {
        self.run(async |m| m.resolve(cid, host, addr_type).await)
    }
}

impl DataCall<'_, '_> {
    /// See [`asynch::DataCall::dns_servers`].
    pub fn dns_servers(&mut self, cid: u8) -> Result<crate::command::pdp::DnsConfig, Error> {
        self.m.run(async |m| m.data_call().dns_servers(cid).await)
    }
    /// See [`asynch::DataCall::set_dns_servers`].
    pub fn set_dns_servers(
        &mut self,
        cid: u8,
        primary: core::net::IpAddr,
        secondary: Option<core::net::IpAddr>,
    ) -> Result<(), Error> {
        self.m
            .run(async |m| m.data_call().set_dns_servers(cid, primary, secondary).await)
    }
}
