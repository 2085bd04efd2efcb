//! Host names: lookups through the modem's resolver (`AT+QIDNSGIP`), as an
//! `embedded_nal_async::Dns`, so that clients such as reqwless connect by name.

use core::net::IpAddr;

use embassy_time::{Duration, Instant, with_deadline, with_timeout};
use embedded_nal_async::AddrType;

use super::modem::send;
use super::{Modem, TcpStack};
use crate::Error;
use crate::command::dns::{LOOKUP_TIMEOUT_MS, ResolveHost};
use crate::state::{DnsAnswer, DnsState, StateCell};

/// How long a lookup's result may take after its `OK` (Quectel's 60 s and a margin).
const RESULT_WAIT: Duration = Duration::from_millis(LOOKUP_TIMEOUT_MS as u64 + 2_000);

/// Holds the resolver: one lookup at a time, so that each takes its own result.
struct Holder<'s>(&'s StateCell);

impl Drop for Holder<'_> {
    fn drop(&mut self) {
        self.0.update_dns(|d| d.busy = false);
    }
}

async fn hold(state: &StateCell) -> Holder<'_> {
    loop {
        state.wait_dns(|_, d| (!d.busy).then_some(())).await;
        if state.update_dns(|d| !core::mem::replace(&mut d.busy, true)) {
            return Holder(state);
        }
    }
}

/// The address of `answer` that `addr_type` asks for.
fn pick(answer: DnsAnswer, addr_type: AddrType) -> Result<IpAddr, Error> {
    if answer.err != 0 {
        return Err(Error::Ip(answer.err));
    }
    match addr_type {
        AddrType::Either => answer.first(),
        AddrType::IPv4 => answer.ipv4.map(IpAddr::V4),
        AddrType::IPv6 => answer.ipv6.map(IpAddr::V6),
    }
    .ok_or(Error::NoAddress)
}

/// Whether a failed `AT+QIDNSGIP` certainly started no lookup (so no result will come).
fn refused(e: Error) -> bool {
    matches!(
        e,
        Error::Error | Error::Cme(_) | Error::Cms(_) | Error::InvalidArgument | Error::Overflow
    )
}

impl<'a> Modem<'a> {
    /// Resolves `host` with the modem's resolver on PDP context `cid` (which must be active):
    /// `AT+QIDNSGIP`, then its `+QIURC: "dnsgip"` results (up to 60 s). Returns the first address
    /// reported of the type asked for. An IP address literal is returned as it is, without
    /// asking the modem.
    ///
    /// Errors: a failed lookup is [`Error::Ip`] with the module's code (565 DNS parse failed,
    /// 564 DNS busy, 561 context not active, ...); a name with no address of the requested type
    /// is [`Error::NoAddress`]; no result in time is [`Error::Timeout`]; an unusable name
    /// (empty, over 253 bytes, `"` or control characters) is [`Error::InvalidArgument`].
    ///
    /// One lookup runs at a time (others wait). Cancel-safe: the results of a lookup that was
    /// dropped are never taken by a later one; the later one waits for them first (at most
    /// until Quectel's 60 s for them are over, or, when the lookup was dropped while its command
    /// was being sent, 60 s for the `OK` and 60 s for the result).
    pub async fn resolve(&self, cid: u8, host: &str, addr_type: AddrType) -> Result<IpAddr, Error> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return match (addr_type, ip) {
                (AddrType::IPv4, IpAddr::V6(_)) | (AddrType::IPv6, IpAddr::V4(_)) => {
                    Err(Error::NoAddress)
                }
                _ => Ok(ip),
            };
        }
        let cmd = ResolveHost { cid, host };
        cmd.check()?;
        if !self.params().await.context_ids.contains(&cid) {
            return Err(Error::OutOfRange);
        }
        let _holder = hold(&self.core.state).await;
        let boots = self.core.starts();

        // Results still owed to earlier (dropped) lookups come first.
        let earlier = self.core.state.dns();
        if !earlier.settled() {
            let settled = match earlier.pending_until() {
                Some(until) => with_deadline(
                    until,
                    self.core.state.wait_dns(|_, d| d.settled().then_some(())),
                )
                .await
                .is_ok(),
                None => false,
            };
            if !settled {
                debug!("DNS: giving up on an earlier lookup's result");
                self.core.state.update_dns(DnsState::resync);
            }
        }

        // Once the channel is ours this lookup owes a result: if it is dropped while its command
        // is being sent, the modem may still have taken it.
        let before = {
            let mut channel = self.channel().await;
            let before = self.core.state.update_dns(|d| {
                // A header without its address lines from before cannot be this lookup's.
                d.drop_collecting();
                d.issued = d.issued.wrapping_add(1);
                d.set_pending_until(Some(
                    Instant::now()
                        .saturating_add(Duration::from_millis(u64::from(LOOKUP_TIMEOUT_MS)))
                        .saturating_add(RESULT_WAIT),
                ));
                d.completed
            });
            if let Err(e) = send!(channel, cmd) {
                if refused(e) {
                    self.core.state.update_dns(|d| {
                        d.issued = d.issued.wrapping_sub(1);
                        if d.settled() {
                            d.set_pending_until(None);
                        }
                    });
                }
                return Err(e);
            }
            before
        };
        self.core
            .state
            .update_dns(|d| d.set_pending_until(Some(Instant::now().saturating_add(RESULT_WAIT))));

        let answer = with_timeout(
            RESULT_WAIT,
            self.core.state.wait_dns(|s, d| {
                if s.starts() != boots {
                    Some(Err(Error::Rebooted))
                } else if d.completed != before {
                    Some(d.last().ok_or(Error::Parse))
                } else {
                    None
                }
            }),
        )
        .await
        .map_err(|_| Error::Timeout)??;
        pick(answer, addr_type)
    }

    /// An `embedded_nal_async::Dns` over the modem's resolver on context `cid`.
    pub fn dns(&self, cid: u8) -> Resolver<'a> {
        Resolver { modem: *self, cid }
    }
}

/// `embedded_nal_async::Dns` over the modem's resolver on one PDP context: see
/// [`Modem::resolve`]. Get one with [`Modem::dns`]. [`TcpStack`] implements `Dns` as well, so
/// one value serves as both arguments of reqwless' `HttpClient::new(&stack, &stack)`.
///
/// Reverse lookups (`get_host_by_address`) are [`Error::Unsupported`]: the modems have no
/// command for them.
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    modem: Modem<'a>,
    cid: u8,
}

impl embedded_nal_async::Dns for Resolver<'_> {
    type Error = Error;

    async fn get_host_by_name(&self, host: &str, addr_type: AddrType) -> Result<IpAddr, Error> {
        self.modem.resolve(self.cid, host, addr_type).await
    }

    async fn get_host_by_address(&self, _addr: IpAddr, _result: &mut [u8]) -> Result<usize, Error> {
        Err(Error::Unsupported)
    }
}

impl embedded_nal_async::Dns for TcpStack<'_> {
    type Error = Error;

    async fn get_host_by_name(&self, host: &str, addr_type: AddrType) -> Result<IpAddr, Error> {
        self.modem.resolve(self.cid, host, addr_type).await
    }

    async fn get_host_by_address(&self, _addr: IpAddr, _result: &mut [u8]) -> Result<usize, Error> {
        Err(Error::Unsupported)
    }
}
