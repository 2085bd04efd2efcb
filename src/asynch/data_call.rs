//! The data-call handle: PDP context configuration, activation and information.

use core::fmt;
use core::fmt::Write as _;
use core::net::IpAddr;

use super::Modem;
use super::modem::send;
use crate::Error;
use crate::command::pdp::{
    ActivateContext, Auth, ConfigureContext, ContextType, DeactivateContext, DnsConfig,
    GetActiveContext, GetDnsConfig, SetDnsConfig,
};

/// APN settings of a data call. `Debug` never shows the password.
#[derive(Clone, Copy)]
pub struct Apn<'s> {
    /// Access point name (may be empty: the network's default).
    pub apn: &'s str,
    /// IPv4, IPv6 or both.
    pub ip: ContextType,
    /// User name (often empty).
    pub username: &'s str,
    /// Password (often empty).
    pub password: &'s str,
    /// Authentication.
    pub auth: Auth,
}

impl<'s> Apn<'s> {
    /// An IPv4 APN without credentials.
    pub const fn new(apn: &'s str) -> Self {
        Self {
            apn,
            ip: ContextType::Ipv4,
            username: "",
            password: "",
            auth: Auth::None,
        }
    }
}

impl fmt::Debug for Apn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apn")
            .field("apn", &self.apn)
            .field("ip", &self.ip)
            .field("username", &self.username)
            .field("password", &"***")
            .field("auth", &self.auth)
            .finish()
    }
}

/// A data call's state, in the shape of QuecPython's `dataCall.getInfo(profileID, ipType)`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataCallInfo {
    /// Context (profile) id.
    pub cid: u8,
    /// Whether the context is active.
    pub active: bool,
    /// IPv4, IPv6 or both (as configured or reported).
    pub ip_type: Option<ContextType>,
    /// IPv4 address, if any.
    pub ipv4: Option<heapless::String<16>>,
    /// IPv6 address, if any.
    pub ipv6: Option<heapless::String<40>>,
    /// Primary DNS server (`AT+QIDNSCFG`), when the context is active.
    pub dns_primary: Option<heapless::String<40>>,
    /// Secondary DNS server, when the context is active and the modem reports one.
    pub dns_secondary: Option<heapless::String<40>>,
    /// The network deactivated this context (`+QIURC: "pdpdeact"`) since it was last activated.
    pub deactivated_by_network: bool,
}

/// Data-call operations. Get one with [`Modem::data_call`].
#[derive(Clone, Copy)]
pub struct DataCall<'a> {
    modem: Modem<'a>,
}

impl<'a> Modem<'a> {
    /// The data-call handle.
    pub fn data_call(&self) -> DataCall<'a> {
        DataCall { modem: *self }
    }
}

