//! The device's own P-256 key, its SEC1 encoding and a PKCS#10 certificate signing request,
//! all encoded by hand in caller-owned (or small, bounded stack) buffers: no heap, no `der`
//! crate.

use core::fmt;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::CryptoRngCore;

use crate::cloud::CloudError;

/// OID 1.2.840.10045.2.1 (`id-ecPublicKey`), content bytes.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (`prime256v1` / NIST P-256), content bytes.
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.2.840.10045.4.3.2 (`ecdsa-with-SHA256`), content bytes.
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// OID 2.5.4.3 (`commonName`), content bytes.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;

/// Longest common name a CSR may carry (X.520 `ub-common-name`).
pub const MAX_COMMON_NAME: usize = 64;

/// Size of a SEC1 `ECPrivateKey` DER for P-256 as [`DeviceKey::to_sec1_der`] writes it.
pub const SEC1_DER_LEN: usize = 121;

/// Upper bound of a CSR in DER from [`DeviceKey::csr_der`] (common name of 64 bytes, longest
/// signature).
pub const MAX_CSR_DER_LEN: usize = 272;

/// Upper bound of a CSR in PEM from [`DeviceKey::csr_pem`].
pub const MAX_CSR_PEM_LEN: usize = pem_len("CERTIFICATE REQUEST", MAX_CSR_DER_LEN);

/// Size of the SEC1 key in PEM (`-----BEGIN EC PRIVATE KEY-----`) from
/// [`DeviceKey::to_sec1_pem`].
pub const SEC1_PEM_LEN: usize = pem_len("EC PRIVATE KEY", SEC1_DER_LEN);

/// Length of the PEM text [`pem_encode`] writes for `der_len` bytes under `label`.
pub const fn pem_len(label: &str, der_len: usize) -> usize {
    // Saturating: a length that large fits no buffer, and `pem_encode` refuses it.
    let b64 = der_len.div_ceil(3).saturating_mul(4);
    let lines = b64.div_ceil(64);
    // "-----BEGIN " label "-----\n" + body + newlines + "-----END " label "-----\n"
    let label = label.len().saturating_mul(2);
    label
        .saturating_add(11 + 6 + 9 + 6)
        .saturating_add(b64)
        .saturating_add(lines)
}

/// Bytes the DER length field of `len` content bytes takes.
const fn len_size(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len < 0x100 {
        2
    } else {
        3
    }
}

/// Bytes a whole TLV with `len` content bytes takes.
const fn tlv_size(len: usize) -> usize {
    // Saturating: a size that large fits no buffer, and `Der` refuses it.
    len.saturating_add(len_size(len)).saturating_add(1)
}

/// A bounded forward DER writer: every write checks the room left.
struct Der<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Der<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: 0 }
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), CloudError> {
        let end = self
            .pos
            .checked_add(b.len())
            .ok_or(CloudError::RequestTooLarge)?;
        self.out
            .get_mut(self.pos..end)
            .ok_or(CloudError::RequestTooLarge)?
            .copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    /// Tag and length of a TLV whose content (`len` bytes) the caller writes next.
    fn header(&mut self, tag: u8, len: usize) -> Result<(), CloudError> {
        if len < 0x80 {
            self.bytes(&[tag, len as u8])
        } else if len < 0x100 {
            self.bytes(&[tag, 0x81, len as u8])
        } else if len < 0x1_0000 {
            self.bytes(&[tag, 0x82, (len >> 8) as u8, len as u8])
        } else {
            Err(CloudError::RequestTooLarge)
        }
    }

    fn tlv(&mut self, tag: u8, content: &[u8]) -> Result<(), CloudError> {
        self.header(tag, content.len())?;
        self.bytes(content)
    }
}

/// An unsigned big-endian integer as DER `INTEGER` content: leading zeros dropped, one zero
/// added if the top bit is set. Returns (needs a 0x00 prefix, the significant bytes).
fn der_uint(b: &[u8]) -> (bool, &[u8]) {
    let first = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    let v = b.get(first..).unwrap_or_default();
    (v.first().is_some_and(|&x| x & 0x80 != 0), v)
}

