//! The OTA core (`quectel::ota`) on a simulated device: blocks in any order into embassy-boot's
//! update partition, the progress record across resets, refused blocks, flash faults, the
//! checks before the swap, and the real bootloader's swap, trial boot, confirmation and
//! rollback.

#[path = "support/ota_device.rs"]
mod ota_device;

use embassy_futures::block_on;
use ota_device::{ACTIVE_SIZE, Device, Signer, image, sha256};
use quectel::ota::embassy_boot::State;
use quectel::ota::{
    BlockWritten, BootStatus, Checks, CodeSigningKey, Digest, ImageSpec, OtaError, Progress,
    SignatureCheck, decode_base64, image_id,
};

const BLOCK: u32 = 1024;

fn spec<'a>(img: &[u8], tag: &'a [u8]) -> ImageSpec<'a> {
    ImageSpec {
        id: image_id(&[b"stream", &(img.len() as u32).to_le_bytes(), &sha256(img)]),
        size: img.len() as u32,
        block_size: BLOCK,
        tag,
    }
}

fn block(img: &[u8], i: u32) -> &[u8] {
    let start = (i * BLOCK) as usize;
    &img[start..(start + BLOCK as usize).min(img.len())]
}

fn blocks(img: &[u8]) -> u32 {
    img.len().div_ceil(BLOCK as usize) as u32
}

/// A permutation of 0..n (deterministic).
fn shuffled(n: u32, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Old firmware, new image (not a multiple of the block size: the last block is short).
fn setup() -> (Device, Vec<u8>, Vec<u8>, Signer) {
    let old = image(ACTIVE_SIZE, 1);
    let new = image(100 * 1024 + 123, 2);
    (Device::new(&old), old, new, Signer::new())
}

fn download_all(dev: &mut Device, img: &[u8], order: &[u32]) {
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec(img, b"job-1")).await.unwrap();
        for &i in order {
            assert_eq!(
                up.write_block(i, block(img, i)).await,
                Ok(BlockWritten::New)
            );
        }
        assert!(up.progress().unwrap().is_complete());
    });
}

fn finish(dev: &mut Device, checks: &Checks<'_>) -> Result<[u8; 32], OtaError> {
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec_for_finish(dev_tag())).await.ok();
        up.finish(checks).await
    })
}

// `finish` is always called on an updater that has begun the image; the helpers below keep
// the image in a thread-local so that `finish` can resume it like an application would.
thread_local! {
    static CURRENT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
fn dev_tag() -> &'static [u8] {
    b"job-1"
}
fn spec_for_finish(tag: &'static [u8]) -> ImageSpec<'static> {
    CURRENT.with(|c| {
        let img = c.borrow();
        ImageSpec {
            id: image_id(&[b"stream", &(img.len() as u32).to_le_bytes(), &sha256(&img)]),
            size: img.len() as u32,
            block_size: BLOCK,
            tag,
        }
    })
}
fn set_current(img: &[u8]) {
    CURRENT.with(|c| *c.borrow_mut() = img.to_vec());
}

#[test]
fn out_of_order_blocks_swap_trial_boot_confirm() {
    let (mut dev, old, new, signer) = setup();
    set_current(&new);
    download_all(&mut dev, &new, &shuffled(blocks(&new), 7));
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    let key = signer.device_key();
    let sig = signer.sign(&new);
    let digest = finish(
        &mut dev,
        &Checks {
            digest: Some(Digest::Sha256(sha256(&new))),
            signature: Some(SignatureCheck {
                key: &key,
                der: &sig,
            }),
        },
    )
    .unwrap();
    assert_eq!(digest, sha256(&new));

    // Reset: the bootloader swaps; this is the new image's trial boot.
    assert_eq!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(new.len()), &new[..]);
    let mut up = dev.updater();
    block_on(async {
        match up.boot_status().await.unwrap() {
            BootStatus::Trial(Some(rec)) => {
                assert_eq!(rec.tag(), b"job-1");
                assert_eq!(rec.size, new.len() as u32);
            }
            other => panic!("{other:?}"),
        }
        // No new download on an unconfirmed trial boot.
        assert_eq!(up.begin(&spec(&old, b"x")).await, Err(OtaError::State));
        up.confirm().await.unwrap();
    });
    drop(up);
    // The next reset keeps the new image; it reports success once, then the record is gone.
    assert_eq!(dev.reboot(), State::Boot);
    assert_eq!(dev.active_bytes(new.len()), &new[..]);
    let mut up = dev.updater();
    block_on(async {
        assert!(
            matches!(up.boot_status().await.unwrap(), BootStatus::Updated(r) if r.tag() == b"job-1")
        );
        up.clear().await.unwrap();
        assert_eq!(up.boot_status().await.unwrap(), BootStatus::Normal);
    });
}