impl DataCall<'_> {
    /// A plain `fn` (no await in it): an `async fn` would be one more state in every flow.
    fn check_cid(&self, cid: u8) -> Result<(), Error> {
        if self.modem.model().params().context_ids.contains(&cid) {
            Ok(())
        } else {
            Err(Error::OutOfRange)
        }
    }

    /// Configures context `cid` (`AT+QICSGP`). An APN longer than
    /// [`MAX_APN`](crate::command::pdp::MAX_APN) bytes, or a user name or password longer than
    /// [`MAX_CREDENTIAL`](crate::command::pdp::MAX_CREDENTIAL), is [`Error::InvalidArgument`].
    pub async fn configure(&self, cid: u8, apn: &Apn<'_>) -> Result<(), Error> {
        self.check_cid(cid)?;
        send!(
            self.modem,
            ConfigureContext {
                cid,
                context_type: apn.ip,
                apn: apn.apn,
                username: apn.username,
                password: apn.password,
                auth: apn.auth,
            }
        )
    }

    /// Activates context `cid` (`AT+QIACT`, up to 150 s) unless it is already active. After a
    /// `pdpdeact` from the network it first cleans up with `AT+QIDEACT`, as Quectel requires.
    ///
    /// A context this driver activated in the current boot, and that neither it nor the
    /// network has deactivated since, is known active: nothing is sent. Otherwise `AT+QIACT` is
    /// sent at once; the module refuses to activate an active context with `ERROR`, and only
    /// then does `AT+QIACT?` tell whether that was the reason.
    pub async fn activate(&self, cid: u8) -> Result<(), Error> {
        self.check_cid(cid)?;
        let core = self.modem.core;
        let deactivated = core.state.get().pdp_deactivated & (1 << cid) != 0;
        if deactivated {
            // Quectel requires this clean-up after "pdpdeact"; an ERROR here (the context is
            // already gone) does not matter.
            let _ = send!(self.modem, DeactivateContext { cid });
            core.set_active(cid, false);
        } else if core.known_active(cid) {
            return Ok(());
        }
        match send!(self.modem, ActivateContext { cid }) {
            Ok(()) => {}
            Err(e @ (Error::Error | Error::Cme(_))) => {
                // Already active (activated by someone else, or before the driver started)?
                if !self.is_active(cid).await? {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        core.state.update(|s| s.pdp_deactivated &= !(1 << cid));
        core.set_active(cid, true);
        Ok(())
    }

    /// Deactivates context `cid` (`AT+QIDEACT`, up to 40 s); all its sockets close.
    pub async fn deactivate(&self, cid: u8) -> Result<(), Error> {
        self.check_cid(cid)?;
        self.modem.core.set_active(cid, false);
        send!(self.modem, DeactivateContext { cid })
    }

    /// Whether context `cid` is active (`AT+QIACT?`).
    pub async fn is_active(&self, cid: u8) -> Result<bool, Error> {
        let active = send!(self.modem, GetActiveContext { cid })?.is_some_and(|c| c.state);
        self.modem.core.set_active(cid, active);
        Ok(active)
    }

    /// The DNS servers context `cid` uses, as the modem reports them (`AT+QIDNSCFG=<cid>`):
    /// the network's, or those set with [`DataCall::set_dns_servers`]. The context must be
    /// active on some models (others answer `ERROR`).
    pub async fn dns_servers(&self, cid: u8) -> Result<DnsConfig, Error> {
        self.check_cid(cid)?;
        send!(self.modem, GetDnsConfig { cid })
    }

    /// Sets the DNS servers of context `cid` (`AT+QIDNSCFG=<cid>,"<primary>"[,"<secondary>"]`),
    /// used by [`Modem::resolve`](super::Modem::resolve) and by connections opened by name. Set
    /// them after [`DataCall::activate`]: a (re)activation may bring the network's servers
    /// back.
    pub async fn set_dns_servers(
        &self,
        cid: u8,
        primary: IpAddr,
        secondary: Option<IpAddr>,
    ) -> Result<(), Error> {
        self.check_cid(cid)?;
        let text = |ip: IpAddr| -> Result<heapless::String<40>, Error> {
            let mut s = heapless::String::new();
            write!(s, "{ip}").map_err(|_| Error::Overflow)?;
            Ok(s)
        };
        let primary = text(primary)?;
        let secondary = secondary.map(text).transpose()?;
        send!(
            self.modem,
            SetDnsConfig {
                cid,
                primary: &primary,
                secondary: secondary.as_deref(),
            }
        )
    }

    /// State, addresses and DNS servers of context `cid` (`AT+QIACT?`, then `AT+QIDNSCFG` when
    /// the context is active; a failure of either is returned, not hidden).
    pub async fn info(&self, cid: u8) -> Result<DataCallInfo, Error> {
        self.check_cid(cid)?;
        // The listing is moved into `info` and gone before the next command (it is not kept
        // in this future next to the answer).
        let mut info = {
            let listed = send!(self.modem, GetActiveContext { cid })?;
            let deactivated_by_network =
                self.modem.core.state.get().pdp_deactivated & (1 << cid) != 0;
            let mut info = DataCallInfo {
                cid,
                active: false,
                ip_type: None,
                ipv4: None,
                ipv6: None,
                dns_primary: None,
                dns_secondary: None,
                deactivated_by_network,
            };
            if let Some(c) = listed {
                info.active = c.state && !deactivated_by_network;
                info.ip_type = Some(c.context_type);
                info.ipv4 = c.ipv4;
                info.ipv6 = c.ipv6;
            }
            info
        };
        if info.active {
            let dns = send!(self.modem, GetDnsConfig { cid })?;
            info.dns_primary = Some(dns.primary);
            // The modem reports a missing secondary server as an empty string.
            info.dns_secondary = (!dns.secondary.is_empty()).then_some(dns.secondary);
        }
        Ok(info)
    }
}
