//! What comes after the first connection: a firmware update over the air from AWS IoT Jobs and
//! MQTT streams (feature `ota`), into embassy-boot's update partition.
//!
//! [`run_ota_aws`] connects like [`run_modem_tls`](crate::run_modem_tls) (modem TLS, SSL
//! context 1, the client id and the topic), then:
//!
//! 1. reports how the last update ended, if one was pending: a new image on its trial boot
//!    confirms itself (it booted and reconnected: its self-test) and the job is `SUCCEEDED`;
//!    an image the bootloader rolled back makes the job `FAILED`;
//! 2. asks for the next job; no job, or a job that is not an OTA job, ends the flow;
//! 3. downloads the image block by block into the update partition (resuming after a reset
//!    or a lost link from the blocks already in flash), checks its SHA-256 and its ECDSA P-256
//!    signature against the code-signing certificate, and only then marks it for the swap.
//!
//! [`OtaOutcome::ResetToUpdate`] asks the caller to reset the MCU: the bootloader swaps the
//! image in, and the new image runs this flow again, which confirms it.

use embassy_time::{Instant, with_timeout};
use embedded_io_async::{Read, Write};
use embedded_storage_async::nor_flash::NorFlash;
use quectel::asynch::{self, Config, Resources};
use quectel::cloud::CloudError;
use quectel::cloud::aws::ota::{AwsOta, BootReport, Job};
use quectel::mqtt::{Mqtt, QoS};
use quectel::ota::{CodeSigningKey, Updater};

use crate::{
    AppConfig, AppError, Report, Step, bounded, bring_up, driver, empty_report, give_up_or_retry,
    modem_tls_mqtt, or_imei, with_runner,
};

/// Bytes of MQTT client buffer inside [`run_ota_aws`]'s future: [`OTA_MQTT_RX`] for one
/// inbound packet (one stream block), the rest for outbound packets.
pub const OTA_MQTT_BUFFER: usize = 6144;
/// Of [`OTA_MQTT_BUFFER`], the bytes for one inbound packet: a 4 KiB block, its topic and
/// CBOR framing (`AwsOta::new` picks the largest block that fits).
pub const OTA_MQTT_RX: usize = 4608;
/// Largest job message (the job document inside `$next/get/accepted`).
const JOB_MAX: usize = 2048;
/// Scratch for decoding the code-signing certificate from PEM.
const CERT_DER_MAX: usize = 2048;

/// How [`run_ota_aws`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtaOutcome {
    /// No job is pending.
    NoJob,
    /// The next job is not an OTA job: its id (the application handles it).
    OtherJob(heapless::String<64>),
    /// A new image is in the update partition, verified and marked for the swap: reset the MCU
    /// (`cortex_m::peripheral::SCB::sys_reset()`); the bootloader swaps it in.
    ResetToUpdate,
}

/// What [`run_ota_aws`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaReport {
    /// The connection part (model, IMEI, address).
    pub report: Report,
    /// How the previous update ended, as reported to the job.
    pub boot: BootReport,
    /// What to do next.
    pub outcome: OtaOutcome,
}

