//! The `quectel-mock` command-line server, driven by the driver over a real TCP connection: what
//! QEMU-run firmware and host tools use.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use embassy_futures::select::{Either, select};
use embassy_time::Duration;
use embedded_io_adapters::tokio_1::FromTokio;
use quectel::asynch::{self, Apn, Remote, Resources, SimStatus};
use quectel::model::Model;
use quectel_mock::peers::TcpEchoServer;

/// Builds the `quectel-mock` binary (a no-op when `cargo test --workspace` already did) and
/// returns its path.
fn mock_modem_binary() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "quectel-mock", "--bin", "quectel-mock"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building quectel-mock failed");
    // target/<profile>/deps/cli-<hash> -> target/<profile>/quectel-mock
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("quectel-mock");
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(mock_modem_binary())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("quectel-mock starts");
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep draining: the server logs connections, and a closed pipe would kill it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("listening line")
        .to_string();
    (Server(child), addr)
}

#[test]
fn driver_over_tcp_to_the_cli_server() {
    let (_server, addr) = start(&[
        "--tcp",
        "127.0.0.1:0",
        "--model",
        "ec25",
        "--pin",
        "1234",
        "--search-ms",
        "50",
    ]);
    let (echo_addr, _echo) = TcpEchoServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (rx, tx) = stream.into_split();
        let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
        let (runner, modem) = asynch::new(
            resources,
            FromTokio::new(rx),
            FromTokio::new(tx),
            support::config(),
        );
        let app = async {
            let id = modem.init().await.unwrap();
            assert_eq!(id.model, Model::Ec25);
            assert_eq!(modem.sim().status().await.unwrap(), SimStatus::PinRequired);
            modem.sim().unlock("1234").await.unwrap();
            modem
                .data_call()
                .configure(1, &Apn::new("internet"))
                .await
                .unwrap();
            modem
                .network()
                .wait_network_ready(1, Duration::from_secs(10))
                .await
                .unwrap();
            let mut sock = modem
                .connect(
                    1,
                    Remote::Tcp {
                        host: "127.0.0.1",
                        port: echo_addr.port(),
                    },
                )
                .await
                .unwrap();
            let msg = b"through the CLI's TCP port and a real socket\r\nOK\r\n\x00";
            embedded_io_async::Write::write_all(&mut sock, msg)
                .await
                .unwrap();
            let mut back = Vec::new();
            let mut buf = [0u8; 64];
            while back.len() < msg.len() {
                let n = sock.read(&mut buf).await.unwrap();
                back.extend_from_slice(&buf[..n]);
            }
            assert_eq!(back, msg);
            sock.close().await.unwrap();
        };
        match select(runner.run(), app).await {
            Either::First(never) => never,
            Either::Second(()) => {}
        }
    });
}

#[cfg(unix)]
#[test]
fn cli_serves_a_pty() {
    use std::io::{Read, Write};
    let mut child = Command::new(mock_modem_binary())
        .args(["--pty", "--model", "bg96"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("quectel-mock starts");
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut path = None;
    for _ in 0..5 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with("/dev/")) {
            path = Some(p.to_string());
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let server = Server(child);
    let path = path.expect("the PTY path is printed");
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    tty.write_all(b"ATE0\r").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !got.ends_with(b"\r\nOK\r\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "no OK: {:?}",
            String::from_utf8_lossy(&got)
        );
        let n = tty.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    drop(server);
}
