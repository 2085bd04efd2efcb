//! The device's own identity (one device, one secret) and where it is kept.

use core::fmt;

use super::Endpoint;
use crate::asynch::{Apn, TlsConfig};
use crate::cloud::CloudError;
use crate::mqtt::MqttConfig;

/// A device's AWS IoT identity: its thing name (the MQTT client id), its certificate and its
/// private key, both PEM. `Debug` (and `defmt`) never show the private key.
///
/// Borrowed: the text lives in a buffer of the application (loaded from an
/// [`IdentityStore`], or filled by [`FleetProvisioning`](super::FleetProvisioning)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentity<'a> {
    /// Thing name; the client id to connect with (AWS policies written with
    /// `${iot:Connection.Thing.ThingName}` need client id = thing name).
    pub thing_name: &'a str,
    /// AWS certificate id (64 hex digits), for your records and for rotating the certificate.
    /// May be empty for identities made outside fleet provisioning.
    pub certificate_id: &'a str,
    /// Device certificate, PEM.
    pub certificate_pem: &'a str,
    /// Private key, PEM (`EC PRIVATE KEY` from a CSR made on the device, `RSA PRIVATE KEY`
    /// from `CreateKeysAndCertificate`). Secret.
    pub private_key_pem: &'a str,
}

impl fmt::Debug for DeviceIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("thing_name", &self.thing_name)
            .field("certificate_id", &self.certificate_id)
            .field("certificate_pem", &self.certificate_pem.len())
            .field("private_key_pem", &"***")
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DeviceIdentity<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "DeviceIdentity {{ thing_name: {=str}, certificate_id: {=str}, certificate_pem: {=usize}, private_key_pem: *** }}",
            self.thing_name,
            self.certificate_id,
            self.certificate_pem.len()
        )
    }
}

/// First bytes of an encoded identity record (format version 1).
const MAGIC: &[u8; 4] = b"QAI1";
/// Magic, four 16-bit lengths, CRC-32.
const OVERHEAD: usize = 4 + 4 * 2 + 4;

impl<'a> DeviceIdentity<'a> {
    /// The TLS settings for this identity: verify the server against `ca_pem` (AWS: Amazon Root
    /// CA 1), present this certificate and key, send SNI.
    pub fn tls_config(&self, ca_pem: &'a [u8]) -> TlsConfig<'a> {
        TlsConfig::new(ca_pem).with_client_identity(
            self.certificate_pem.as_bytes(),
            self.private_key_pem.as_bytes(),
        )
    }

    /// The MQTT configuration to reconnect with after provisioning: TLS in the modem on SSL
    /// context `ssl_ctx` with this certificate and key, client id = the thing name.
    ///
    /// [`Mqtt::connect`](crate::mqtt::Mqtt::connect) uploads the certificate and key to the
    /// module's file system (`AT+QFUPL`) as `qcrt<ctx>_<crc>.pem` / `qkey<ctx>_<crc>.pem` before
    /// it opens the socket, unless the module has them already (checked after every modem
    /// reboot; see [`Modem::configure_tls`](crate::asynch::Modem::configure_tls)). Use a different `ssl_ctx` from the claim
    /// connection's: the files then get new names and the claim certificate stays in place for
    /// a later re-provisioning.
    pub fn mqtt_config(
        &self,
        endpoint: &Endpoint<'a>,
        ca_pem: &'a [u8],
        ssl_ctx: u8,
        apn: Apn<'a>,
    ) -> Result<MqttConfig<'a>, CloudError> {
        let transport = endpoint.modem_transport(ssl_ctx, self.tls_config(ca_pem))?;
        endpoint.mqtt_config(self.thing_name, transport, apn)
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        // Saturating: a sum that large fits no buffer, and `encode` refuses it.
        OVERHEAD
            .saturating_add(self.thing_name.len())
            .saturating_add(self.certificate_id.len())
            .saturating_add(self.certificate_pem.len())
            .saturating_add(self.private_key_pem.len())
    }

