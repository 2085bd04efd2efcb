//! Row 6: row 3 + AWS IoT OTA (`quectel::cloud::aws::ota` over `quectel::ota`): the boot
//! report, the next job, the stream download into embassy-boot's update partition through the
//! on-chip flash, the SHA-256 and the ECDSA P-256 signature check, the swap request. The
//! partitions are those of `examples/nrf52840-dk/partitions.x`.
#![no_std]
#![no_main]

use core::hint::black_box;

use embassy_executor::Spawner;
use footprint::flash::Region;
use footprint::{self as fw, certs};
use quectel::asynch::{Apn, TlsConfig};
use quectel::cloud::aws::ota::{AwsOta, Job};
use quectel::mqtt::{Mqtt, MqttConfig, QoS, Transport};
use quectel::ota::{CodeSigningKey, Updater};
use static_cell::ConstStaticCell;

static MQTT_BUFFER: ConstStaticCell<[u8; fw::MQTT_BUFFER]> =
    ConstStaticCell::new([0; fw::MQTT_BUFFER]);
static JOB: ConstStaticCell<[u8; 2048]> = ConstStaticCell::new([0; 2048]);

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let modem = fw::start(&spawner);
    let r = fw::at_sim_datacall(&modem).await;
    fw::report(&r);
    fw::report(&fw::tcp_echo(&modem).await);

    let mut der = [0u8; 1024];
    let Ok(key) = CodeSigningKey::from_certificate_pem(certs::CA_PEM, &mut der) else {
        loop {
            fw::pause().await;
        }
    };
    let mut aligned = [0u8; 4];
    let Ok(mut updater) = Updater::new(
        Region::new(0x0008_1000, 0x000F_A000),
        Region::new(0x0000_6000, 0x0000_7000),
        Region::new(0x0007_F000, 0x0008_1000),
        &mut aligned,
    ) else {
        loop {
            fw::pause().await;
        }
    };
    let job_buf = JOB.take();

    let tls = TlsConfig::new(certs::CA_PEM).with_client_identity(certs::DEVICE_PEM, certs::KEY_PEM);
    let transport = Transport::ModemTls { ssl_ctx: 1, tls };
    let config = MqttConfig::new(
        fw::HOST,
        8883,
        fw::CLIENT_ID,
        transport,
        Apn::new("internet"),
    );
    let Ok(mut mqtt) = Mqtt::new(config, MQTT_BUFFER.take(), fw::MQTT_RX) else {
        loop {
            fw::pause().await;
        }
    };
    let Ok(mut ota) = AwsOta::new(fw::CLIENT_ID, fw::MQTT_RX) else {
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
                .publish(
                    "devices/861234567890123/up",
                    b"Hello, AWS Cloud!",
                    QoS::AtLeastOnce,
                )
                .await,
        );
        black_box(ota.after_boot(&mut conn, &mut updater).await.is_ok());
        let job = ota.next_job(&mut conn, job_buf).await;
        if let Ok(Job::Ota(job)) = job {
            let done = ota.download(&mut conn, &mut updater, &job, &key).await;
            if done.is_ok() {
                // The image is staged: reset into the bootloader.
                cortex_m::peripheral::SCB::sys_reset();
            }
            fw::report(&done);
        }
        let why = conn
            .run(|topic, payload| {
                black_box((topic, payload));
            })
            .await;
        fw::report::<(), _>(&Err(why));
    }
}