#[test]
fn trial_boot_without_confirm_rolls_back() {
    let (mut dev, old, new, signer) = setup();
    set_current(&new);
    download_all(&mut dev, &new, &(0..blocks(&new)).collect::<Vec<_>>());
    let key = signer.device_key();
    let sig = signer.sign(&new);
    finish(
        &mut dev,
        &Checks {
            digest: None,
            signature: Some(SignatureCheck {
                key: &key,
                der: &sig,
            }),
        },
    )
    .unwrap();
    assert_eq!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(new.len()), &new[..]);
    // The new image never confirms: the next reset reverts to the old one.
    assert_eq!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(ACTIVE_SIZE), &old[..]);
    let mut up = dev.updater();
    block_on(async {
        assert!(
            matches!(up.boot_status().await.unwrap(), BootStatus::RolledBack(r) if r.tag() == b"job-1")
        );
        up.clear().await.unwrap();
        assert_eq!(up.boot_status().await.unwrap(), BootStatus::Normal);
    });
    // And it stays the old image.
    drop(up);
    assert_ne!(dev.reboot(), State::Swap);
    assert_eq!(dev.active_bytes(ACTIVE_SIZE), &old[..]);
}

#[test]
fn download_resumes_from_the_record_after_a_reset() {
    let (mut dev, _old, new, _signer) = setup();
    let n = blocks(&new);
    let order = shuffled(n, 3);
    let (first, rest) = order.split_at(n as usize / 2);
    {
        let mut up = dev.updater();
        block_on(async {
            assert_eq!(
                up.begin(&spec(&new, b"job-1")).await,
                Ok(Progress {
                    received: 0,
                    total: n
                })
            );
            for &i in first {
                up.write_block(i, block(&new, i)).await.unwrap();
            }
        });
    }
    let erases = dev.dfu.erases();
    // "Reset": a new updater over the same flash.
    let mut up = dev.updater();
    block_on(async {
        let p = up.begin(&spec(&new, b"job-1")).await.unwrap();
        assert_eq!(
            p,
            Progress {
                received: first.len() as u32,
                total: n
            }
        );
        // Missing blocks are exactly the rest.
        let mut missing = Vec::new();
        let mut from = 0;
        while let Some(i) = up.next_missing(from).await.unwrap() {
            missing.push(i);
            from = i + 1;
        }
        let mut want = rest.to_vec();
        want.sort();
        assert_eq!(missing, want);
        let mut bitmap = [0u8; 16];
        let count = up.missing(0, &mut bitmap).await.unwrap();
        assert_eq!(count, want.iter().filter(|&&i| i < 128).count() as u32);
        for i in 0..128u32.min(n) {
            let bit = bitmap[(i / 8) as usize] >> (i % 8) & 1 == 1;
            assert_eq!(bit, want.contains(&i), "block {i}");
        }
        // A block that is already there is not written again.
        let had = first[0];
        assert_eq!(
            up.write_block(had, block(&new, had)).await,
            Ok(BlockWritten::Duplicate)
        );
        for &i in rest {
            up.write_block(i, block(&new, i)).await.unwrap();
        }
        assert!(up.progress().unwrap().is_complete());
        assert_eq!(up.next_missing(0).await, Ok(None));
    });
    drop(up);
    // Resuming did not erase the update partition again.
    assert_eq!(dev.dfu.erases(), erases);
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
}

