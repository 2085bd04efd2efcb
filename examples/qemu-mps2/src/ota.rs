//! Feature `ota`: instead of the customer's flow, the firmware runs the AWS OTA flow
//! (`quectel_example_app::run_ota_aws`): AWS IoT Jobs over MQTT, the image over an MQTT stream
//! (CBOR blocks) into embassy-boot's update partition, SHA-256 and ECDSA P-256 signature
//! checked against the code-signing certificate, and the swap requested. The partitions are
//! `quectel::ota::MemFlash` regions in RAM (the mps2-an386 has no flash to write): the update
//! partition sized for the test image plus one page, the state partition and the progress
//! record one page each.
//!
//! After `OtaOutcome::ResetToUpdate` the firmware checks the staged image itself, as the
//! bootloader would find it after the reset: embassy-boot's state partition says `Swap`, and
//! the SHA-256 of the first `QUECTEL_E2E_OTA_SIZE` bytes of the update partition is
//! `QUECTEL_E2E_OTA_SHA256` (both baked in at build time by `scripts/qemu-e2e.sh`, which made
//! the image). Then it exits 0; anything else exits 1.

use cortex_m_semihosting::hprintln;
use embassy_time::Instant;
use quectel_example_app::quectel::asynch::Resources;
use quectel_example_app::quectel::ota::embassy_boot::{AlignedBuffer, FirmwareState, State};
use quectel_example_app::quectel::ota::{MemFlash, Updater};
use quectel_example_app::{AppConfig, OtaOutcome};
use sha2::{Digest, Sha256};
use static_cell::StaticCell;

use crate::board;

/// Erase page of the RAM flash (a typical MCU flash sector).
const PAGE: usize = 4096;
/// Size of the image the test serves.
const IMAGE_SIZE: usize = crate::parse_number(env!("QUECTEL_E2E_OTA_SIZE"), 1 << 20) as usize;
/// The update partition: the image rounded up to pages, plus the page embassy-boot needs.
const DFU_SIZE: usize = (IMAGE_SIZE.div_ceil(PAGE) + 1) * PAGE;
/// SHA-256 of the image, hex (64 zeros without the script: the check then fails).
const IMAGE_SHA256: &str = env!("QUECTEL_E2E_OTA_SHA256");
/// The certificate of the key that signed the image.
const CODE_SIGNING_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/codesign.crt"));

type Dfu = MemFlash<DFU_SIZE, PAGE, 4>;
type OnePage = MemFlash<PAGE, PAGE, 4>;

/// Zeroed `.bss`, filled (erased to 0xFF) at run time: not `.data` in the image.
static DFU: StaticCell<Dfu> = StaticCell::new();
static STATE: StaticCell<OnePage> = StaticCell::new();
static RECORD: StaticCell<OnePage> = StaticCell::new();

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn expected_digest() -> Option<[u8; 32]> {
    let hex = IMAGE_SHA256.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = hex_nibble(pair[0])? << 4 | hex_nibble(pair[1])?;
    }
    Some(out)
}

/// Runs the OTA flow and checks the staged image; `true` if everything held.
pub async fn run<const N: usize, const S: usize, const RB: usize>(
    resources: &mut Resources<N, S, RB>,
    cfg: &AppConfig<'_>,
) -> bool {
    let dfu = DFU.init_with(Dfu::new);
    let state = STATE.init_with(OnePage::new);
    let record = RECORD.init_with(OnePage::new);
    hprintln!(
        "[fw] OTA: update partition {} bytes in RAM for a {}-byte image, state and record {} bytes each",
        DFU_SIZE,
        IMAGE_SIZE,
        PAGE
    );
    let Some(want) = expected_digest() else {
        hprintln!("[fw] FAIL: QUECTEL_E2E_OTA_SHA256 is not 64 hex digits");
        return false;
    };
    let started = Instant::now();
    let mut aligned = AlignedBuffer([0u8; 4]);
    let result = {
        let mut updater = match Updater::new(&mut *dfu, &mut *state, &mut *record, &mut aligned.0) {
            Ok(u) => u,
            Err(e) => {
                hprintln!("[fw] FAIL: updater: {:?}", e);
                return false;
            }
        };
        quectel_example_app::run_ota_aws(
            board::UartRx,
            board::UartTx,
            resources,
            cfg,
            &mut updater,
            CODE_SIGNING_PEM,
        )
        .await
    };
    let elapsed_ms = started.elapsed().as_millis();
    let (rx, tx) = board::uart_bytes();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            hprintln!("[fw] FAIL: OTA flow: {}", e);
            return false;
        }
    };
    hprintln!(
        "[fw] OTA flow ended after {} ms: boot report {:?}, outcome {:?}; UART {} bytes in, {} bytes out",
        elapsed_ms,
        report.boot,
        report.outcome,
        rx,
        tx
    );
    if report.outcome != OtaOutcome::ResetToUpdate {
        hprintln!("[fw] FAIL: expected a staged image (ResetToUpdate)");
        return false;
    }

    // What the bootloader will see after the reset: the swap requested in its state partition.
    let mut aligned = AlignedBuffer([0u8; 4]);
    let swap = FirmwareState::new(&mut *state, &mut aligned.0)
        .get_state()
        .await;
    if !matches!(swap, Ok(State::Swap)) {
        hprintln!("[fw] FAIL: state partition: {:?}, not Swap", swap);
        return false;
    }
    // The image in the update partition, byte for byte (its digest).
    let Some(staged) = dfu.as_bytes().get(..IMAGE_SIZE) else {
        hprintln!("[fw] FAIL: update partition smaller than the image");
        return false;
    };
    let got: [u8; 32] = Sha256::digest(staged).into();
    if got != want {
        hprintln!("[fw] FAIL: SHA-256 of the update partition differs from the served image's");
        return false;
    }
    hprintln!(
        "[fw] PASS: {}-byte image staged and verified (SHA-256 {}), swap requested; {} ms, UART {} bytes in, {} bytes out ({} payload bytes per 100 UART bytes in)",
        IMAGE_SIZE,
        IMAGE_SHA256,
        elapsed_ms,
        rx,
        tx,
        (IMAGE_SIZE as u64 * 100) / u64::from(rx.max(1))
    );
    true
}
