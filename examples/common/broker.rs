//! The MQTT broker the host examples embed (rumqttd, MQTT 5 over TLS with client certificates on
//! a free port of 127.0.0.1), shared by `quickstart` and `sensor_psm`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration as StdDuration, Instant};

use quectel_mock::peers::TestPki;

/// Writes the PKI where rumqttd wants it, starts the broker on a free port of 127.0.0.1 and
/// returns its address and an in-process link (the "cloud").
pub fn start_broker(
    pki: &TestPki,
    dir: &std::path::Path,
) -> Result<(SocketAddr, rumqttd::local::LinkTx, rumqttd::local::LinkRx), String> {
    use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = |name: &str, pem: &str| -> Result<String, String> {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    let tls = TlsConfig::Rustls {
        capath: Some(file("ca.pem", &pki.ca_pem)?), // verifies client certificates
        certpath: file("server.pem", &pki.server_cert_pem)?,
        keypath: file("server.key", &pki.server_key_pem)?,
    };
    // A free port: bind port 0, note the number, release it for rumqttd.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    let server = ServerSettings {
        name: "v5-mtls".into(),
        listen: addr,
        tls: Some(tls),
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 128 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        router: RouterConfig {
            max_connections: 10,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v5: Some([("1".to_string(), server)].into()),
        ..Default::default()
    };
    let mut broker = Broker::new(config);
    let (cloud_tx, cloud_rx) = broker
        .link("cloud")
        .map_err(|e| format!("broker link: {e}"))?;
    std::thread::spawn(move || {
        if let Err(e) = broker.start() {
            eprintln!("broker: {e}");
        }
    });
    // Wait until it listens (reads the certificates, binds).
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if started.elapsed() > StdDuration::from_secs(10) {
            return Err(format!("the broker did not start listening on {addr}"));
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
    Ok((addr, cloud_tx, cloud_rx))
}
