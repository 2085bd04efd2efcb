//! Row 5: row 3 with the MQTT 3.1.1 client built in as well (feature `mqtt311`) and selected
//! (`MqttConfig::version = Version::V311`), as an Aliyun public-instance device runs it. Row 5
//! minus row 3 is what the 3.1.1 client adds (the MQTT 5 client stays: the version is chosen at
//! run time).
#![no_std]
#![no_main]

use core::hint::black_box;

use embassy_executor::Spawner;
use embassy_time::{Duration, with_timeout};
use footprint::{self as fw, certs};
use quectel::asynch::{Apn, TlsConfig};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport, Version};
use static_cell::ConstStaticCell;

static MQTT_BUFFER: ConstStaticCell<[u8; fw::MQTT_BUFFER]> =
    ConstStaticCell::new([0; fw::MQTT_BUFFER]);

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let modem = fw::start(&spawner);
    let r = fw::at_sim_datacall(&modem).await;
    fw::report(&r);
    fw::report(&fw::tcp_echo(&modem).await);

    let tls = TlsConfig::new(certs::CA_PEM).with_client_identity(certs::DEVICE_PEM, certs::KEY_PEM);
    let transport = Transport::ModemTls { ssl_ctx: 1, tls };
    let mut config = MqttConfig::new(
        fw::HOST,
        8883,
        fw::CLIENT_ID,
        transport,
        Apn::new("internet"),
    );
    config.version = black_box(Version::V311);
    let Ok(mut mqtt) = Mqtt::new(config, MQTT_BUFFER.take(), fw::MQTT_RX) else {
        loop {
            fw::pause().await;
        }
    };
    let _ = mqtt.subscribe_on_connect("devices/861234567890123/down", QoS::AtLeastOnce);
    loop {
        let mut conn = match mqtt.connect(&modem).await {
            Ok(c) => c,
            Err(e) => {
                fw::report::<(), _>(&Err(e));
                continue;
            }
        };
        fw::report(
            &conn
                .subscribe("devices/861234567890123/cmd", QoS::AtMostOnce)
                .await,
        );
        fw::report(
            &conn
                .publish(
                    "devices/861234567890123/up",
                    b"Hello, AWS Cloud!",
                    QoS::AtLeastOnce,
                )
                .await,
        );
        if let Ok(Ok(msg)) = with_timeout(Duration::from_secs(30), conn.recv()).await {
            black_box((msg.topic(), msg.payload()));
        }
        let why = conn
            .run(|topic, payload| {
                black_box((topic, payload));
            })
            .await;
        fw::report::<(), _>(&Err(why));
    }
}