/// Connects over modem TLS, reports the outcome of a pending update, and downloads, verifies
/// and stages the next OTA job's image through `updater` (see the [module docs](self)).
///
/// `code_signing_cert_pem`: the certificate of the key that signed the images (AWS code
/// signing, ECDSA P-256 with SHA-256). The download is bounded by [`Timeouts::ota`]
/// (crate::Timeouts::ota); a lost link ends the flow with an error and the next call resumes
/// from the blocks already in flash.
pub async fn run_ota_aws<R, W, DFU, STATE, REC, const N: usize, const S: usize, const RB: usize>(
    rx: R,
    tx: W,
    resources: &mut Resources<N, S, RB>,
    cfg: &AppConfig<'_>,
    updater: &mut Updater<'_, DFU, STATE, REC>,
    code_signing_cert_pem: &[u8],
) -> Result<OtaReport, AppError>
where
    R: Read,
    W: Write,
    DFU: NorFlash,
    STATE: NorFlash,
    REC: NorFlash,
{
    let mut scratch = [0u8; CERT_DER_MAX];
    let key = CodeSigningKey::from_certificate_pem(code_signing_cert_pem, &mut scratch)
        .map_err(|e| AppError::Ota(CloudError::Ota(e)))?;
    let started = Instant::now();
    let config = Config {
        startup_timeout: cfg.timeouts.startup,
        ..Config::default()
    };
    let (runner, modem) = asynch::new(resources, rx, tx, config);
    let flow = async {
        let mut report = empty_report();
        bring_up(&modem, cfg, &mut report).await?;
        let imei = report.imei.clone();
        let client_id = or_imei(cfg.client_id, &imei);
        let mqtt_config = modem_tls_mqtt(cfg, client_id);
        let mut buffer = [0u8; OTA_MQTT_BUFFER];
        let mut mqtt =
            Mqtt::new(mqtt_config, &mut buffer, OTA_MQTT_RX).map_err(driver(Step::Connect))?;
        if !cfg.topic.is_empty() {
            mqtt.subscribe_on_connect(cfg.topic, QoS::AtLeastOnce)
                .map_err(driver(Step::Connect))?;
        }
        // The thing name is the client id (AWS IoT policies tie the two).
        let mut ota = AwsOta::new(client_id, OTA_MQTT_RX).map_err(AppError::Ota)?;

        let t = &cfg.timeouts;
        let mut attempt = 0u8;
        loop {
            attempt += 1;
            let error = match with_timeout(t.connect, mqtt.connect(&modem)).await {
                Ok(Ok(mut conn)) => {
                    let boot = bounded(Step::Ota, t.ack, async {
                        ota.after_boot(&mut conn, updater)
                            .await
                            .map_err(AppError::Ota)
                    })
                    .await?;
                    let mut job_buf = [0u8; JOB_MAX];
                    let job = bounded(Step::Ota, t.ack, async {
                        ota.next_job(&mut conn, &mut job_buf)
                            .await
                            .map_err(AppError::Ota)
                    })
                    .await?;
                    let outcome = match job {
                        Job::None => OtaOutcome::NoJob,
                        Job::Other { job_id, .. } => {
                            let mut id = heapless::String::new();
                            // Job ids are at most 64 characters (AWS).
                            let _ = id.push_str(job_id);
                            OtaOutcome::OtherJob(id)
                        }
                        Job::Ota(job) => {
                            bounded(Step::Ota, t.ota, async {
                                ota.download(&mut conn, updater, &job, &key)
                                    .await
                                    .map_err(AppError::Ota)
                            })
                            .await?;
                            OtaOutcome::ResetToUpdate
                        }
                    };
                    bounded(Step::Disconnect, t.ack, async {
                        conn.disconnect().await.map_err(driver(Step::Disconnect))
                    })
                    .await?;
                    report.elapsed_ms = started.elapsed().as_millis();
                    return Ok(OtaReport {
                        report,
                        boot,
                        outcome,
                    });
                }
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            give_up_or_retry(cfg, attempt, error)?;
        }
    };
    with_runner(runner, flow).await
}

/// Logs through defmt what [`run_ota_aws`] did (the previous update's outcome, the next step, or
/// the step that failed) and returns whether the MCU should now reset into the bootloader
/// ([`OtaOutcome::ResetToUpdate`]).
#[cfg(feature = "defmt")]
pub fn log_ota(result: &Result<OtaReport, AppError>) -> bool {
    match result {
        Ok(r) => {
            match &r.boot {
                BootReport::Nothing => defmt::info!("no update was pending"),
                BootReport::Succeeded(job) => {
                    defmt::info!("new image confirmed: job {} SUCCEEDED", job.as_str())
                }
                BootReport::RolledBack(job) => {
                    defmt::error!("new image rolled back: job {} FAILED", job.as_str())
                }
            }
            defmt::info!("OTA outcome: {}", r.outcome);
            r.outcome == OtaOutcome::ResetToUpdate
        }
        Err(e) => {
            defmt::error!("OTA flow failed at step {}: {}", e.step(), e);
            false
        }
    }
}