    /// Writes the identity as one self-checking record (for flash, a file, EEPROM): a magic,
    /// the four field lengths, the fields, a CRC-32. Returns the length. Write the record in
    /// one go (or to a fresh slot, then switch over) so a power cut cannot leave half of it.
    /// [`CloudError::RequestTooLarge`] if `out` is too short or a field exceeds 65535 bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, CloudError> {
        let n = self.encoded_len();
        let record = out.get_mut(..n).ok_or(CloudError::RequestTooLarge)?;
        let (body, crc) = record
            .split_last_chunk_mut::<4>()
            .ok_or(CloudError::RequestTooLarge)?;
        let fields = [
            self.thing_name,
            self.certificate_id,
            self.certificate_pem,
            self.private_key_pem,
        ];
        // Appends `bytes` at the front of `rest` (the sizes add up to `body.len()`).
        fn put(rest: &mut &mut [u8], bytes: &[u8]) -> Result<(), CloudError> {
            let (dst, after) = core::mem::take(rest)
                .split_at_mut_checked(bytes.len())
                .ok_or(CloudError::RequestTooLarge)?;
            dst.copy_from_slice(bytes);
            *rest = after;
            Ok(())
        }
        let mut rest = &mut *body;
        put(&mut rest, MAGIC)?;
        for f in fields {
            let len = u16::try_from(f.len()).map_err(|_| CloudError::RequestTooLarge)?;
            put(&mut rest, &len.to_le_bytes())?;
        }
        for f in fields {
            put(&mut rest, f.as_bytes())?;
        }
        *crc = crc32(body).to_le_bytes();
        Ok(n)
    }

    /// Reads a record written by [`encode`](Self::encode) (trailing bytes after it are
    /// ignored, e.g. erased flash). [`CloudError::Storage`] if it is not a valid record
    /// (wrong magic, lengths, CRC or text).
    pub fn decode(record: &'a [u8]) -> Result<Self, CloudError> {
        let bad = CloudError::Storage;
        let header = record.strip_prefix(MAGIC).ok_or(bad)?;
        let (len_bytes, _) = header.split_first_chunk::<8>().ok_or(bad)?;
        let (len_pairs, _) = len_bytes.as_chunks::<2>();
        let mut lens = [0usize; 4];
        for (l, pair) in lens.iter_mut().zip(len_pairs) {
            *l = usize::from(u16::from_le_bytes(*pair));
        }
        // Four 16-bit lengths: the sum cannot overflow.
        let body = lens.iter().fold(0usize, |a, &l| a.saturating_add(l));
        let (signed, after) = record
            .split_at_checked(body.saturating_add(OVERHEAD - 4))
            .ok_or(bad)?;
        let crc_bytes = after.get(..4).ok_or(bad)?;
        if crc32(signed).to_le_bytes() != crc_bytes {
            return Err(bad);
        }
        let mut rest = signed.get(OVERHEAD - 4..).ok_or(bad)?;
        let mut field = |len: usize| {
            let (s, after) = rest.split_at_checked(len).ok_or(bad)?;
            rest = after;
            core::str::from_utf8(s).map_err(|_| bad)
        };
        let [thing_name, certificate_id, certificate_pem, private_key_pem] = lens;
        Ok(Self {
            thing_name: field(thing_name)?,
            certificate_id: field(certificate_id)?,
            certificate_pem: field(certificate_pem)?,
            private_key_pem: field(private_key_pem)?,
        })
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), bitwise: small and table-free.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Where the application keeps the device's identity between boots (flash, EEPROM, a file,
/// a secure element). The driver calls [`save`](Self::save) once, with the whole identity,
/// right after `RegisterThing` succeeded; on the next boot the application calls
/// [`load`](Self::load) and connects with what it returns instead of provisioning again.
///
/// `save` gets everything in one call so that an implementation can make it atomic (write a
/// new record, then switch over; [`DeviceIdentity::encode`] makes such a record): a power cut
/// must leave either the old identity or the new one, never half of each.
pub trait IdentityStore {
    /// Copies the stored identity into `buf` and returns it, or `None` if nothing is stored.
    /// [`CloudError::ResponseTooLarge`] if `buf` is too small, [`CloudError::Storage`] if the
    /// stored data is unreadable.
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<DeviceIdentity<'b>>, CloudError>;

    /// Stores `identity`, replacing what was there, all or nothing.
    /// [`CloudError::Storage`] if it cannot be stored (the old identity is then kept).
    fn save(&mut self, identity: &DeviceIdentity<'_>) -> Result<(), CloudError>;
}

/// An [`IdentityStore`] in RAM: `N` bytes holding one record of [`DeviceIdentity::encode`].
/// For examples and tests, or as a cache in front of slower storage; it forgets everything at
/// reset. `Debug` shows only whether it holds an identity.
pub struct RamIdentityStore<const N: usize> {
    data: [u8; N],
    len: usize,
}

impl<const N: usize> fmt::Debug for RamIdentityStore<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamIdentityStore")
            .field("capacity", &N)
            .field("stored", &self.len)
            .finish()
    }
}