#[test]
fn missing_bitmap_uses_the_aws_bit_order() {
    // AWS's example: blocks 20, 21, 24, 43 with offset 20 -> bits 0, 1, 4, 23 -> 13 00 80.
    let mut dev = Device::new(&[]);
    let img = image(64 * 1024, 5);
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec(&img, b"")).await.unwrap();
        for i in 0..blocks(&img) {
            if ![20, 21, 24, 43].contains(&i) {
                up.write_block(i, block(&img, i)).await.unwrap();
            }
        }
        let mut bitmap = [0u8; 3];
        assert_eq!(up.missing(20, &mut bitmap).await, Ok(4));
        assert_eq!(bitmap, [0x13, 0x00, 0x80]);
    });
}

#[test]
fn a_different_image_restarts_from_zero() {
    let (mut dev, _old, new, _signer) = setup();
    let other = image(new.len(), 9);
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec(&new, b"job-1")).await.unwrap();
        for i in 0..10 {
            up.write_block(i, block(&new, i)).await.unwrap();
        }
        let p = up.begin(&spec(&other, b"job-2")).await.unwrap();
        assert_eq!(p.received, 0);
        assert_eq!(up.next_missing(0).await, Ok(Some(0)));
        assert_eq!(up.image().unwrap().tag(), b"job-2");
    });
    drop(up);
    // The update partition was erased for the new image.
    assert!(
        dev.dfu_bytes(10 * BLOCK as usize)
            .iter()
            .all(|&b| b == 0xFF)
    );
}

#[test]
fn short_and_oversize_blocks_are_refused_and_stay_missing() {
    let (mut dev, _old, new, _signer) = setup();
    let n = blocks(&new);
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec(&new, b"")).await.unwrap();
        let short = &block(&new, 3)[..BLOCK as usize - 1];
        assert_eq!(
            up.write_block(3, short).await,
            Err(OtaError::BlockLength {
                index: 3,
                expected: BLOCK,
                got: BLOCK - 1
            })
        );
        let mut long = block(&new, 3).to_vec();
        long.push(0);
        assert!(matches!(
            up.write_block(3, &long).await,
            Err(OtaError::BlockLength { .. })
        ));
        // The last block is short by nature: a full-size one is refused.
        let last = n - 1;
        let mut full = block(&new, last).to_vec();
        full.resize(BLOCK as usize, 0);
        assert!(matches!(
            up.write_block(last, &full).await,
            Err(OtaError::BlockLength { .. })
        ));
        assert_eq!(
            up.write_block(n, block(&new, 0)).await,
            Err(OtaError::BlockIndex(n))
        );
        assert_eq!(up.progress().unwrap().received, 0);
        assert_eq!(up.next_missing(3).await, Ok(Some(3)));
        assert_eq!(
            up.write_block(3, block(&new, 3)).await,
            Ok(BlockWritten::New)
        );
        assert_eq!(
            up.write_block(last, block(&new, last)).await,
            Ok(BlockWritten::New)
        );
    });
}

