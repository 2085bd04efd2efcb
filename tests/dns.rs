//! Host names over the behavioural mock modem: lookups with `AT+QIDNSGIP` (the mock resolves
//! the names a test gives it and answers Quectel's 565 for the others), reqwless by host name
//! over the modem's `TcpConnect` + `Dns`, and the DNS servers of a data call.

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use embassy_futures::join::join;
use embassy_time::Duration;
use embedded_nal_async::Dns;
use quectel::Error;
use quectel::asynch::{AddrType, Resources};
use reqwless::client::HttpClient;
use reqwless::request::Method;
use support::{bg96 as mock, bring_up, fast_config, with_modem_in};

fn resources() -> &'static mut Resources<2048, 2, 2048> {
    Box::leak(Box::new(Resources::new()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A one-route HTTP/1.1 server on 127.0.0.1: `GET /hello` answers `hello, <Host header>`;
/// other paths 404. Records every request head it got.
struct HttpServer {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let host = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Host: ").or(l.strip_prefix("host: ")))
                    .unwrap_or("")
                    .to_string();
                let (status, body) = if head.starts_with("GET /hello ") {
                    ("200 OK", format!("hello, {host}"))
                } else {
                    ("404 Not Found", String::new())
                };
                seen.lock().unwrap().push(head);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpServer { port, heads }
    }
}

#[test]
fn reqwless_gets_a_page_by_host_name_through_the_modem() {
    let server = HttpServer::start();
    let mock = mock().host("device-api.test", &["127.0.0.1"]);
    let url = format!("http://device-api.test:{}/hello", server.port);
    let (status, body, commands) = with_modem_in(resources(), fast_config(), mock, async |m, h| {
        bring_up(m).await;
        // One value is both the TcpConnect and the Dns reqwless needs.
        let stack = m.tcp(1);
        let mut client = HttpClient::new(&stack, &stack);
        let mut rx = [0u8; 2048];
        let mut request = client.request(Method::GET, &url).await.unwrap();
        let response = request.send(&mut rx).await.unwrap();
        let status = response.status.0;
        let body = response.body().read_to_end().await.unwrap().to_vec();
        (status, body, h.commands())
    });
    assert_eq!(status, 200);
    // The server saw the name (reqwless sends it in `Host`), not an address.
    assert_eq!(String::from_utf8(body).unwrap(), "hello, device-api.test");
    assert_eq!(server.heads.lock().unwrap().len(), 1);
    // The name went to the modem's resolver, and the socket to the address it gave.
    let lookup = commands
        .iter()
        .position(|c| c == "AT+QIDNSGIP=1,\"device-api.test\"")
        .expect("AT+QIDNSGIP sent");
    let open = commands
        .iter()
        .position(|c| {
            c.starts_with(&format!(
                "AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{}",
                server.port
            ))
        })
        .expect("socket opened on the resolved address");
    assert!(lookup < open);
}

#[test]
fn an_unknown_name_is_quectels_dns_error() {
    let server = HttpServer::start();
    let mock = mock().host("device-api.test", &["127.0.0.1"]);
    with_modem_in(resources(), fast_config(), mock, async |m, h| {
        bring_up(m).await;
        assert_eq!(
            m.resolve(1, "nowhere.test", AddrType::Either).await,
            Err(Error::Ip(565))
        );
        let stack = m.tcp(1);
        assert_eq!(
            stack
                .get_host_by_name("nowhere.test", AddrType::Either)
                .await,
            Err(Error::Ip(565))
        );
        // reqwless reports it as its DNS error, and nothing was connected.
        let mut client = HttpClient::new(&stack, &stack);
        let url = format!("http://nowhere.test:{}/hello", server.port);
        let r = client.request(Method::GET, &url).await.err();
        assert!(matches!(r, Some(reqwless::Error::Dns)), "{r:?}");
        assert!(!h.commands().iter().any(|c| c.starts_with("AT+QIOPEN")));
        // The resolver is usable again at once.
        assert_eq!(
            m.resolve(1, "device-api.test", AddrType::Either).await,
            Ok(ip("127.0.0.1"))
        );
    });
    assert!(server.heads.lock().unwrap().is_empty());
}

#[test]
fn address_types_literals_and_bad_names() {
    let mock = mock()
        .host("dual.test", &["::1", "127.0.0.1", "127.0.0.9"])
        .host("v4only.test", &["127.0.0.1"]);
    with_modem_in(resources(), fast_config(), mock, async |m, h| {
        bring_up(m).await;
        let r = |host: &'static str, t| m.resolve(1, host, t);
        assert_eq!(r("dual.test", AddrType::Either).await, Ok(ip("::1")));
        assert_eq!(r("dual.test", AddrType::IPv4).await, Ok(ip("127.0.0.1")));
        assert_eq!(r("DUAL.test", AddrType::IPv6).await, Ok(ip("::1")));
        assert_eq!(
            r("v4only.test", AddrType::IPv6).await,
            Err(Error::NoAddress)
        );
        // Literals are answered without the modem.
        let before = h.commands().len();
        assert_eq!(r("127.0.0.5", AddrType::Either).await, Ok(ip("127.0.0.5")));
        assert_eq!(r("::1", AddrType::IPv4).await, Err(Error::NoAddress));
        // Names the modem could not take are refused before anything is sent.
        assert_eq!(r("", AddrType::Either).await, Err(Error::InvalidArgument));
        assert_eq!(
            r("a\"b.test", AddrType::Either).await,
            Err(Error::InvalidArgument)
        );
        let long: &'static str = Box::leak("a".repeat(254).into_boxed_str());
        assert_eq!(r(long, AddrType::Either).await, Err(Error::InvalidArgument));
        assert_eq!(
            m.resolve(0, "dual.test", AddrType::Either).await,
            Err(Error::InvalidArgument)
        );
        assert_eq!(h.commands().len(), before);
        // Reverse lookups: the modems have no command for them.
        let mut name = [0u8; 255];
        assert_eq!(
            m.dns(1)
                .get_host_by_address(ip("127.0.0.1"), &mut name)
                .await,
            Err(Error::Unsupported)
        );
        assert_eq!(
            m.dns(1).get_host_by_name("dual.test", AddrType::IPv4).await,
            Ok(ip("127.0.0.1"))
        );
        // A lookup on a context that is not active is refused by the modem.
        m.data_call().deactivate(1).await.unwrap();
        assert_eq!(r("dual.test", AddrType::Either).await, Err(Error::Error));
    });
}

#[test]
fn a_dropped_lookup_never_answers_the_next_one() {
    let mock = mock()
        .host("first.test", &["127.0.0.2"])
        .host("second.test", &["127.0.0.3"])
        .dns_delay(StdDuration::from_millis(400));
    with_modem_in(resources(), fast_config(), mock, async |m, _| {
        bring_up(m).await;
        // Dropped after the modem took it: its result comes 400 ms later.
        let dropped = embassy_time::with_timeout(
            Duration::from_millis(100),
            m.resolve(1, "first.test", AddrType::Either),
        )
        .await;
        assert!(dropped.is_err(), "the lookup was not cut off: {dropped:?}");
        assert_eq!(
            m.resolve(1, "second.test", AddrType::Either).await,
            Ok(ip("127.0.0.3"))
        );
        // Two at once: each gets its own.
        let (a, b) = join(
            m.resolve(1, "first.test", AddrType::Either),
            m.dns(1).get_host_by_name("second.test", AddrType::Either),
        )
        .await;
        assert_eq!((a, b), (Ok(ip("127.0.0.2")), Ok(ip("127.0.0.3"))));
    });
}

#[test]
fn a_reboot_ends_a_lookup() {
    let mock = mock()
        .host("slow.test", &["127.0.0.2"])
        .dns_delay(StdDuration::from_secs(3));
    with_modem_in(resources(), fast_config(), mock, async |m, h| {
        bring_up(m).await;
        let lookup = m.resolve(1, "slow.test", AddrType::Either);
        let reboot = async {
            embassy_time::Timer::after(Duration::from_millis(200)).await;
            h.reboot();
        };
        let (r, ()) = join(lookup, reboot).await;
        assert_eq!(r, Err(Error::Rebooted));
    });
}

#[test]
fn dns_servers_are_reported_and_can_be_set() {
    let mock = mock().dns("10.11.12.13", "10.11.12.14");
    with_modem_in(resources(), fast_config(), mock, async |m, h| {
        bring_up(m).await;
        let dc = m.data_call();
        let info = dc.info(1).await.unwrap();
        assert_eq!(info.dns_primary.as_deref(), Some("10.11.12.13"));
        assert_eq!(info.dns_secondary.as_deref(), Some("10.11.12.14"));

        dc.set_dns_servers(1, ip("1.1.1.1"), Some(ip("2606:4700:4700::1111")))
            .await
            .unwrap();
        assert!(
            h.commands()
                .contains(&"AT+QIDNSCFG=1,\"1.1.1.1\",\"2606:4700:4700::1111\"".to_string())
        );
        let servers = dc.dns_servers(1).await.unwrap();
        assert_eq!(servers.primary.as_str(), "1.1.1.1");
        assert_eq!(servers.secondary.as_str(), "2606:4700:4700::1111");
        let info = dc.info(1).await.unwrap();
        assert_eq!(info.dns_primary.as_deref(), Some("1.1.1.1"));
        assert_eq!(info.dns_secondary.as_deref(), Some("2606:4700:4700::1111"));

        // Only a primary server: the modem reports an empty secondary, shown as none.
        dc.set_dns_servers(1, ip("9.9.9.9"), None).await.unwrap();
        let info = dc.info(1).await.unwrap();
        assert_eq!(info.dns_primary.as_deref(), Some("9.9.9.9"));
        assert_eq!(info.dns_secondary, None);

        assert_eq!(
            dc.set_dns_servers(0, ip("9.9.9.9"), None).await,
            Err(Error::OutOfRange)
        );
    });
}

#[test]
fn blocking_facade_resolves_and_sets_dns_servers() {
    let (rx, tx, _h) = mock().host("device-api.test", &["127.0.0.1"]).spawn();
    let uart = Box::leak(Box::new(quectel::blocking::Halves::new(rx, tx)));
    let mut m = quectel::blocking::new(resources(), uart, fast_config());
    m.init().unwrap();
    m.data_call()
        .configure(1, &quectel::asynch::Apn::new("internet"))
        .unwrap();
    m.network()
        .wait_network_ready(1, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        m.resolve(1, "device-api.test", AddrType::Either),
        Ok(ip("127.0.0.1"))
    );
    assert_eq!(
        m.resolve(1, "nowhere.test", AddrType::Either),
        Err(Error::Ip(565))
    );
    m.data_call()
        .set_dns_servers(1, ip("1.0.0.1"), Some(ip("8.8.8.8")))
        .unwrap();
    let servers = m.data_call().dns_servers(1).unwrap();
    assert_eq!(
        (servers.primary.as_str(), servers.secondary.as_str()),
        ("1.0.0.1", "8.8.8.8")
    );
}