impl<const N: usize> Default for RamIdentityStore<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RamIdentityStore<N> {
    /// An empty store.
    pub const fn new() -> Self {
        Self {
            data: [0; N],
            len: 0,
        }
    }

    /// Whether an identity is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stored record, as [`DeviceIdentity::encode`] wrote it (empty if none).
    pub fn record(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Forgets the stored identity (overwriting it).
    pub fn clear(&mut self) {
        self.data.fill(0);
        self.len = 0;
    }
}

impl<const N: usize> IdentityStore for RamIdentityStore<N> {
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<DeviceIdentity<'b>>, CloudError> {
        if self.len == 0 {
            return Ok(None);
        }
        let capacity = buf.len();
        let dst = buf
            .get_mut(..self.len)
            .ok_or(CloudError::ResponseTooLarge {
                needed: self.len,
                capacity,
            })?;
        dst.copy_from_slice(&self.data[..self.len]);
        DeviceIdentity::decode(dst).map(Some)
    }

    fn save(&mut self, identity: &DeviceIdentity<'_>) -> Result<(), CloudError> {
        // Checked before anything is overwritten: a failed save keeps the old identity.
        if identity.encoded_len() > N {
            return Err(CloudError::Storage);
        }
        self.len = identity
            .encode(&mut self.data)
            .map_err(|_| CloudError::Storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: DeviceIdentity<'static> = DeviceIdentity {
        thing_name: "thing-SN0001",
        certificate_id: "ab12",
        certificate_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        private_key_pem: "-----BEGIN EC PRIVATE KEY-----\nSECRETSECRET\n-----END EC PRIVATE KEY-----\n",
    };

    fn debug_text(v: &impl fmt::Debug) -> heapless::String<256> {
        let mut s = heapless::String::new();
        fmt::write(&mut s, format_args!("{v:?}")).unwrap();
        s
    }

    #[test]
    fn crc_known_answer() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn record_round_trip_and_corruption() {
        let mut buf = [0u8; 512];
        let n = ID.encode(&mut buf).unwrap();
        assert_eq!(n, ID.encoded_len());
        assert_eq!(DeviceIdentity::decode(&buf[..n]), Ok(ID));
        // Trailing erased flash is fine.
        buf[n..].fill(0xff);
        assert_eq!(DeviceIdentity::decode(&buf), Ok(ID));
        for i in 0..n {
            let mut bad = buf;
            bad[i] ^= 0x40;
            assert!(DeviceIdentity::decode(&bad[..n]).is_err(), "flip at {i}");
        }
        assert_eq!(
            DeviceIdentity::decode(&buf[..n - 1]),
            Err(CloudError::Storage)
        );
        assert_eq!(
            ID.encode(&mut buf[..n - 1]),
            Err(CloudError::RequestTooLarge)
        );
    }

    #[test]
    fn ram_store_all_or_nothing() {
        let mut store = RamIdentityStore::<256>::new();
        let mut buf = [0u8; 256];
        assert_eq!(store.load(&mut buf), Ok(None));
        store.save(&ID).unwrap();
        assert_eq!(store.load(&mut buf), Ok(Some(ID)));
        let mut small = [0u8; 16];
        assert_eq!(
            store.load(&mut small),
            Err(CloudError::ResponseTooLarge {
                needed: ID.encoded_len(),
                capacity: 16
            })
        );
        // Too big for the store: refused, the old identity stays.
        let big_pem = core::str::from_utf8(&[b'A'; 250]).unwrap();
        let big = DeviceIdentity {
            certificate_pem: big_pem,
            ..ID
        };
        assert_eq!(store.save(&big), Err(CloudError::Storage));
        assert_eq!(store.load(&mut buf), Ok(Some(ID)));
        store.clear();
        assert!(store.is_empty());
    }

    #[test]
    fn debug_is_redacted() {
        let s = debug_text(&ID);
        assert!(s.contains("thing-SN0001"), "{s}");
        assert!(!s.contains("SECRET"), "{s}");
        let mut store = RamIdentityStore::<256>::new();
        store.save(&ID).unwrap();
        let s = debug_text(&store);
        assert!(!s.contains("SECRET"), "{s}");
    }
}