fn der_uint_size(b: &[u8]) -> usize {
    let (pad, v) = der_uint(b);
    tlv_size(v.len().saturating_add(usize::from(pad)))
}

fn write_der_uint(w: &mut Der<'_>, b: &[u8]) -> Result<(), CloudError> {
    let (pad, v) = der_uint(b);
    w.header(TAG_INTEGER, v.len().saturating_add(usize::from(pad)))?;
    if pad {
        w.bytes(&[0])?;
    }
    w.bytes(v)
}

/// Overwrites `b` with zeros in a way the optimiser keeps.
fn wipe(b: &mut [u8]) {
    for x in b.iter_mut() {
        // SAFETY: `x` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(x, 0) };
    }
}

/// The device's P-256 private key, generated on the device.
///
/// With [`create_certificate_from_csr`](super::FleetProvisioning::create_certificate_from_csr)
/// the key never leaves the device: only the public key, inside a CSR, goes to AWS. Export it
/// with [`to_sec1_pem`](Self::to_sec1_pem) for the modem's file system (`AT+QFUPL`) or
/// [`to_sec1_der`](Self::to_sec1_der) for TLS on the MCU. `Debug` never shows it.
#[derive(Clone)]
pub struct DeviceKey {
    key: SigningKey,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(P-256, ***)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DeviceKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DeviceKey(P-256, ***)")
    }
}

