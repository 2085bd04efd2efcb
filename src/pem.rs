//! PEM (RFC 7468 text form of certificates and keys): the crate's one decoder.
//!
//! [`check`] validates what is handed to the modem (`asynch::Modem::configure_tls`
//! runs it on every file before uploading anything); [`decode`] turns a block into DER (MCU
//! TLS takes DER: `tls::pem_to_der`, feature `mcu-tls`, is this decoder with the crate's
//! `Error`).
//!
//! The decoder is lenient where real files differ and strict where it matters: text before,
//! between and after blocks is skipped (RFC 7468 §2 allows explanatory text), lines of any
//! width and `\r\n` are accepted, but every block needs matching `BEGIN`/`END` lines, valid
//! base64 and DER content (one whole ASN.1 `SEQUENCE`, which a certificate and every private
//! key format are). RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`: an encrypted key) are refused.
//! Linear in the input, allocates nothing.
//!
//! Why not RustCrypto's `pem-rfc7468` + `base64ct` (0.7 / 1.8, the generation of the crate's
//! p256 0.13): measured in the footprint firmware (`scripts/footprint.sh`, thumbv7em,
//! opt-level "z", fat LTO) with the same checks on top, they cost 4 668 B more flash in the
//! MQTT-over-modem-TLS row than this decoder, which would take that row over its 96 KiB budget;
//! and their strict grammar refuses files the modems take (lines not 64 characters wide, several
//! certificates in one CA file), so a block scanner of our own would be needed anyway. What
//! base64ct adds, constant-time decoding, guards a private key against a timing observer while
//! it is decoded; here a key is decoded at most once, at start-up (MCU TLS), or only checked
//! before the modem gets its text (modem TLS).
//!

use core::fmt;

/// Why PEM input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PemError {
    /// Not PEM: no complete `-----BEGIN …-----` / `-----END …-----` block, invalid base64,
    /// headers (an encrypted key), or a body that is not one DER `SEQUENCE` (a truncated or
    /// corrupted file).
    Malformed,
    /// PEM, but not the kind of object wanted (e.g. a certificate where the private key
    /// belongs, or a `CERTIFICATE REQUEST` where a CA certificate belongs).
    WrongKind {
        /// What was wanted.
        expected: PemKind,
    },
    /// The output buffer of [`decode`] is too small. A DER is never longer than 3/4 of its
    /// PEM text, so `pem.len() * 3 / 4` bytes always suffice. (No size in the error: it keeps
    /// [`crate::Error`], which carries this, at 4 bytes on a 32-bit MCU.)
    BufferTooSmall,
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::Malformed => f.write_str("malformed PEM"),
            PemError::WrongKind { expected } => write!(f, "PEM does not hold {expected}"),
            PemError::BufferTooSmall => f.write_str("PEM decodes to more than the buffer holds"),
        }
    }
}

impl core::error::Error for PemError {}

/// The kind of object a PEM input must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PemKind {
    /// One or more `CERTIFICATE` blocks (a CA certificate or bundle, or a device certificate
    /// with its chain).
    Certificate,
    /// Exactly one unencrypted private key: `PRIVATE KEY` (PKCS #8), `EC PRIVATE KEY` (SEC1)
    /// or `RSA PRIVATE KEY` (PKCS #1).
    PrivateKey,
}

impl PemKind {
    fn accepts(self, label: &[u8]) -> bool {
        match self {
            PemKind::Certificate => label == b"CERTIFICATE",
            // `PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY` (one comparison of the
            // common part, not three of whole labels).
            PemKind::PrivateKey => matches!(
                label.strip_suffix(b"PRIVATE KEY"),
                Some(b"" | b"EC " | b"RSA ")
            ),
        }
    }
}

impl fmt::Display for PemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemKind::Certificate => "a certificate",
            PemKind::PrivateKey => "an unencrypted private key",
        })
    }
}

/// Checks that `pem` holds `kind` and nothing else: every block has an accepted label and
/// decodes to one DER `SEQUENCE`; at least one block, exactly one for a private key. Needs no
/// buffer.
pub fn check(pem: &[u8], kind: PemKind) -> Result<(), PemError> {
    let mut blocks = 0usize;
    let mut rest = pem;
    while let Some((label, body, after)) = next_block(rest)? {
        if !kind.accepts(label) {
            return Err(PemError::WrongKind { expected: kind });
        }
        blocks = blocks.saturating_add(1);
        if kind == PemKind::PrivateKey && blocks > 1 {
            return Err(PemError::WrongKind { expected: kind });
        }
        let mut der = DerCheck::default();
        base64(body, |b| {
            der.push(b);
            Ok(())
        })?;
        der.finish()?;
        rest = after;
    }
    if blocks == 0 {
        return Err(PemError::Malformed);
    }
    Ok(())
}