#[test]
fn a_flash_write_failing_part_way_is_reported_and_resumable() {
    let (mut dev, _old, new, signer) = setup();
    set_current(&new);
    let n = blocks(&new);
    // The 3rd write to the update partition from now fails after half its bytes.
    dev.dfu.fail_write(2);
    {
        let mut up = dev.updater();
        block_on(async {
            up.begin(&spec(&new, b"job-1")).await.unwrap();
            let mut failed = None;
            for i in 0..n {
                match up.write_block(i, block(&new, i)).await {
                    Ok(_) => {}
                    Err(OtaError::Storage(_)) => {
                        failed = Some(i);
                        break;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            let failed = failed.expect("the fault happened");
            assert_eq!(up.next_missing(0).await, Ok(Some(failed)));
        });
    }
    // Also a failing record write (the block's cell): the block stays missing.
    dev.record.fail_write(0);
    let mut up = dev.updater();
    block_on(async {
        let p = up.begin(&spec(&new, b"job-1")).await.unwrap();
        assert!(p.received < n);
        let mut from = 0;
        let mut record_fault_seen = false;
        while let Some(i) = up.next_missing(from).await.unwrap() {
            match up.write_block(i, block(&new, i)).await {
                Ok(_) => from = i + 1,
                Err(OtaError::Storage(_)) => {
                    record_fault_seen = true;
                    from = i; // ask again
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(record_fault_seen);
        assert!(up.progress().unwrap().is_complete());
    });
    drop(up);
    assert_eq!(sha256(dev.dfu_bytes(new.len())), sha256(&new));
    let key = signer.device_key();
    let sig = signer.sign(&new);
    let checks = Checks {
        digest: Some(Digest::Sha256(sha256(&new))),
        signature: Some(SignatureCheck {
            key: &key,
            der: &sig,
        }),
    };
    assert_eq!(finish(&mut dev, &checks), Ok(sha256(&new)));
}

/// Downloads `new`, runs `finish` with `checks`, and asserts it is refused with `want`, the
/// state partition is untouched and a reset keeps the old firmware.
fn assert_refused(
    checks_for: impl FnOnce(&[u8], &Signer) -> (Option<Digest>, Option<Vec<u8>>, Option<CodeSigningKey>),
    want: OtaError,
) {
    let (mut dev, old, new, signer) = setup();
    set_current(&new);
    download_all(&mut dev, &new, &shuffled(blocks(&new), 11));
    let state_before = dev.state.as_bytes().to_vec();
    let (digest, sig, key) = checks_for(&new, &signer);
    let key = key.unwrap_or_else(|| signer.device_key());
    let checks = Checks {
        digest,
        signature: sig.as_ref().map(|s| SignatureCheck { key: &key, der: s }),
    };
    assert_eq!(finish(&mut dev, &checks), Err(want));
    // Nothing marked: the state partition holds what it held.
    assert_eq!(dev.state.as_bytes(), &state_before[..]);
    assert_eq!(dev.reboot(), State::Boot);
    assert_eq!(dev.active_bytes(ACTIVE_SIZE), &old[..]);
    let mut up = dev.updater();
    assert_eq!(block_on(up.boot_status()), Ok(BootStatus::Normal));
}

#[test]
fn valid_hash_with_a_bad_signature_is_refused() {
    assert_refused(
        |new, _| {
            let other = Signer::new();
            (
                Some(Digest::Sha256(sha256(new))),
                Some(other.sign(new)),
                None,
            )
        },
        OtaError::Signature,
    );
}

#[test]
fn a_good_signature_over_different_bytes_is_refused() {
    assert_refused(
        |new, signer| {
            let mut different = new.to_vec();
            different[5000] ^= 1;
            (None, Some(signer.sign(&different)), None)
        },
        OtaError::Signature,
    );
}

#[test]
fn a_malformed_signature_is_refused() {
    assert_refused(
        |_, _| (None, Some(vec![0x30, 0x03, 0x02, 0x01]), None),
        OtaError::Signature,
    );
}

#[test]
fn a_wrong_digest_is_refused() {
    assert_refused(
        |_, _| (Some(Digest::Sha256([7; 32])), None, None),
        OtaError::Digest,
    );
}

#[test]
fn finish_needs_a_check_and_every_block() {
    let (mut dev, _old, new, _signer) = setup();
    set_current(&new);
    let mut up = dev.updater();
    block_on(async {
        up.begin(&spec(&new, b"job-1")).await.unwrap();
        up.write_block(0, block(&new, 0)).await.unwrap();
        let d = Checks {
            digest: Some(Digest::Sha256(sha256(&new))),
            signature: None,
        };
        assert_eq!(
            up.finish(&d).await,
            Err(OtaError::Incomplete {
                missing: blocks(&new) - 1
            })
        );
        assert_eq!(up.finish(&Checks::default()).await, Err(OtaError::NoCheck));
    });
}

#[test]
fn images_that_do_not_fit_are_refused() {
    let mut dev = Device::new(&[]);
    let mut up = dev.updater();
    block_on(async {
        let too_big = ImageSpec {
            id: [0; 32],
            size: 200 * 1024,
            block_size: 1024,
            tag: b"",
        };
        assert_eq!(up.begin(&too_big).await, Err(OtaError::Size));
        // 4 KiB record, 4-byte cells: (4096 - 128) / 4 - 2 = 990 blocks at most.
        let many = ImageSpec {
            id: [0; 32],
            size: 991 * 64,
            block_size: 64,
            tag: b"",
        };
        assert_eq!(up.begin(&many).await, Err(OtaError::Size));
        let ok = ImageSpec {
            id: [0; 32],
            size: 990 * 64,
            block_size: 64,
            tag: b"",
        };
        assert!(up.begin(&ok).await.is_ok());
        let long_tag = ImageSpec {
            id: [0; 32],
            size: 64,
            block_size: 64,
            tag: &[b'x'; 65],
        };
        assert_eq!(up.begin(&long_tag).await, Err(OtaError::Size));
    });
}

#[test]
fn a_corrupted_record_header_starts_again() {
    let (mut dev, _old, new, _signer) = setup();
    {
        let mut up = dev.updater();
        block_on(async {
            up.begin(&spec(&new, b"job-1")).await.unwrap();
            for i in 0..5 {
                up.write_block(i, block(&new, i)).await.unwrap();
            }
        });
    }
    dev.record.as_bytes_mut()[20] ^= 0x40;
    let mut up = dev.updater();
    assert_eq!(
        block_on(up.begin(&spec(&new, b"job-1"))).unwrap().received,
        0
    );
}

#[test]
fn the_key_comes_from_a_pem_or_der_certificate_or_a_point() {
    let signer = Signer::new();
    let img = b"firmware";
    let sig = signer.sign(img);
    let mut scratch = [0u8; 2048];
    let from_pem =
        CodeSigningKey::from_certificate_pem(signer.cert_pem.as_bytes(), &mut scratch).unwrap();
    let from_der = CodeSigningKey::from_certificate_der(&signer.cert_der).unwrap();
    for k in [&from_pem, &from_der] {
        assert_eq!(k.verify(&sha256(img), &sig), Ok(()));
        assert_eq!(
            k.verify(&sha256(b"firmwarf"), &sig),
            Err(OtaError::Signature)
        );
    }
    // The SEC1 point from the certificate (via x509-parser) gives the same key.
    let (_, cert) = x509_parser::parse_x509_certificate(&signer.cert_der).unwrap();
    let point = cert.public_key().subject_public_key.data.to_vec();
    let from_point = CodeSigningKey::from_sec1(&point).unwrap();
    assert_eq!(from_point.verify(&sha256(img), &sig), Ok(()));
    // Malformed input is a typed error, never a panic.
    assert_eq!(
        CodeSigningKey::from_sec1(&point[..30]).err(),
        Some(OtaError::Key)
    );
    for n in 0..signer.cert_der.len() {
        let _ = CodeSigningKey::from_certificate_der(&signer.cert_der[..n]);
    }
    assert_eq!(
        CodeSigningKey::from_certificate_der(&signer.cert_der[..100]).err(),
        Some(OtaError::Key)
    );
    // An Ed25519 certificate is not a P-256 key.
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&ed)
        .unwrap();
    assert_eq!(
        CodeSigningKey::from_certificate_der(cert.der()).err(),
        Some(OtaError::Key)
    );
    // base64 of the signature, as a job document carries it.
    let b64 = base64_encode(&sig);
    let mut out = [0u8; 72];
    assert_eq!(decode_base64(b64.as_bytes(), &mut out), Ok(&sig[..]));
    assert_eq!(decode_base64(b"!!", &mut out), Err(OtaError::Signature));
    let mut small = [0u8; 8];
    assert_eq!(
        decode_base64(b64.as_bytes(), &mut small),
        Err(OtaError::Signature)
    );
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