impl DeviceKey {
    /// A new random key from `rng` (use the MCU's hardware TRNG, or a CSPRNG seeded from it).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            key: SigningKey::random(rng),
        }
    }

    /// The key from its 32-byte private scalar (big-endian).
    pub fn from_scalar_bytes(scalar: &[u8]) -> Result<Self, CloudError> {
        let bytes: &[u8; 32] = scalar.try_into().map_err(|_| CloudError::InvalidInput)?;
        SigningKey::from_bytes(bytes.into())
            .map(|key| Self { key })
            .map_err(|_| CloudError::InvalidInput)
    }

    /// Reads a P-256 SEC1 `ECPrivateKey` (RFC 5915) in DER, as [`to_sec1_der`](Self::to_sec1_der)
    /// writes it (the curve parameters, if present, must be `prime256v1`; a public key, if
    /// present, must match).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, CloudError> {
        p256::SecretKey::from_sec1_der(der)
            .map(|k| Self {
                key: SigningKey::from(&k),
            })
            .map_err(|_| CloudError::InvalidInput)
    }

    /// The public key as an uncompressed SEC1 point (`04 || X || Y`).
    pub fn public_key_uncompressed(&self) -> [u8; 65] {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The verifying (public) key, e.g. to check a certificate AWS issued matches this key.
    pub fn verifying_key(&self) -> &p256::ecdsa::VerifyingKey {
        self.key.verifying_key()
    }

    /// Writes the key as a SEC1 `ECPrivateKey` (RFC 5915) in DER: version 1, the private
    /// scalar, the `prime256v1` parameters and the public key; [`SEC1_DER_LEN`] bytes.
    /// [`CloudError::RequestTooLarge`] if `out` is shorter.
    // Sizes of fixed-size keys and OIDs: every sum is below SEC1_DER_LEN.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn to_sec1_der(&self, out: &mut [u8]) -> Result<usize, CloudError> {
        if out.len() < SEC1_DER_LEN {
            return Err(CloudError::RequestTooLarge);
        }
        let mut scalar: [u8; 32] = self.key.to_bytes().into();
        let public = self.public_key_uncompressed();
        let params = tlv_size(OID_PRIME256V1.len());
        let pubkey = tlv_size(1 + public.len());
        let body = tlv_size(1) + tlv_size(32) + tlv_size(params) + tlv_size(pubkey);
        let mut w = Der::new(out);
        let r = (|| {
            w.header(TAG_SEQUENCE, body)?;
            w.tlv(TAG_INTEGER, &[1])?;
            w.tlv(TAG_OCTET_STRING, &scalar)?;
            w.header(0xa0, params)?;
            w.tlv(TAG_OID, OID_PRIME256V1)?;
            w.header(0xa1, pubkey)?;
            w.header(TAG_BIT_STRING, 1 + public.len())?;
            w.bytes(&[0])?;
            w.bytes(&public)
        })();
        wipe(&mut scalar);
        r.map(|()| w.pos)
    }

    /// Writes the key as SEC1 PEM (`-----BEGIN EC PRIVATE KEY-----`, the form Quectel modems
    /// take for `AT+QSSLCFG="clientkey"`); [`SEC1_PEM_LEN`] bytes.
    pub fn to_sec1_pem(&self, out: &mut [u8]) -> Result<usize, CloudError> {
        let mut der = [0u8; SEC1_DER_LEN];
        let r = self
            .to_sec1_der(&mut der)
            .and_then(|n| der.get(..n).ok_or(CloudError::RequestTooLarge))
            .and_then(|der| pem_encode("EC PRIVATE KEY", der, out));
        wipe(&mut der);
        r
    }

    /// Writes a PKCS#10 certificate signing request (RFC 2986) in DER: subject
    /// `CN=<common_name>`, this key's public key (`id-ecPublicKey`, `prime256v1`), no
    /// attributes, signed with ECDSA/SHA-256. AWS IoT ignores the subject of the CSR it signs
    /// (the certificate id identifies it), so the common name is only for your records.
    ///
    /// [`CloudError::InvalidInput`] if `common_name` is empty or longer than
    /// [`MAX_COMMON_NAME`]; [`CloudError::RequestTooLarge`] if `out` is too short
    /// ([`MAX_CSR_DER_LEN`] is always enough).
    // Sizes of a fixed-size key, OIDs and a common name of at most MAX_COMMON_NAME bytes: every
    // sum is below MAX_CSR_DER_LEN.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn csr_der(&self, common_name: &str, out: &mut [u8]) -> Result<usize, CloudError> {
        if common_name.is_empty() || common_name.len() > MAX_COMMON_NAME {
            return Err(CloudError::InvalidInput);
        }
        let public = self.public_key_uncompressed();
        // CertificationRequestInfo sizes, innermost first.
        let atv = tlv_size(OID_COMMON_NAME.len()) + tlv_size(common_name.len());
        let rdn = tlv_size(atv);
        let name = tlv_size(rdn);
        let algorithm = tlv_size(OID_EC_PUBLIC_KEY.len()) + tlv_size(OID_PRIME256V1.len());
        let spki = tlv_size(algorithm) + tlv_size(1 + public.len());
        let info = tlv_size(1) + tlv_size(name) + tlv_size(spki) + tlv_size(0);
        let info_len = tlv_size(info);

        // The request info first, at the start of `out`, to sign it.
        let mut w = Der::new(out);
        w.header(TAG_SEQUENCE, info)?;
        w.tlv(TAG_INTEGER, &[0])?;
        w.header(TAG_SEQUENCE, name)?;
        w.header(TAG_SET, rdn)?;
        w.header(TAG_SEQUENCE, atv)?;
        w.tlv(TAG_OID, OID_COMMON_NAME)?;
        w.tlv(TAG_UTF8_STRING, common_name.as_bytes())?;
        w.header(TAG_SEQUENCE, spki)?;
        w.header(TAG_SEQUENCE, algorithm)?;
        w.tlv(TAG_OID, OID_EC_PUBLIC_KEY)?;
        w.tlv(TAG_OID, OID_PRIME256V1)?;
        w.header(TAG_BIT_STRING, 1 + public.len())?;
        w.bytes(&[0])?;
        w.bytes(&public)?;
        // attributes [0] IMPLICIT SET OF Attribute: empty.
        w.header(0xa0, 0)?;
        debug_assert_eq!(w.pos, info_len);

        let info_der = w.out.get(..info_len).ok_or(CloudError::RequestTooLarge)?;
        let signature: Signature = self.key.sign(info_der);
        let (r, s) = signature.split_bytes();
        let ecdsa_sig = der_uint_size(&r) + der_uint_size(&s);
        let sig_bits = 1 + tlv_size(ecdsa_sig);
        let sig_alg = tlv_size(OID_ECDSA_SHA256.len());
        let body = info_len + tlv_size(sig_alg) + tlv_size(sig_bits);
        let total = tlv_size(body);
        if total > w.out.len() {
            return Err(CloudError::RequestTooLarge);
        }
        // Make room for the outer SEQUENCE header, then append algorithm and signature.
        let shift = total - body;
        w.out.copy_within(0..info_len, shift);
        let mut w = Der::new(w.out);
        w.header(TAG_SEQUENCE, body)?;
        w.pos += info_len;
        w.header(TAG_SEQUENCE, sig_alg)?;
        w.tlv(TAG_OID, OID_ECDSA_SHA256)?;
        w.header(TAG_BIT_STRING, sig_bits)?;
        w.bytes(&[0])?;
        w.header(TAG_SEQUENCE, ecdsa_sig)?;
        write_der_uint(&mut w, &r)?;
        write_der_uint(&mut w, &s)?;
        debug_assert_eq!(w.pos, total);
        Ok(w.pos)
    }

    /// The CSR of [`csr_der`](Self::csr_der) in PEM (`-----BEGIN CERTIFICATE REQUEST-----`),
    /// the form AWS's `CreateCertificateFromCsr` takes. [`MAX_CSR_PEM_LEN`] bytes are always
    /// enough.
    pub fn csr_pem(&self, common_name: &str, out: &mut [u8]) -> Result<usize, CloudError> {
        let mut der = [0u8; MAX_CSR_DER_LEN];
        let n = self.csr_der(common_name, &mut der)?;
        let der = der.get(..n).ok_or(CloudError::RequestTooLarge)?;
        pem_encode("CERTIFICATE REQUEST", der, out)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Writes `der` as PEM under `label` (`-----BEGIN <label>-----`, base64 in lines of 64
/// characters, `-----END <label>-----`, each line ending in `\n`). Returns the length, which is
/// [`pem_len`]`(label, der.len())`; [`CloudError::RequestTooLarge`] if `out` is shorter.
pub fn pem_encode(label: &str, der: &[u8], out: &mut [u8]) -> Result<usize, CloudError> {
    let needed = pem_len(label, der.len());
    if out.len() < needed {
        return Err(CloudError::RequestTooLarge);
    }
    let mut w = Der::new(out);
    w.bytes(b"-----BEGIN ")?;
    w.bytes(label.as_bytes())?;
    w.bytes(b"-----\n")?;
    let mut column = 0u8;
    for chunk in der.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        let mut quad = [b'='; 4];
        // One symbol more than the chunk has bytes (2, 3 or 4); `=` for the rest.
        let symbols = chunk.len().saturating_add(1);
        for (q, shift) in quad.iter_mut().zip([18, 12, 6, 0]).take(symbols) {
            *q = BASE64
                .get(((n >> shift) & 63) as usize)
                .copied()
                .unwrap_or(b'=');
        }
        w.bytes(&quad)?;
        // `column` counts to 64, then restarts.
        column = column.saturating_add(4);
        if column == 64 {
            w.bytes(b"\n")?;
            column = 0;
        }
    }
    if column != 0 {
        w.bytes(b"\n")?;
    }
    w.bytes(b"-----END ")?;
    w.bytes(label.as_bytes())?;
    w.bytes(b"-----\n")?;
    debug_assert_eq!(w.pos, needed);
    Ok(w.pos)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    struct CountingRng(u64);
    impl rand_core::RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = (self.next_u64() >> 56) as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for CountingRng {}

    #[test]
    fn sec1_round_trip_and_sizes() {
        let key = DeviceKey::generate(&mut CountingRng(7));
        let mut der = [0u8; 200];
        let n = key.to_sec1_der(&mut der).unwrap();
        assert_eq!(n, SEC1_DER_LEN);
        let back = DeviceKey::from_sec1_der(&der[..n]).unwrap();
        assert_eq!(
            back.public_key_uncompressed(),
            key.public_key_uncompressed()
        );
        let mut pem = [0u8; 300];
        let p = key.to_sec1_pem(&mut pem).unwrap();
        assert_eq!(p, SEC1_PEM_LEN);
        let mut der2 = [0u8; 200];
        let back = crate::pem::decode(&pem[..p], Some("EC PRIVATE KEY"), &mut der2).unwrap();
        assert_eq!(back, &der[..n]);
        crate::pem::check(&pem[..p], crate::pem::PemKind::PrivateKey).unwrap();
        // Too small: typed error, not a panic.
        assert_eq!(
            key.to_sec1_der(&mut der[..SEC1_DER_LEN - 1]),
            Err(CloudError::RequestTooLarge)
        );
        assert_eq!(
            key.to_sec1_pem(&mut pem[..SEC1_PEM_LEN - 1]),
            Err(CloudError::RequestTooLarge)
        );
        // A tampered public key is refused.
        der[n - 1] ^= 1;
        assert!(DeviceKey::from_sec1_der(&der[..n]).is_err());
        assert!(DeviceKey::from_sec1_der(&der[..10]).is_err());
    }

    #[test]
    fn csr_bounds() {
        let key = DeviceKey::generate(&mut CountingRng(1));
        let mut out = [0u8; MAX_CSR_DER_LEN];
        let long = "x".repeat(MAX_COMMON_NAME);
        let n = key.csr_der(&long, &mut out).unwrap();
        assert!(n <= MAX_CSR_DER_LEN);
        assert_eq!(key.csr_der("", &mut out), Err(CloudError::InvalidInput));
        let too_long = "x".repeat(MAX_COMMON_NAME + 1);
        assert_eq!(
            key.csr_der(&too_long, &mut out),
            Err(CloudError::InvalidInput)
        );
        for len in 0..n {
            assert_eq!(
                key.csr_der(&long, &mut out[..len]),
                Err(CloudError::RequestTooLarge),
                "{len}"
            );
        }
        let mut pem = [0u8; MAX_CSR_PEM_LEN];
        let p = key.csr_pem(&long, &mut pem).unwrap();
        assert!(pem[..p].starts_with(b"-----BEGIN CERTIFICATE REQUEST-----\n"));
        assert!(pem[..p].ends_with(b"-----END CERTIFICATE REQUEST-----\n"));
    }

    #[test]
    fn pem_known_answer() {
        let mut out = [0u8; 128];
        let n = pem_encode("X", b"foobar", &mut out).unwrap();
        assert_eq!(&out[..n], b"-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n");
        let n = pem_encode("X", b"fo", &mut out).unwrap();
        assert_eq!(&out[..n], b"-----BEGIN X-----\nZm8=\n-----END X-----\n");
        let n = pem_encode("X", &[0xffu8; 48], &mut out).unwrap();
        // 48 bytes = exactly 64 base64 characters: one full line, no empty line after it.
        assert_eq!(n, pem_len("X", 48));
        assert_eq!(core::str::from_utf8(&out[..n]).unwrap().lines().count(), 3);
        assert_eq!(
            pem_encode("X", b"foobar", &mut out[..10]),
            Err(CloudError::RequestTooLarge)
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let key = DeviceKey::generate(&mut CountingRng(3));
        let mut s = heapless::String::<64>::new();
        core::fmt::write(&mut s, format_args!("{key:?}")).unwrap();
        assert_eq!(s.as_str(), "DeviceKey(P-256, ***)");
    }
}
