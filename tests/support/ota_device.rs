//! A simulated device for the OTA tests: embassy-boot's active, update (DFU) and state
//! partitions plus the progress record, all RAM-backed `MemFlash`, and a "reboot" that runs
//! embassy-boot's real `BootLoader::prepare_boot` over the same memory (blocking traits), so
//! that swap, trial boot and rollback are the bootloader's own behaviour. Also a code signer
//! (P-256 key, self-signed code-signing certificate made with rcgen).

#![allow(dead_code)]

use quectel::ota::embassy_boot::{AlignedBuffer, BootLoader, BootLoaderConfig, State};
use quectel::ota::{CodeSigningKey, MemFlash, Updater};

pub const PAGE: usize = 4096;
pub const ACTIVE_SIZE: usize = 128 * 1024;
pub const DFU_SIZE: usize = ACTIVE_SIZE + PAGE;

pub type Active = MemFlash<ACTIVE_SIZE, PAGE, 4>;
pub type Dfu = MemFlash<DFU_SIZE, PAGE, 4>;
pub type StateFlash = MemFlash<PAGE, PAGE, 4>;
pub type Record = MemFlash<PAGE, PAGE, 4>;

pub type DeviceUpdater<'a> = Updater<'a, &'a mut Dfu, &'a mut StateFlash, &'a mut Record>;

/// The flashes of one device: they survive a reset, nothing else does.
pub struct Device {
    pub active: Box<Active>,
    pub dfu: Box<Dfu>,
    pub state: Box<StateFlash>,
    pub record: Box<Record>,
    aligned: AlignedBuffer<4>,
}

impl Device {
    /// A device running `firmware` (written into the active partition).
    pub fn new(firmware: &[u8]) -> Self {
        let mut active = Box::new(Active::new());
        active.as_bytes_mut()[..firmware.len()].copy_from_slice(firmware);
        Self {
            active,
            dfu: Box::new(Dfu::new()),
            state: Box::new(StateFlash::new()),
            record: Box::new(Record::new()),
            aligned: AlignedBuffer([0; 4]),
        }
    }

    /// The application's updater (a fresh one, as after a reset).
    pub fn updater(&mut self) -> DeviceUpdater<'_> {
        Updater::new(
            &mut *self.dfu,
            &mut *self.state,
            &mut *self.record,
            &mut self.aligned.0,
        )
        .expect("geometry")
    }

    /// A reset: embassy-boot's bootloader runs over the flashes (swap or revert as it decides)
    /// and returns the state it found.
    pub fn reboot(&mut self) -> State {
        let mut buf = AlignedBuffer([0u8; 1024]);
        let mut bl = BootLoader::new(BootLoaderConfig {
            active: &mut *self.active,
            dfu: &mut *self.dfu,
            state: &mut *self.state,
        });
        bl.prepare_boot(&mut buf.0).expect("bootloader")
    }

    /// The first `len` bytes of the update partition.
    pub fn dfu_bytes(&self, len: usize) -> &[u8] {
        &self.dfu.as_bytes()[..len]
    }

    /// The first `len` bytes of the active partition (the running firmware).
    pub fn active_bytes(&self, len: usize) -> &[u8] {
        &self.active.as_bytes()[..len]
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Deterministic pseudo-random bytes (xorshift), a stand-in firmware image.
pub fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A code-signing identity: a P-256 key and its self-signed certificate.
pub struct Signer {
    key: p256::ecdsa::SigningKey,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

impl Signer {
    pub fn new() -> Self {
        use p256::pkcs8::DecodePrivateKey;
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["code-signer.example".into()]).unwrap();
        let cert = params.self_signed(&kp).unwrap();
        Self {
            key,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        }
    }

    /// The DER ECDSA signature over SHA-256(`data`), as AWS code signing makes it.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(data);
        sig.to_der().as_bytes().to_vec()
    }

    /// The device's view of the key (parsed from the certificate, as the firmware does).
    pub fn device_key(&self) -> CodeSigningKey {
        CodeSigningKey::from_certificate_der(&self.cert_der).unwrap()
    }
}
