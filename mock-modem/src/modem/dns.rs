//! Host-name lookups of the behavioural modem: `AT+QIDNSGIP` and its
//! `+QIURC: "dnsgip"` results, from a name table the test sets
//! ([`MockModem::host`](crate::MockModem::host)); the network is never asked.

use std::net::IpAddr;
use std::time::Instant;

use super::{Engine, Reply, Timer};

/// TTL reported with every successful lookup.
const TTL: u32 = 600;

/// Addresses a host argument stands for without asking any DNS: an IP literal
/// is itself, `localhost` is 127.0.0.1, a name in `hosts` (case-insensitive)
/// its addresses. `None`: the name is unknown.
pub(crate) fn lookup(hosts: &[(String, Vec<IpAddr>)], host: &str) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Some(vec![IpAddr::from([127, 0, 0, 1])]);
    }
    hosts
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(host))
        .map(|(_, addrs)| addrs.clone())
}

impl Engine {
    /// `AT+QIDNSGIP=<cid>,"<hostname>"`: `OK`, then (after the configured
    /// delay) `+QIURC: "dnsgip",0,<n>,600` and one `+QIURC: "dnsgip","<ip>"`
    /// per address, or `+QIURC: "dnsgip",565,0,0` for a name not in the table.
    /// `ERROR` (kept for `AT+QIGETERROR`) for bad arguments (552) or an
    /// inactive context (561).
    pub(super) fn qidnsgip(&mut self, args: &[String]) -> Reply {
        let cid = args.first().and_then(|c| self.cid_arg(c));
        let host = args.get(1).map(String::as_str).unwrap_or("");
        let Some(cid) = cid.filter(|_| args.len() == 2 && !host.is_empty()) else {
            self.set_ip_error(552, None);
            return Reply::error();
        };
        if !self.ctx[cid].active {
            self.set_ip_error(561, None);
            return Reply::error();
        }
        let urcs = match lookup(&self.cfg.hosts, host) {
            Some(addrs) if !addrs.is_empty() => {
                let mut v = vec![format!("+QIURC: \"dnsgip\",0,{},{TTL}", addrs.len())];
                v.extend(addrs.iter().map(|a| format!("+QIURC: \"dnsgip\",\"{a}\"")));
                v
            }
            _ => {
                self.set_ip_error(565, None);
                vec!["+QIURC: \"dnsgip\",565,0,0".to_string()]
            }
        };
        let mut r = Reply::ok();
        if self.cfg.dns_delay.is_zero() {
            r.after = urcs;
        } else {
            self.timers
                .push((Instant::now() + self.cfg.dns_delay, Timer::Urcs(urcs)));
        }
        r
    }
}