/// Decodes the first PEM block of `pem` (the first labelled `label`, if given: `"CERTIFICATE"`
/// for `-----BEGIN CERTIFICATE-----`) into `out` and returns the DER.
///
/// [`PemError::Malformed`] if there is no such block or it is not base64 holding one DER
/// `SEQUENCE`; [`PemError::BufferTooSmall`] if `out` is too small.
pub fn decode<'o>(
    pem: &[u8],
    label: Option<&str>,
    out: &'o mut [u8],
) -> Result<&'o [u8], PemError> {
    let mut rest = pem;
    let body = loop {
        let Some((found, body, after)) = next_block(rest)? else {
            return Err(PemError::Malformed);
        };
        if label.is_none_or(|l| found == l.as_bytes()) {
            break body;
        }
        rest = after;
    };
    let mut n = 0usize;
    let mut der = DerCheck::default();
    base64(body, |b| {
        der.push(b);
        *out.get_mut(n).ok_or(())? = b;
        // `n` < `out.len()` here.
        n = n.saturating_add(1);
        Ok(())
    })?;
    der.finish()?;
    out.get(..n).ok_or(PemError::BufferTooSmall)
}

/// A block found by [`next_block`]: label, base64 body, text after the `END` line.
type Block<'p> = (&'p [u8], &'p [u8], &'p [u8]);

/// The next block of `pem`. `Ok(None)` when no `-----BEGIN ` follows;
/// [`PemError::Malformed`] for a `BEGIN` without its `END`.
fn next_block(pem: &[u8]) -> Result<Option<Block<'_>>, PemError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    const DASHES: &[u8] = b"-----";
    let Some(at) = find(pem, BEGIN) else {
        return Ok(None);
    };
    let rest = pem
        .get(at..)
        .and_then(|r| r.strip_prefix(BEGIN))
        .ok_or(PemError::Malformed)?;
    // The label ends with "-----" on the same line.
    let label_end = find(rest, DASHES).ok_or(PemError::Malformed)?;
    let (label, rest) = rest
        .split_at_checked(label_end)
        .ok_or(PemError::Malformed)?;
    if label.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(PemError::Malformed);
    }
    let rest = rest.strip_prefix(DASHES).ok_or(PemError::Malformed)?;
    let body_len = find(rest, END).ok_or(PemError::Malformed)?;
    let (body, rest) = rest.split_at_checked(body_len).ok_or(PemError::Malformed)?;
    let rest = rest.strip_prefix(END).ok_or(PemError::Malformed)?;
    // `-----END <same label>-----`.
    let after = rest
        .strip_prefix(label)
        .and_then(|r| r.strip_prefix(DASHES))
        .ok_or(PemError::Malformed)?;
    Ok(Some((label, body, after)))
}

/// Decodes base64 `body` (whitespace skipped, `=` padding optional) into `put`, one byte at a
/// time; `put` returning `Err` means "out of room".
pub(crate) fn base64(
    body: &[u8],
    mut put: impl FnMut(u8) -> Result<(), ()>,
) -> Result<(), PemError> {
    let full = PemError::BufferTooSmall;
    let mut acc: u32 = 0;
    let mut symbols = 0usize; // base64 symbols in the current quantum (0..4)
    let mut pads = 0usize;
    let mut any = false;
    for &c in body {
        // Each subtraction stays within its matched range: no saturation happens.
        let v = match c {
            b'A'..=b'Z' => c.saturating_sub(b'A'),
            b'a'..=b'z' => c.saturating_sub(b'a').saturating_add(26),
            b'0'..=b'9' => c.saturating_sub(b'0').saturating_add(52),
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pads = pads.saturating_add(1);
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            // ':' (RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED`) or anything else.
            _ => return Err(PemError::Malformed),
        };
        if pads > 0 {
            // Data after padding.
            return Err(PemError::Malformed);
        }
        acc = (acc << 6) | u32::from(v);
        symbols = symbols.saturating_add(1);
        if symbols == 4 {
            for b in [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8] {
                put(b).map_err(|()| full)?;
            }
            any = true;
            acc = 0;
            symbols = 0;
        }
    }
    match (symbols, pads) {
        (0, 0) => {}
        (2, 2) | (2, 0) => put((acc >> 4) as u8).map_err(|()| full)?,
        (3, 1) | (3, 0) => {
            put((acc >> 10) as u8).map_err(|()| full)?;
            put((acc >> 2) as u8).map_err(|()| full)?;
        }
        _ => return Err(PemError::Malformed),
    }
    if !any && symbols == 0 {
        return Err(PemError::Malformed);
    }
    Ok(())
}

