//! TCP/SSL sockets (`AT+QI…`, `AT+QSSL…`) and the file system (`AT+QF…`)
//! of the behavioural modem.

use std::time::{Duration, Instant};

use super::{Engine, Reply, SocketInfo};
use crate::link::{Link, frame};
use crate::sockets::{Socket, client_config, resolve};

use super::dns::lookup;

pub(crate) const MAX_SOCKETS: usize = 12;
pub(crate) const MAX_SSL_CTX: usize = 6;
/// Largest file `AT+QFUPL` accepts (`+CME ERROR: 423` above).
pub const MAX_FILE_SIZE: usize = 64 * 1024;
/// Capacity of the simulated UFS (`+CME ERROR: 403` when an upload would exceed it).
pub const MAX_FS_SIZE: usize = 1024 * 1024;
const MAX_FILES: usize = 64;
const MAX_NAME: usize = 80;
/// `AT+QISEND`/`AT+QSSLSEND` give up (answer `ERROR`) when no payload byte
/// arrives for this long after the prompt (EC200U's `qisend/timeout` default).
const SEND_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_SEND: usize = 1460;
const MAX_READ: usize = 1500;

/// Host bytes are payload, not command lines.
pub(crate) enum DataMode {
    Send {
        id: usize,
        len: usize,
        buf: Vec<u8>,
        started: Instant,
        last: Instant,
    },
    Upload {
        name: String,
        size: usize,
        buf: Vec<u8>,
        timeout: Duration,
        ack: bool,
        started: Instant,
        last: Instant,
    },
}

/// The `AT+QFUPL` checksum: XOR of the data taken as big-endian 16-bit words
/// (an odd last byte is the high byte of a word whose low byte is 0).
/// Printed by the modem as lower-case hex without padding.
pub fn qfupl_checksum(data: &[u8]) -> u16 {
    data.chunks(2).fold(0u16, |x, w| {
        x ^ ((u16::from(w[0]) << 8) | u16::from(*w.get(1).unwrap_or(&0)))
    })
}

