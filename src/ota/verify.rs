//! What an image must pass before the swap: its digest and its ECDSA P-256 signature.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::OtaError;

/// The public key that checks image signatures (ECDSA P-256, what AWS code signing's
/// `sig-sha256-ecdsa` is made with): from the code-signing certificate or from a SEC1 point.
#[derive(Clone)]
pub struct CodeSigningKey(VerifyingKey);

impl core::fmt::Debug for CodeSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CodeSigningKey(P-256)")
    }
}

/// DER OID content of id-ecPublicKey (1.2.840.10045.2.1) and prime256v1 (1.2.840.10045.3.1.7),
/// as the `AlgorithmIdentifier` of a P-256 `SubjectPublicKeyInfo` holds them.
const EC_P256_ALG: &[u8] = &[
    0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D,
    0x03, 0x01, 0x07,
];

/// One DER TLV: (tag, content, rest). Single-byte tags, definite lengths up to 4 bytes.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), OtaError> {
    let (&tag, rest) = input.split_first().ok_or(OtaError::Key)?;
    let (&first, mut rest) = rest.split_first().ok_or(OtaError::Key)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err(OtaError::Key);
        }
        let (bytes, r) = rest.split_at_checked(n).ok_or(OtaError::Key)?;
        rest = r;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(OtaError::Key)?;
    Ok((tag, content, rest))
}

fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), OtaError> {
    let (t, content, rest) = tlv(input)?;
    if t == tag {
        Ok((content, rest))
    } else {
        Err(OtaError::Key)
    }
}

impl CodeSigningKey {
    /// From an uncompressed or compressed SEC1 point (`04 x y`, 65 bytes, or `02/03 x`).
    pub fn from_sec1(point: &[u8]) -> Result<Self, OtaError> {
        VerifyingKey::from_sec1_bytes(point)
            .map(Self)
            .map_err(|_| OtaError::Key)
    }

    /// From a DER `SubjectPublicKeyInfo` (`-----BEGIN PUBLIC KEY-----` decoded).
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, OtaError> {
        let (content, _) = expect(spki, 0x30)?;
        let (alg, rest) = expect(content, 0x30)?;
        if alg != EC_P256_ALG {
            return Err(OtaError::Key);
        }
        let (bits, _) = expect(rest, 0x03)?;
        // The first byte of a BIT STRING counts the unused bits: 0 for a key.
        match bits.split_first() {
            Some((0, point)) => Self::from_sec1(point),
            _ => Err(OtaError::Key),
        }
    }

    /// From the code-signing certificate, DER X.509: the DER is walked to the
    /// `SubjectPublicKeyInfo` (the certificate's own signature and validity are not checked:
    /// the certificate is the device's trust anchor, put there by its firmware).
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, OtaError> {
        let (cert, _) = expect(der, 0x30)?;
        let (tbs, _) = expect(cert, 0x30)?;
        let mut rest = tbs;
        // [0] EXPLICIT version, optional.
        if rest.first() == Some(&0xA0) {
            rest = tlv(rest)?.2;
        }
        // serialNumber, signature, issuer, validity, subject.
        for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
            rest = expect(rest, tag)?.1;
        }
        Self::from_spki_der(rest)
    }

    /// From the code-signing certificate in PEM (the first `CERTIFICATE` block); `scratch`
    /// holds the DER while it is read (`pem.len() * 3 / 4` bytes always suffice).
    pub fn from_certificate_pem(pem: &[u8], scratch: &mut [u8]) -> Result<Self, OtaError> {
        let der =
            crate::pem::decode(pem, Some("CERTIFICATE"), scratch).map_err(|_| OtaError::Key)?;
        Self::from_certificate_der(der)
    }

    /// Checks a DER ECDSA signature over an image whose SHA-256 is `sha256`.
    pub fn verify(&self, sha256: &[u8; 32], signature_der: &[u8]) -> Result<(), OtaError> {
        let sig = Signature::from_der(signature_der).map_err(|_| OtaError::Signature)?;
        self.0
            .verify_prehash(sha256, &sig)
            .map_err(|_| OtaError::Signature)
    }
}

/// The digest the cloud announced for the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Digest {
    /// SHA-256.
    Sha256([u8; 32]),
    /// MD5 (Aliyun's `signMethod` "Md5": integrity only, not authenticity).
    #[cfg(feature = "aliyun")]
    Md5([u8; 16]),
}

/// A signature to check, and the key to check it with.
#[derive(Clone, Copy, Debug)]
pub struct SignatureCheck<'a> {
    /// The code-signing key.
    pub key: &'a CodeSigningKey,
    /// The signature, DER (base64-decoded `sig-sha256-ecdsa`: see [`decode_base64`]).
    pub der: &'a [u8],
}

/// What [`Updater::finish`](super::Updater::finish) checks before it requests the swap. At
/// least one must be given; only a signature proves where the image comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks<'a> {
    /// The expected digest.
    pub digest: Option<Digest>,
    /// The signature over the image's SHA-256.
    pub signature: Option<SignatureCheck<'a>>,
}

/// Decodes base64 (whitespace skipped, padding optional) into `out`: e.g. the
/// `sig-sha256-ecdsa` value of an AWS job document. [`OtaError::Signature`] for invalid base64
/// or an `out` that is too small (a P-256 DER signature is at most 72 bytes).
pub fn decode_base64<'o>(input: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], OtaError> {
    let mut n = 0usize;
    crate::pem::base64(input, |b| {
        *out.get_mut(n).ok_or(())? = b;
        n = n.saturating_add(1);
        Ok(())
    })
    .map_err(|_| OtaError::Signature)?;
    out.get(..n).ok_or(OtaError::Signature)
}