/// Checks, byte by byte, that a stream is exactly one DER `SEQUENCE` (tag 0x30, definite
/// length in at most 4 bytes, then that many bytes). Catches a truncated or padded body, or
/// base64 of something that is not a certificate or key.
#[derive(Default)]
struct DerCheck {
    /// Bytes seen.
    seen: usize,
    /// Tag and length bytes.
    header: usize,
    /// Content length (once the header is read).
    len: usize,
    bad: bool,
}

impl DerCheck {
    fn push(&mut self, b: u8) {
        match self.seen {
            0 => self.bad |= b != 0x30,
            1 if b < 0x80 => {
                self.header = 2;
                self.len = usize::from(b);
            }
            1 => {
                let n = usize::from(b & 0x7f);
                self.bad |= n == 0 || n > 4;
                self.header = 2 + n;
            }
            i if i < self.header => self.len = (self.len << 8) | usize::from(b),
            _ => {}
        }
        self.seen = self.seen.saturating_add(1);
    }

    fn finish(&self) -> Result<(), PemError> {
        if self.bad || self.seen < 2 || Some(self.seen) != self.header.checked_add(self.len) {
            return Err(PemError::Malformed);
        }
        Ok(())
    }
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// A DER `SEQUENCE` of `n` content bytes (short or long length form).
    fn seq(n: usize) -> Vec<u8> {
        let mut v = std::vec![0x30];
        match n {
            0..=0x7f => v.push(n as u8),
            0x80..=0xff => v.extend_from_slice(&[0x81, n as u8]),
            _ => v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend((0..n).map(|i| (i * 7 + 3) as u8));
        v
    }

    /// PEM of `der` under `label`, base64 lines of `width` characters, `eol` line ends.
    fn pem(label: &str, der: &[u8], width: usize, eol: &str) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for c in der.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                b64.push(if i <= c.len() {
                    char::from(B64[((n >> (18 - 6 * i)) & 63) as usize])
                } else {
                    '='
                });
            }
        }
        let mut s = std::format!("-----BEGIN {label}-----{eol}");
        for line in b64.as_bytes().chunks(width) {
            s.push_str(core::str::from_utf8(line).unwrap());
            s.push_str(eol);
        }
        s.push_str(&std::format!("-----END {label}-----{eol}"));
        s
    }

    #[test]
    fn decodes_every_length_line_width_and_line_end() {
        let mut out = [0u8; 400];
        for n in [0, 1, 2, 3, 4, 5, 126, 127, 128, 129, 255, 256, 300] {
            let der = seq(n);
            for (width, eol) in [(64, "\n"), (76, "\r\n"), (10_000, "\n")] {
                let text = pem("CERTIFICATE", &der, width, eol);
                let got = decode(text.as_bytes(), Some("CERTIFICATE"), &mut out).unwrap();
                assert_eq!(got, &der[..], "{n} bytes, width {width}");
                check(text.as_bytes(), PemKind::Certificate).unwrap();
            }
        }
        // Unpadded base64 is accepted too: DER 30 03 02 01 05.
        let text = b"-----BEGIN X-----\nMAMCAQU\n-----END X-----";
        assert_eq!(decode(text, None, &mut out).unwrap(), &[0x30, 3, 2, 1, 5]);
    }

    #[test]
    fn skips_explanatory_text_and_picks_the_labelled_block() {
        let key = seq(5);
        let cert = seq(9);
        let text = std::format!(
            "Bag Attributes\n  friendlyName: x\n{}subject=CN = y\n{}trailing text",
            pem("EC PRIVATE KEY", &key, 64, "\n"),
            pem("CERTIFICATE", &cert, 64, "\n"),
        );
        let mut out = [0u8; 64];
        assert_eq!(decode(text.as_bytes(), None, &mut out).unwrap(), &key[..]);
        assert_eq!(
            decode(text.as_bytes(), Some("CERTIFICATE"), &mut out).unwrap(),
            &cert[..]
        );
        assert_eq!(
            decode(text.as_bytes(), Some("PUBLIC KEY"), &mut out),
            Err(PemError::Malformed)
        );
    }

    #[test]
    fn the_error_stays_small() {
        // `Error::Pem` carries it: a larger PemError would grow every `Result` of the crate
        // (measured: +2.6 KiB of flash in every footprint row with a `usize` in it).
        assert!(core::mem::size_of::<PemError>() <= 2);
        #[cfg(not(any(feature = "mcu-tls", feature = "mqtt")))]
        assert_eq!(core::mem::size_of::<crate::Error>(), 4);
    }

    #[test]
    fn three_quarters_of_the_text_always_suffice() {
        for n in [0, 1, 2, 3, 100, 200, 300] {
            let der = seq(n);
            let text = pem("CERTIFICATE", &der, 64, "\n");
            let mut out = std::vec![0u8; text.len() * 3 / 4];
            assert_eq!(decode(text.as_bytes(), None, &mut out).unwrap(), &der[..]);
            assert_eq!(
                decode(text.as_bytes(), None, &mut out[..der.len() - 1]),
                Err(PemError::BufferTooSmall)
            );
        }
    }

    #[test]
    fn certificate_bundles_and_keys_by_kind() {
        let c1 = pem("CERTIFICATE", &seq(20), 64, "\n");
        let c2 = pem("CERTIFICATE", &seq(200), 64, "\r\n");
        let bundle = std::format!("{c1}\n# second root\n{c2}");
        assert_eq!(check(bundle.as_bytes(), PemKind::Certificate), Ok(()));
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            let key = pem(label, &seq(30), 64, "\n");
            assert_eq!(
                check(key.as_bytes(), PemKind::PrivateKey),
                Ok(()),
                "{label}"
            );
            // A key where a certificate belongs, and the reverse.
            assert_eq!(
                check(key.as_bytes(), PemKind::Certificate),
                Err(PemError::WrongKind {
                    expected: PemKind::Certificate
                })
            );
        }
        let wrong = |text: &str, kind| {
            assert_eq!(
                check(text.as_bytes(), kind),
                Err(PemError::WrongKind { expected: kind }),
                "{text}"
            )
        };
        wrong(&c1, PemKind::PrivateKey);
        // A bundle with a key in it; a CSR; an encrypted key; two keys.
        let key = pem("PRIVATE KEY", &seq(30), 64, "\n");
        wrong(&std::format!("{c1}{key}"), PemKind::Certificate);
        wrong(
            &pem("CERTIFICATE REQUEST", &seq(30), 64, "\n"),
            PemKind::Certificate,
        );
        wrong(
            &pem("ENCRYPTED PRIVATE KEY", &seq(30), 64, "\n"),
            PemKind::PrivateKey,
        );
        wrong(&std::format!("{key}{key}"), PemKind::PrivateKey);
    }

    #[test]
    fn key_labels() {
        for label in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] {
            assert!(PemKind::PrivateKey.accepts(label.as_bytes()), "{label}");
        }
        for label in [
            "",
            "KEY",
            "PRIVATE KEYS",
            " PRIVATE KEY",
            "ECPRIVATE KEY",
            "RSA  PRIVATE KEY",
            "DSA PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "CERTIFICATE",
        ] {
            assert!(!PemKind::PrivateKey.accepts(label.as_bytes()), "{label}");
        }
    }

    #[test]
    fn malformed_pem_is_refused() {
        let good = pem("CERTIFICATE", &seq(60), 64, "\n");
        // Truncated: the last base64 line lost, END line intact.
        let lines: Vec<&str> = good.lines().collect();
        let truncated = std::format!("{}\n{}\n", lines[0], lines[lines.len() - 1]);
        let mut cut_body = lines.clone();
        cut_body.remove(1);
        let cut_body = cut_body.join("\n");
        // Not DER inside (base64 of "foobar"), END label differs, END missing, headers, bad
        // base64 characters, data after padding, empty body, nothing at all.
        let cases: [&str; 12] = [
            &truncated,
            &cut_body,
            "-----BEGIN CERTIFICATE-----\nZm9vYmFy\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END X509 CRL-----\n",
            "-----BEGIN CERTIFICATE-----\nMAMCAQU=\n",
            &good[..good.len() - 10],
            "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nMAMCAQU=\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMAMC*QU=\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMAMC==AQ\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFI\nCATE-----\nMAMCAQU=\n-----END CERTIFICATE-----",
            "no PEM here",
        ];
        let mut out = [0u8; 128];
        for text in cases {
            assert_eq!(
                check(text.as_bytes(), PemKind::Certificate),
                Err(PemError::Malformed),
                "{text:?}"
            );
            assert_eq!(
                decode(text.as_bytes(), None, &mut out),
                Err(PemError::Malformed),
                "{text:?}"
            );
        }
        assert_eq!(check(b"", PemKind::PrivateKey), Err(PemError::Malformed));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Every prefix and every single-byte corruption of a valid block.
        let good = pem("EC PRIVATE KEY", &seq(130), 64, "\n").into_bytes();
        let mut out = [0u8; 256];
        for end in 0..good.len() {
            let _ = check(&good[..end], PemKind::PrivateKey);
            let _ = decode(&good[..end], None, &mut out);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            let _ = check(&bad, PemKind::PrivateKey);
            let _ = decode(&bad, None, &mut out[..64]);
        }
    }
}