/// `*` wildcard match (case-sensitive).
fn glob(pat: &str, name: &str) -> bool {
    let (p, n) = (pat.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Split arguments keeping whether each was quoted.
fn split_raw(s: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_q = false;
    for c in s.chars() {
        match c {
            '"' => {
                in_q = !in_q;
                quoted = true;
            }
            ',' if !in_q => {
                out.push((std::mem::take(&mut cur).trim().to_string(), quoted));
                quoted = false;
            }
            _ => cur.push(c),
        }
    }
    out.push((cur.trim().to_string(), quoted));
    out
}

fn frame_data(header: &str, data: &[u8], with_final: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + header.len() + 16);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(data);
    if !data.is_empty() {
        v.extend_from_slice(b"\r\n");
    }
    if with_final {
        v.extend_from_slice(b"\r\nOK\r\n");
    }
    v
}

impl Engine {
    pub(super) fn set_ip_error(&mut self, code: u16, detail: Option<String>) {
        self.ip_error = code;
        self.ip_detail = detail.map(|d| d.replace(['\r', '\n'], " "));
    }

    pub(super) fn socket_infos(&self) -> Vec<SocketInfo> {
        self.sockets
            .iter()
            .enumerate()
            .filter_map(|(id, s)| {
                let s = s.as_ref()?;
                Some(SocketInfo {
                    id: id as u8,
                    ssl_ctx: s.ssl_ctx,
                    cid: s.cid,
                    state: s.state,
                    remote: s.ip.clone(),
                    port: s.port,
                    rx_total: s.rx_total(),
                    unread: s.unread(),
                    tx_total: s.sent_total,
                })
            })
            .collect()
    }

    /// Drop every socket (reboot, CFUN, shutdown): connections closed, threads joined, no URCs.
    pub(super) fn close_all_sockets(&mut self) {
        for s in &mut self.sockets {
            *s = None;
        }
    }

    /// `AT+QIDEACT` / `AT+CGACT=0`: free every socket of the context.
    pub(super) fn free_sockets_of(&mut self, cid: u8) {
        for s in &mut self.sockets {
            if s.as_ref().is_some_and(|s| s.cid == cid) {
                *s = None;
            }
        }
    }

    /// `+QIURC: "pdpdeact"`: connections of the context are shut down; the
    /// sockets stay in state 4 (buffered data readable) until `AT+QICLOSE`
    /// (or `AT+QIDEACT`), without a `closed` URC.
    pub(super) fn pdp_lost(&mut self, cid: u8) {
        for s in self.sockets.iter_mut().flatten() {
            if s.cid == cid {
                s.shutdown();
                s.force_eof();
                s.state = 4;
                s.closed_announced = true;
            }
        }
    }

    /// Fault knob: the network dropped the connection.
    pub(super) fn network_drop(&mut self, link: &mut dyn Link, id: u8) {
        if let Some(Some(s)) = self.sockets.get_mut(id as usize) {
            s.shutdown();
            s.force_eof();
        }
        self.poll_sockets(link);
    }

    /// Open results, recv and closed URCs (never inside a response or payload).
    pub(super) fn poll_sockets(&mut self, link: &mut dyn Link) {
        if self.data_mode.is_some() || !self.powered || self.broken {
            return;
        }
        let mut urcs = Vec::new();
        let mut pushes: Vec<(String, Vec<u8>)> = Vec::new();
        for id in 0..self.sockets.len() {
            let Some(s) = self.sockets[id].as_mut() else {
                continue;
            };
            let (urc, ssl) = if s.ssl_ctx.is_some() {
                ("+QSSLURC", true)
            } else {
                ("+QIURC", false)
            };
            if s.state == 1 {
                let open = if ssl { "+QSSLOPEN" } else { "+QIOPEN" };
                match s.poll_open() {
                    None => {}
                    Some(Ok(())) => {
                        urcs.push(format!("{open}: {id},0"));
                        self.ip_error = 0;
                        self.ip_detail = None;
                    }
                    Some(Err((code, text))) => {
                        self.sockets[id] = None;
                        urcs.push(format!("{open}: {id},{code}"));
                        self.ip_error = code;
                        self.ip_detail = Some(text.replace(['\r', '\n'], " "));
                    }
                }
                continue;
            }
            let (unread, eof) = s.status();
            if s.push && unread > 0 {
                // Direct push (access mode 1): the data goes out inside the URC, up to 1500
                // bytes each, followed by CR LF (BG96 TCP(IP) manual; FreeRTOS's BG96 port
                // expects the trailing CR LF). Nothing is left for AT+QIRD.
                let data = s.read(MAX_READ);
                pushes.push((format!("{urc}: \"recv\",{id},{}", data.len()), data));
            } else if s.armed && unread > 0 && !self.edrx.listening(Instant::now()) {
                // eDRX: between paging windows the module does not hear the network; the data
                // is announced when the next window opens.
                if !s.edrx_held {
                    s.edrx_held = true;
                    self.edrx.held += 1;
                }
            } else if s.armed && unread > 0 {
                s.armed = false;
                s.edrx_held = false;
                if self.drop_recv > 0 {
                    self.drop_recv -= 1;
                } else {
                    urcs.push(format!("{urc}: \"recv\",{id}"));
                }
            }
            if eof && !s.closed_announced && (unread == 0 || !s.armed) {
                s.closed_announced = true;
                s.state = 4;
                urcs.push(format!("{urc}: \"closed\",{id}"));
            }
        }
        for (header, data) in pushes {
            let mut bytes = frame(&header);
            bytes.extend_from_slice(&data);
            bytes.extend_from_slice(b"\r\n");
            self.out(link, &bytes);
        }
        for u in urcs {
            self.urc(link, &u);
        }
    }

    /// One payload byte in data mode.
    pub(super) fn data_byte(&mut self, link: &mut dyn Link, b: u8, seen: Instant, now: Instant) {
        let mut send_ack = false;
        let done = match self.data_mode.as_mut() {
            None => return,
            Some(DataMode::Send {
                len,
                buf,
                started,
                last,
                ..
            }) => {
                // A `\n` that came with the command line (`AT+QISEND=0,5\r\n`) is its terminator.
                if buf.is_empty() && b == b'\n' && seen <= *started {
                    return;
                }
                buf.push(b);
                *last = now;
                buf.len() >= *len
            }
            Some(DataMode::Upload {
                size,
                buf,
                ack,
                started,
                last,
                ..
            }) => {
                if buf.is_empty() && b == b'\n' && seen <= *started {
                    return;
                }
                buf.push(b);
                *last = now;
                send_ack = *ack && buf.len() % 1024 == 0 && buf.len() < *size;
                buf.len() >= *size
            }
        };
        if send_ack {
            self.out(link, b"A");
        }
        if done {
            self.finish_data(link);
        }
    }

    pub(super) fn data_idle(&mut self, link: &mut dyn Link, now: Instant) {
        let expired = match &self.data_mode {
            None => false,
            Some(DataMode::Send { last, .. }) => now.duration_since(*last) >= SEND_IDLE_TIMEOUT,
            Some(DataMode::Upload { last, timeout, .. }) => now.duration_since(*last) >= *timeout,
        };
        if !expired {
            return;
        }
        match self.data_mode {
            Some(DataMode::Send { .. }) => {
                self.data_mode = None;
                self.out(link, b"\r\nERROR\r\n");
            }
            _ => self.finish_data(link),
        }
    }

    fn finish_data(&mut self, link: &mut dyn Link) {
        match self.data_mode.take() {
            None => {}
            Some(DataMode::Send { id, buf, .. }) => {
                let res: &[u8] = match self.sockets.get_mut(id).and_then(Option::as_mut) {
                    Some(s) if s.state == 2 => {
                        if self.send_fail > 0 {
                            self.send_fail -= 1;
                            b"\r\nSEND FAIL\r\n"
                        } else if s.send(&buf) {
                            b"\r\nSEND OK\r\n"
                        } else {
                            b"\r\nSEND FAIL\r\n"
                        }
                    }
                    _ => b"\r\nERROR\r\n",
                };
                self.out(link, res);
            }
            Some(DataMode::Upload { name, buf, .. }) => {
                let n = buf.len();
                let sum = qfupl_checksum(&buf);
                self.files
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name, buf);
                let r = Reply::line(format!("+QFUPL: {n},{sum:x}"));
                self.reply(link, r);
            }
        }
    }

    fn file_name_ok(&self, name: &str) -> bool {
        let base = if self.cfg.model.ufs_prefix() {
            match name.strip_prefix("UFS:") {
                Some(b) => b,
                None => return false,
            }
        } else {
            name
        };
        !base.is_empty()
            && name.len() <= MAX_NAME
            && !base.contains([':', '*', '"', '?'])
            && !base.bytes().any(|c| c < 0x20 || c == 0x7f)
    }

    fn socket(&mut self, id: &str, ssl: bool) -> Option<(usize, &mut Socket)> {
        let id: usize = id.parse().ok()?;
        let s = self.sockets.get_mut(id)?.as_mut()?;
        (s.ssl_ctx.is_some() == ssl).then_some((id, s))
    }

    /// Start an open; the reply is `OK` with an immediate failure URC, or
    /// `OK` now and the result URC from [`poll_sockets`](Self::poll_sockets).
    fn begin_open(
        &mut self,
        id: usize,
        cid: usize,
        host: &str,
        port: u16,
        ssl: Option<u8>,
        push: bool,
    ) -> Reply {
        let tag = if ssl.is_some() {
            "+QSSLOPEN"
        } else {
            "+QIOPEN"
        };
        let mut r = Reply::ok();
        let fail = if self.sockets[id].is_some() {
            Some((563, None))
        } else if !self.ctx[cid].active {
            Some((561, None))
        } else if let Some(code) = self.open_fail {
            Some((
                code,
                Some(format!("{} (injected)", crate::ip_error_text(code))),
            ))
        } else {
            // A name in the table stands for its first address.
            let target = lookup(&self.cfg.hosts, host)
                .and_then(|a| a.first().map(ToString::to_string))
                .unwrap_or_else(|| host.to_string());
            match resolve(&target, port) {
                Err(code) => Some((code, None)),
                Ok(addr) => {
                    let cap = self.cfg.socket_buffer;
                    let sock = match ssl {
                        None => Socket::open_tcp(cid as u8, addr, cap),
                        Some(ctx) => {
                            let cfg = self.ssl[ctx as usize].clone();
                            let files = self.files.clone();
                            let get = move |n: &str| {
                                files
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get(n)
                                    .cloned()
                            };
                            let config = client_config(&cfg, &get);
                            Socket::open_tls(
                                cid as u8,
                                ctx,
                                addr,
                                host.to_string(),
                                config,
                                crate::sockets::TlsTiming {
                                    negotiate: Duration::from_secs(u64::from(cfg.negotiatetime)),
                                    alert_wait: self.cfg.tls_alert_wait,
                                },
                                cap,
                            )
                        }
                    };
                    let mut sock = sock;
                    sock.push = push;
                    self.sockets[id] = Some(sock);
                    None
                }
            }
        };
        if let Some((code, detail)) = fail {
            self.set_ip_error(code, detail);
            r.after.push(format!("{tag}: {id},{code}"));
        }
        r
    }

    /// `AT+QISEND`/`AT+QSSLSEND`.
    fn send_cmd(&mut self, link: &mut dyn Link, args: &[String], ssl: bool) -> Option<Reply> {
        let name = if ssl { "+QSSLSEND" } else { "+QISEND" };
        if args.len() != 2 {
            // The Ctrl-Z terminated form is not simulated.
            self.set_ip_error(552, None);
            return Some(Reply::error());
        }
        let Ok(len) = args[1].parse::<usize>() else {
            self.set_ip_error(552, None);
            return Some(Reply::error());
        };
        let Some((id, s)) = self.socket(&args[0], ssl) else {
            self.set_ip_error(552, None);
            return Some(Reply::error());
        };
        if len == 0 {
            let t = s.sent_total;
            return Some(Reply::line(format!("{name}: {t},{t},0")));
        }
        if len > MAX_SEND {
            self.set_ip_error(552, None);
            return Some(Reply::error());
        }
        if s.state != 2 {
            self.set_ip_error(567, None);
            return Some(Reply::error());
        }
        self.out(link, b"\r\n> ");
        let now = Instant::now();
        self.data_mode = Some(DataMode::Send {
            id,
            len,
            buf: Vec::with_capacity(len),
            started: now,
            last: now,
        });
        None
    }

    /// `AT+QIRD`/`AT+QSSLRECV`.
    fn read_cmd(&mut self, link: &mut dyn Link, args: &[String], ssl: bool) -> Option<Reply> {
        let name = if ssl { "+QSSLRECV" } else { "+QIRD" };
        let len = match args.get(1) {
            None if !ssl => Some(MAX_READ),
            None => None,
            Some(a) => a.parse::<usize>().ok(),
        };
        let Some(len) = len.filter(|&l| l <= MAX_READ && args.len() <= 2) else {
            self.set_ip_error(552, None);
            return Some(Reply::error());
        };
        let Some((_, s)) = self.socket(&args[0], ssl) else {
            self.set_ip_error(552, None);
            return Some(Reply::error());
        };
        if len == 0 {
            let total = s.rx_total();
            let unread = s.unread() as u64;
            return Some(Reply::line(format!(
                "{name}: {total},{},{unread}",
                total - unread
            )));
        }
        if s.state == 1 || (s.state == 4 && s.unread() == 0) {
            self.set_ip_error(567, None);
            return Some(Reply::error());
        }
        let data = s.read(len);
        if s.unread() == 0 {
            s.armed = true;
        }
        let with_final = !self.drop_final;
        let bytes = frame_data(&format!("{name}: {}", data.len()), &data, with_final);
        self.out(link, &bytes);
        None
    }

    fn close_cmd(&mut self, args: &[String], ssl: bool) -> Reply {
        let id = match args.first().and_then(|a| a.parse::<usize>().ok()) {
            Some(id) if id < MAX_SOCKETS && args.len() <= 2 => id,
            _ => {
                self.set_ip_error(552, None);
                return Reply::error();
            }
        };
        if args.len() == 2 && args[1].parse::<u32>().is_err() {
            return Reply::error();
        }
        match &self.sockets[id] {
            Some(s) if s.ssl_ctx.is_some() != ssl => Reply::error(),
            _ => {
                self.sockets[id] = None;
                Reply::ok()
            }
        }
    }

    fn qistate_line(id: usize, s: &Socket) -> String {
        format!(
            "+QISTATE: {id},\"TCP\",\"{}\",{},{},{},{},0,0,\"uart1\"",
            s.ip, s.port, s.local_port, s.state, s.cid
        )
    }

    fn qsslstate_line(id: usize, s: &Socket) -> String {
        format!(
            "+QSSLSTATE: {id},\"SSLClient\",\"{}\",{},{},{},{},{id},0,\"uart1\",{}",
            s.ip,
            s.port,
            s.local_port,
            s.state,
            s.cid,
            s.ssl_ctx.unwrap_or(0)
        )
    }

    fn state_lines(&self, ssl: bool, filter: impl Fn(usize, &Socket) -> bool) -> Vec<String> {
        self.sockets
            .iter()
            .enumerate()
            .filter_map(|(id, s)| {
                let s = s.as_ref()?;
                if s.ssl_ctx.is_some() != ssl || !filter(id, s) {
                    return None;
                }
                Some(if ssl {
                    Self::qsslstate_line(id, s)
                } else {
                    Self::qistate_line(id, s)
                })
            })
            .collect()
    }

    fn qsslcfg(&mut self, raw: &str) -> Reply {
        let args = split_raw(raw.strip_prefix('=').unwrap_or(""));
        if args.len() < 2 || args.len() > 3 {
            return Reply::error();
        }
        let opt = args[0].0.to_ascii_lowercase();
        let ctx = match args[1].0.parse::<usize>() {
            Ok(c) if c < MAX_SSL_CTX && !args[1].1 => c,
            _ => return Reply::error(),
        };
        let c = &mut self.ssl[ctx];
        if args.len() == 2 {
            let v = match opt.as_str() {
                "sslversion" => c.sslversion.to_string(),
                "ciphersuite" => c.ciphersuite.clone(),
                "seclevel" => c.seclevel.to_string(),
                "cacert" => format!("\"{}\"", c.cacert),
                "clientcert" => format!("\"{}\"", c.clientcert),
                "clientkey" => format!("\"{}\"", c.clientkey),
                "ignorelocaltime" => c.ignorelocaltime.to_string(),
                "negotiatetime" => c.negotiatetime.to_string(),
                "sni" => c.sni.to_string(),
                _ => return Reply::error(),
            };
            return Reply::line(format!("+QSSLCFG: \"{opt}\",{ctx},{v}"));
        }
        let (val, quoted) = (&args[2].0, args[2].1);
        let num = |max: u32| -> Option<u32> {
            if quoted {
                return None;
            }
            val.parse::<u32>().ok().filter(|&n| n <= max)
        };
        match opt.as_str() {
            "sslversion" => match num(4) {
                Some(v) => c.sslversion = v as u8,
                None => return Reply::error(),
            },
            "ciphersuite" => {
                let up = val.to_ascii_uppercase();
                let ok = !quoted
                    && up.len() == 6
                    && up.starts_with("0X")
                    && up[2..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Reply::error();
                }
                c.ciphersuite = up;
            }
            "seclevel" => match num(2) {
                Some(v) => c.seclevel = v as u8,
                None => return Reply::error(),
            },
            "cacert" => c.cacert = val.clone(),
            "clientcert" => c.clientcert = val.clone(),
            "clientkey" => c.clientkey = val.clone(),
            "ignorelocaltime" => match num(1) {
                Some(v) => c.ignorelocaltime = v as u8,
                None => return Reply::error(),
            },
            "negotiatetime" => match num(300).filter(|&n| n >= 10) {
                Some(v) => c.negotiatetime = v as u16,
                None => return Reply::error(),
            },
            "sni" => match num(1) {
                Some(v) => c.sni = v as u8,
                None => return Reply::error(),
            },
            _ => return Reply::error(),
        }
        Reply::ok()
    }

    fn qfupl(&mut self, link: &mut dyn Link, args: &[String]) -> Option<Reply> {
        let name = args.first().cloned().unwrap_or_default();
        let size = match args.get(1) {
            None => Some(10240),
            Some(a) => a.parse::<usize>().ok(),
        };
        let timeout = match args.get(2) {
            None => Some(5),
            Some(a) => a.parse::<u64>().ok().filter(|t| (1..=65535).contains(t)),
        };
        let ack = match args.get(3).map(String::as_str) {
            None | Some("0") => Some(false),
            Some("1") => Some(true),
            _ => None,
        };
        let (Some(size), Some(timeout), Some(ack)) = (size, timeout, ack) else {
            return Some(Reply::cme(425));
        };
        if args.len() > 4 || size == 0 {
            return Some(Reply::cme(425));
        }
        if !self.file_name_ok(&name) {
            return Some(Reply::cme(406));
        }
        {
            let fs = self.files.lock().unwrap_or_else(|e| e.into_inner());
            if fs.contains_key(&name) {
                return Some(Reply::cme(407));
            }
            if size > MAX_FILE_SIZE {
                return Some(Reply::cme(423));
            }
            let used: usize = fs.values().map(Vec::len).sum();
            if fs.len() >= MAX_FILES || used + size > MAX_FS_SIZE {
                return Some(Reply::cme(403));
            }
        }
        self.out(link, b"\r\nCONNECT\r\n");
        let now = Instant::now();
        self.data_mode = Some(DataMode::Upload {
            name,
            size,
            buf: Vec::with_capacity(size),
            timeout: Duration::from_secs(timeout),
            ack,
            started: now,
            last: now,
        });
        None
    }

    /// Socket, SSL and file commands. `None`: not one of them.
    pub(super) fn net_command(
        &mut self,
        link: &mut dyn Link,
        name: &str,
        form: char,
        args: &[String],
        raw: &str,
    ) -> Option<Option<Reply>> {
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        let r = match (name, form) {
            ("+QIOPEN", '=') => {
                let cid = self.cid_arg(arg(0));
                let id = arg(1).parse::<usize>().ok().filter(|&i| i < MAX_SOCKETS);
                let port = arg(4).parse::<u16>().ok();
                let local_ok = args.len() < 6 || arg(5).parse::<u16>().is_ok();
                // Access mode 0 (buffer) or 1 (direct push); 2 (transparent) is not simulated.
                let mode = if args.len() < 7 {
                    Some(false)
                } else {
                    push_mode(arg(6))
                };
                match (cid, id, port, mode) {
                    (Some(cid), Some(id), Some(port), Some(push))
                        if arg(2).eq_ignore_ascii_case("TCP")
                            && local_ok
                            && (5..=7).contains(&args.len()) =>
                    {
                        let host = arg(3).to_string();
                        self.begin_open(id, cid, &host, port, None, push)
                    }
                    _ => {
                        self.set_ip_error(552, None);
                        Reply::error()
                    }
                }
            }
            ("+QSSLOPEN", '=') => {
                let cid = self.cid_arg(arg(0));
                let ctx = arg(1)
                    .parse::<u8>()
                    .ok()
                    .filter(|&c| (c as usize) < MAX_SSL_CTX);
                let id = arg(2).parse::<usize>().ok().filter(|&i| i < MAX_SOCKETS);
                let port = arg(4).parse::<u16>().ok();
                let mode = if args.len() < 6 {
                    Some(false)
                } else {
                    push_mode(arg(5))
                };
                match (cid, ctx, id, port, mode) {
                    (Some(cid), Some(ctx), Some(id), Some(port), Some(push))
                        if (5..=6).contains(&args.len()) =>
                    {
                        let host = arg(3).to_string();
                        self.begin_open(id, cid, &host, port, Some(ctx), push)
                    }
                    _ => {
                        self.set_ip_error(552, None);
                        Reply::error()
                    }
                }
            }
            ("+QIDNSGIP", '=') => self.qidnsgip(args),
            ("+QISEND", '=') => return Some(self.send_cmd(link, args, false)),
            ("+QSSLSEND", '=') => return Some(self.send_cmd(link, args, true)),
            ("+QIRD", '=') => return Some(self.read_cmd(link, args, false)),
            ("+QSSLRECV", '=') => return Some(self.read_cmd(link, args, true)),
            ("+QICLOSE", '=') => self.close_cmd(args, false),
            ("+QSSLCLOSE", '=') => self.close_cmd(args, true),
            ("+QISTATE", '?' | 'x') => Reply::lines(self.state_lines(false, |_, _| true)),
            ("+QISTATE", '=') => {
                let v = arg(1).parse::<usize>().ok();
                match (arg(0), v) {
                    ("0", Some(cid)) => {
                        Reply::lines(self.state_lines(false, |_, s| s.cid as usize == cid))
                    }
                    ("1", Some(id)) => Reply::lines(self.state_lines(false, |i, _| i == id)),
                    _ => Reply::error(),
                }
            }
            ("+QSSLSTATE", '?' | 'x') => Reply::lines(self.state_lines(true, |_, _| true)),
            ("+QSSLSTATE", '=') => {
                let id = match args.len() {
                    1 => arg(0).parse::<usize>().ok(),
                    2 if arg(0) == "1" => arg(1).parse::<usize>().ok(),
                    _ => None,
                };
                match id {
                    Some(id) => Reply::lines(self.state_lines(true, |i, _| i == id)),
                    None => Reply::error(),
                }
            }
            ("+QSSLCFG", '=') => self.qsslcfg(raw),
            ("+QFUPL", '=') => return Some(self.qfupl(link, args)),
            ("+QFDEL", '=') => {
                let name = arg(0);
                let mut fs = self.files.lock().unwrap_or_else(|e| e.into_inner());
                if name.contains('*') {
                    fs.retain(|k, _| !glob(name, k));
                    Reply::ok()
                } else if !self.file_name_ok(name) {
                    Reply::cme(406)
                } else if fs.remove(name).is_some() {
                    Reply::ok()
                } else {
                    Reply::cme(405)
                }
            }
            ("+QFLST", 'x' | '=') => {
                let pat = if form == 'x' { "*" } else { arg(0) };
                let fs = self.files.lock().unwrap_or_else(|e| e.into_inner());
                Reply::lines(
                    fs.iter()
                        .filter(|(k, _)| glob(pat, k))
                        .map(|(k, v)| format!("+QFLST: \"{k}\",{}", v.len()))
                        .collect(),
                )
            }
            ("+QFLDS", 'x' | '=') => {
                let fs = self.files.lock().unwrap_or_else(|e| e.into_inner());
                let used: usize = fs.values().map(Vec::len).sum();
                if form == 'x' {
                    Reply::line(format!("+QFLDS: {used},{}", fs.len()))
                } else {
                    Reply::line(format!(
                        "+QFLDS: {},{MAX_FS_SIZE}",
                        MAX_FS_SIZE.saturating_sub(used)
                    ))
                }
            }
            (
                "+QIOPEN" | "+QIDNSGIP" | "+QSSLOPEN" | "+QISEND" | "+QSSLSEND" | "+QIRD"
                | "+QSSLRECV" | "+QICLOSE" | "+QSSLCLOSE" | "+QISTATE" | "+QSSLSTATE" | "+QSSLCFG"
                | "+QFUPL" | "+QFDEL" | "+QFLST" | "+QFLDS",
                't',
            ) => Reply::ok(),
            _ => return None,
        };
        Some(Some(r))
    }
}

/// The `<access_mode>` argument of `AT+QIOPEN`/`AT+QSSLOPEN`: `Some(false)` buffer (0),
/// `Some(true)` direct push (1), `None` transparent (2, not simulated) or invalid.
fn push_mode(arg: &str) -> Option<bool> {
    match arg {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_vectors() {
        assert_eq!(format!("{:x}", qfupl_checksum(b"1234567890")), "3938");
        assert_eq!(format!("{:x}", qfupl_checksum(b"hello")), "6b09");
        assert_eq!(format!("{:x}", qfupl_checksum(b"0123456789")), "3839");
        assert_eq!(format!("{:x}", qfupl_checksum(b"abc")), "262");
        assert_eq!(format!("{:x}", qfupl_checksum(b"A")), "4100");
        assert_eq!(format!("{:x}", qfupl_checksum(b"")), "0");
    }

    #[test]
    fn globbing() {
        assert!(glob("*", "UFS:a.pem"));
        assert!(glob("UFS:*", "UFS:a.pem"));
        assert!(glob("*.pem", "a.pem"));
        assert!(!glob("*.pem", "a.der"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("abc", "abcd"));
    }
}
