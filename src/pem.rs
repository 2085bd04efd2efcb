//! PEM decoding shared by MCU TLS (`tls::pem_to_der`) and the AWS helpers
//! (`cloud::aws::pem_decode`): one base64 decoder, two error vocabularies.

/// Why a PEM block could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No complete block (with the wanted label), invalid base64, or RFC 1421 headers (an
    /// encrypted key).
    Invalid,
    /// `out` is too small; the DER needs about `needed` bytes.
    TooSmall {
        /// Bytes the DER needs (from the number of base64 symbols).
        needed: usize,
    },
}

/// Decodes the body of the first PEM block of `pem` (the first one labelled `label`, if given:
/// `-----BEGIN <label>-----`) into `out`; returns the DER length. Whitespace inside the body is
/// skipped. Linear in `pem.len()`, allocates nothing.
pub(crate) fn decode(pem: &[u8], label: Option<&str>, out: &mut [u8]) -> Result<usize, PemError> {
    let body = block(pem, label).ok_or(PemError::Invalid)?;
    let mut acc: u32 = 0;
    let mut symbols = 0usize; // base64 symbols in the current quantum (0..4)
    let mut pads = 0usize;
    let mut n = 0usize;
    let too_small = || PemError::TooSmall {
        needed: body
            .iter()
            .filter(|c| c.is_ascii_alphanumeric() || **c == b'+' || **c == b'/')
            .count()
            * 6
            / 8,
    };
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pads += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            // ':' (RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED`) or anything else.
            _ => return Err(PemError::Invalid),
        };
        if pads > 0 {
            // Data after padding.
            return Err(PemError::Invalid);
        }
        acc = (acc << 6) | u32::from(v);
        symbols += 1;
        if symbols == 4 {
            let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
            put(out, &mut n, &bytes).map_err(|()| too_small())?;
            acc = 0;
            symbols = 0;
        }
    }
    let tail = match (symbols, pads) {
        (0, 0) => Ok(()),
        (2, 2) | (2, 0) => put(out, &mut n, &[(acc >> 4) as u8]),
        (3, 1) | (3, 0) => put(out, &mut n, &[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return Err(PemError::Invalid),
    };
    tail.map_err(|()| too_small())?;
    if n == 0 {
        return Err(PemError::Invalid);
    }
    Ok(n)
}

/// The base64 body of the first block (labelled `label`, if given).
fn block<'p>(pem: &'p [u8], label: Option<&str>) -> Option<&'p [u8]> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    const DASHES: &[u8] = b"-----";
    let mut from = 0;
    loop {
        let start = from + find(&pem[from..], BEGIN)? + BEGIN.len();
        // The label ends with "-----" on the same line.
        let label_end = start + find(&pem[start..], DASHES)?;
        let found = &pem[start..label_end];
        if found.iter().any(|&b| b == b'\n' || b == b'\r') {
            return None;
        }
        if label.is_none_or(|l| found == l.as_bytes()) {
            let body_start = label_end + DASHES.len();
            let body_len = find(&pem[body_start..], END)?;
            return Some(&pem[body_start..body_start + body_len]);
        }
        from = label_end;
    }
}

fn put(out: &mut [u8], n: &mut usize, bytes: &[u8]) -> Result<(), ()> {
    let dst = out.get_mut(*n..*n + bytes.len()).ok_or(())?;
    dst.copy_from_slice(bytes);
    *n += bytes.len();
    Ok(())
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
