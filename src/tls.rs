//! TLS 1.3 on the MCU (feature `mcu-tls`): [`embedded-tls`](embedded_tls) over a plain modem TCP
//! socket, or over any `embedded_io_async` byte stream.
//!
//! Use it when the broker or server needs something the modem's own TLS
//! ([`Remote::Tls`](crate::asynch::Remote::Tls)) cannot give: keys that must stay on the MCU (or
//! in a secure element behind a custom [`CryptoProvider`]), TLS 1.3, an ALPN protocol the modem
//! firmware does not send, or one TLS code path across modem models.
//!
//! ```rust,no_run
//! use embedded_io_async::{Read, Write};
//! use quectel::asynch::{Modem, Remote};
//! use quectel::tls::{McuTls, McuTlsConfig, TlsBuffers, pem_to_der};
//!
//! async fn hello(
//!     modem: &Modem<'_>,
//!     buffers: &mut TlsBuffers,                       // ~37 KiB: put it in a StaticCell
//!     rng: impl rand_core::CryptoRngCore,             // the MCU's hardware RNG (rand_core 0.6)
//!     ca_pem: &[u8],
//!     cert_der: &[u8],
//!     key_der: &[u8],                                 // P-256, SEC1 or PKCS#8 DER
//! ) -> Result<(), quectel::tls::TlsError> {
//!     let mut ca = [0u8; 1024];
//!     let ca_der = pem_to_der(ca_pem, &mut ca)?;
//!     let config = McuTlsConfig::new("broker.example.com", ca_der)
//!         .with_client_identity(cert_der, key_der);
//!     // A plain TCP socket: the TLS runs here, on the MCU.
//!     let sock = modem
//!         .connect(1, Remote::Tcp { host: "broker.example.com", port: 8883 })
//!         .await?;
//!     let mut tls = McuTls::connect(sock, buffers, &config, rng).await?;
//!     tls.write_all(b"hello").await?;
//!     tls.flush().await?;                             // writes are buffered into records
//!     let mut buf = [0u8; 64];
//!     let n = tls.read(&mut buf).await?;              // cancel-safe
//!     let _reply = &buf[..n];
//!     tls.close().await?.close().await?;              // close_notify, then AT+QICLOSE
//!     Ok(())
//! }
//! ```
//!
//! # What it does
//!
//! * **Verifies the server by default**: [`McuTlsConfig::new`] takes one CA certificate (X.509
//!   DER; [`pem_to_der`] converts PEM) and checks the chain the server sends against it with
//!   embedded-tls's `pki::CertVerifier`, the server name against the certificate, and the
//!   server's `CertificateVerify` signature. Skipping all that takes the explicitly named
//!   [`McuTlsConfig::insecure_no_verify`].
//! * **Client certificates** (mutual TLS): [`McuTlsConfig::with_client_identity`] with the
//!   certificate (X.509 DER) and its P-256 private key (SEC1 `EC PRIVATE KEY` or PKCS#8
//!   `PRIVATE KEY`, DER). The key is parsed before any byte is sent; `Debug` never prints it.
//! * **SNI and ALPN**: the server name is sent as SNI; [`McuTlsConfig::with_alpn`] offers ALPN
//!   protocols (e.g. `b"x-amzn-mqtt-ca"` for AWS IoT MQTT on port 443).
//! * **Cancel-safe reads**: embedded-tls 0.19's own `read` is not cancel-safe (it reads a record
//!   header into a local variable, then the body: dropping the future in between loses the
//!   header and corrupts the stream), and MQTT clients such as minimq drop their transport read
//!   at every keepalive deadline. [`TlsStream`] puts a *record aligner* under embedded-tls: it
//!   buffers bytes from the transport until a whole TLS record has arrived and only then hands
//!   the record over, so embedded-tls never waits in the middle of a record, and a read dropped
//!   at any point loses nothing (provided the transport's own `read` is cancel-safe, as
//!   [`Socket`](crate::asynch::Socket)'s is).
//! * **Typed errors**: this layer has its own error, [`TlsError`]: [`TlsError::Failure`] with a
//!   [`TlsFailure`] (a wrong CA or name is [`TlsFailure::Certificate`]), [`TlsError::Transport`]
//!   with the socket's own core [`Error`] when the transport is a modem socket
//!   ([`Error::ConnectionClosed`], [`Error::ContextDeactivated`], …),
//!   [`TlsError::InvalidKey`] / [`TlsError::InvalidServerName`] for an unusable key or name,
//!   [`TlsError::BufferTooSmall`] for a server
//!   chain larger than [`MAX_SERVER_CHAIN`].
//!
//! # Limits
//!
//! * **TLS 1.3 only**, cipher suite `TLS_AES_128_GCM_SHA256`, key exchange **secp256r1** only.
//!   A server limited to TLS 1.2 cannot be reached: use the modem's TLS for it.
//! * **ECDSA P-256 chains only.** The server's chain and `CertificateVerify` must be ECDSA
//!   P-256/SHA-256. RSA server chains need embedded-tls's `rsa` feature, which needs an
//!   allocator (`alloc` and a heap): **not provided here**; such servers fail with
//!   [`TlsFailure::Certificate`] (or [`TlsFailure::Handshake`]), never with a silent downgrade.
//! * **One trust anchor**: the CA must have signed the *last* certificate the server sends
//!   (if the server appends a cross-signed root, trust what signed that one).
//! * **Name check**: at most **3 SAN DNS names** are read from the server certificate (later
//!   ones are ignored), each at most 64 bytes, falling back to the CN; IP-address SANs are not
//!   checked; the name must be at most 64 bytes.
//! * **No basicConstraints, keyUsage or EKU checks**; **validity dates only with a clock**:
//!   [`McuTls::connect`] checks them against the network's time ([`NetworkClock`]) once the
//!   network sent it (a time URC, or `Network::network_time`/`Network::time` read it) and
//!   checks none before; give your own clock with [`McuTlsProvider::with_clock`] and
//!   [`McuTls::connect_with`] ([`McuTlsProvider::new`] alone checks no dates).
//! * **Client keys: P-256 only** (other signers through your own [`CryptoProvider`] and
//!   [`McuTls::connect_with`]).
//! * **Writes are buffered** into records (up to the write buffer's size): call `flush`. They
//!   are **not cancel-safe**: a `write`/`flush` dropped while it waited may have sent part of a
//!   record, so the stream refuses further writes with [`TlsFailure::Interrupted`].
//! * After the handshake, a server alert other than `close_notify` is reported as
//!   [`TlsFailure::Alert`] without its code (embedded-tls does not keep it). embedded-tls 0.19
//!   handles no post-handshake message but `NewSessionTicket` (ignored): a server `KeyUpdate`
//!   ends the connection with [`TlsFailure::Protocol`], and a post-handshake
//!   `CertificateRequest` makes it panic (`unimplemented!`); MQTT brokers normally send
//!   neither.
//! * Every error is final: after one, the stream returns it again; close it and reconnect.
//!
//! # RAM
//!
//! [`TlsBuffers`] (caller-owned, `const fn new()`, fits a `StaticCell`): the record read buffer
//! (16 640 bytes: the largest TLS 1.3 record), the write buffer (4 096 bytes by default) and the
//! aligner's buffer (16 640 bytes): **37 376 bytes** with the defaults. A server that is known to
//! send small records (e.g. one you control) allows smaller `R`; a record longer than `R` is
//! [`TlsFailure::RecordTooLong`]. Besides: the [`McuTls::connect`] future is about 12 KiB while
//! the handshake runs (the verifier's copy of the server chain, up to [`MAX_SERVER_CHAIN`]
//! bytes, and embedded-tls's handshake state), and a [`TlsStream`] about 1.4 KiB (key schedule),
//! both measured on a 64-bit host.

use core::cell::Cell;
use core::fmt;

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{ErrorType, Read, Write};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, SignatureScheme, TlsConnection, TlsContext,
    TlsError as EtlsError, TlsVerifier,
};
use p256::ecdsa::signature::{self, Signer};
use p256::ecdsa::{DerSignature, SigningKey};
use rand_core::CryptoRngCore;

use crate::Error;

pub use embedded_tls::{CryptoProvider, NoClock, TlsClock};

/// The network's time as a TLS clock: [`crate::asynch::network_utc_now`], the last time the
/// network sent (a time URC, or `Network::network_time`/`Network::time`) plus the local time
/// since. `None` (no date check) until the network sent the time. [`McuTls::connect`] uses it.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetworkClock;

impl TlsClock for NetworkClock {
    fn now() -> Option<u64> {
        crate::asynch::network_utc_now()
    }
}

/// The cipher suite used (the one every TLS 1.3 server supports).
pub type CipherSuite = Aes128GcmSha256;

/// Largest TLS 1.3 record body (ciphertext): 2^14 bytes of plaintext + 256.
pub const MAX_RECORD_BODY: usize = 16_384 + 256;
/// Size of a TLS record header.
const HEADER: usize = 5;
/// Largest server certificate chain (sum of the DER certificates with their TLS framing) the
/// verifier accepts; a larger one fails with [`TlsError::BufferTooSmall`].
pub const MAX_SERVER_CHAIN: usize = 4096;
/// How long a failed write waits for the alert that may explain the peer's close.
const ALERT_GRACE: Duration = Duration::from_millis(200);
/// Longest server name embedded-tls can check.
const MAX_SERVER_NAME: usize = 64;

/// What went wrong in the TLS protocol itself (in [`TlsError::Failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlsFailure {
    /// The handshake failed: the server aborted it with an alert (e.g. no TLS 1.3, no common
    /// group or cipher suite), or sent something embedded-tls does not accept.
    Handshake,
    /// The server's certificate was rejected: not signed by the configured CA, its names do not
    /// match the server name, its signature or `CertificateVerify` does not verify, it is
    /// expired (with a clock), or it uses an algorithm this build cannot verify.
    Certificate,
    /// The peer aborted an established connection with an alert. In TLS 1.3 this is how a
    /// server refuses a missing or unacceptable client certificate (after our `Finished`, so
    /// it shows at the first read).
    Alert,
    /// The transport ended without a TLS `close_notify` (possibly in the middle of a record).
    PeerClosed,
    /// A record longer than the buffers (or than TLS allows) was announced.
    RecordTooLong,
    /// A record could not be decrypted or parsed.
    Protocol,
    /// A `write` or `flush` was dropped while it waited: part of a record may have been sent,
    /// so the stream cannot be written any more.
    Interrupted,
    /// The transport (not a modem socket) returned an I/O error.
    Io,
}

impl TlsFailure {
    fn kind(self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            TlsFailure::Handshake | TlsFailure::Certificate => ErrorKind::ConnectionRefused,
            TlsFailure::Alert => ErrorKind::ConnectionAborted,
            TlsFailure::PeerClosed => ErrorKind::ConnectionReset,
            TlsFailure::RecordTooLong | TlsFailure::Protocol => ErrorKind::InvalidData,
            TlsFailure::Interrupted | TlsFailure::Io => ErrorKind::Other,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::Handshake => "handshake failed",
            TlsFailure::Certificate => "server certificate rejected",
            TlsFailure::Alert => "peer aborted the connection with an alert",
            TlsFailure::PeerClosed => "transport closed without close_notify",
            TlsFailure::RecordTooLong => "record too long",
            TlsFailure::Protocol => "bad record",
            TlsFailure::Interrupted => "a write was interrupted",
            TlsFailure::Io => "transport error",
        })
    }
}

impl core::error::Error for TlsFailure {}

/// The error of the MCU TLS layer: the TLS protocol failed, the configuration or input is not
/// usable, or the transport under it failed (a modem socket's [`Error`], kept as it is).
///
/// It is the `embedded_io::Error` of [`TlsStream`], so an MQTT client or an HTTP client over
/// the stream sees it. `From<Error>` wraps a core error as [`TlsError::Transport`]. Holds no
/// secret (no key material, no plaintext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlsError {
    /// The transport failed. For a modem [`Socket`](crate::asynch::Socket) this is its own
    /// error ([`Error::ConnectionClosed`], [`Error::ContextDeactivated`], [`Error::Timeout`], …);
    /// for another transport, the nearest core error for its `ErrorKind` (timed out, closed),
    /// else [`TlsFailure::Io`] in [`TlsError::Failure`].
    Transport(Error),
    /// The TLS protocol failed: handshake, certificate, alert, truncated stream, record too
    /// long, bad record, interrupted write.
    Failure(TlsFailure),
    /// The peer closed the connection with `close_notify`; writes after that fail with this.
    Closed,
    /// The client key is not a P-256 key in SEC1 or PKCS#8 DER.
    InvalidKey,
    /// The server name is empty or longer than the 64 bytes embedded-tls can check.
    InvalidServerName,
    /// [`pem_to_der`]: no complete PEM block, invalid base64, or a block with headers (an
    /// encrypted key).
    InvalidPem,
    /// A buffer is too small: the output of [`pem_to_der`], embedded-tls's buffers during the
    /// handshake, or a server chain larger than [`MAX_SERVER_CHAIN`].
    BufferTooSmall,
    /// The stream was used in a state that does not allow it (e.g. before the handshake).
    InvalidState,
}

impl From<Error> for TlsError {
    fn from(e: Error) -> Self {
        TlsError::Transport(e)
    }
}

impl From<TlsFailure> for TlsError {
    fn from(e: TlsFailure) -> Self {
        TlsError::Failure(e)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Transport(e) => write!(f, "MCU TLS transport: {e}"),
            TlsError::Failure(e) => write!(f, "MCU TLS: {e}"),
            TlsError::Closed => f.write_str("MCU TLS: the peer closed the connection"),
            TlsError::InvalidKey => f.write_str("MCU TLS: the client key is not a P-256 DER key"),
            TlsError::InvalidServerName => {
                f.write_str("MCU TLS: the server name is empty or longer than 64 bytes")
            }
            TlsError::InvalidPem => f.write_str("not a valid PEM block"),
            TlsError::BufferTooSmall => f.write_str("MCU TLS: buffer too small"),
            TlsError::InvalidState => f.write_str("MCU TLS: not in a state that allows this"),
        }
    }
}

impl core::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            TlsError::Transport(e) => Some(e),
            TlsError::Failure(e) => Some(e),
            _ => None,
        }
    }
}

impl embedded_io::Error for TlsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            TlsError::Transport(e) => e.kind(),
            TlsError::Failure(e) => e.kind(),
            TlsError::Closed => ErrorKind::BrokenPipe,
            TlsError::InvalidKey | TlsError::InvalidServerName | TlsError::InvalidPem => {
                ErrorKind::InvalidInput
            }
            TlsError::BufferTooSmall => ErrorKind::OutOfMemory,
            TlsError::InvalidState => ErrorKind::Other,
        }
    }
}

// --- configuration ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum ServerAuth<'a> {
    /// Verify against this CA certificate (X.509 DER).
    Ca(&'a [u8]),
    /// Verify nothing.
    Insecure,
}

/// The client's certificate and private key.
#[derive(Clone, Copy)]
struct ClientIdentity<'a> {
    cert_der: &'a [u8],
    key_der: &'a [u8],
}

/// Configuration of an MCU-side TLS connection. Cheap to copy; borrows the certificates.
///
/// `Debug` shows the server name, the sizes of the certificates and the ALPN protocols, never
/// the private key.
#[derive(Clone, Copy)]
pub struct McuTlsConfig<'a> {
    server_name: &'a str,
    server_auth: ServerAuth<'a>,
    identity: Option<ClientIdentity<'a>>,
    alpn: Option<&'a [&'a [u8]]>,
}

impl<'a> McuTlsConfig<'a> {
    /// Verifies the server against `ca_der` (one X.509 certificate, DER; see [`pem_to_der`])
    /// and `server_name`, which is also sent as SNI.
    pub const fn new(server_name: &'a str, ca_der: &'a [u8]) -> Self {
        Self {
            server_name,
            server_auth: ServerAuth::Ca(ca_der),
            identity: None,
            alpn: None,
        }
    }

    /// **Does not verify the server** (any certificate, any name is accepted; only the
    /// handshake's integrity is checked): for tests, or when the server is authenticated by
    /// other means. `server_name` is still sent as SNI.
    pub const fn insecure_no_verify(server_name: &'a str) -> Self {
        Self {
            server_name,
            server_auth: ServerAuth::Insecure,
            identity: None,
            alpn: None,
        }
    }

    /// Presents a client certificate (X.509 DER) when the server asks for one, signing with
    /// `key_der`: a P-256 private key, SEC1 (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) DER.
    pub const fn with_client_identity(mut self, cert_der: &'a [u8], key_der: &'a [u8]) -> Self {
        self.identity = Some(ClientIdentity { cert_der, key_der });
        self
    }

    /// Offers these ALPN protocols, e.g. `&[b"x-amzn-mqtt-ca"]` for AWS IoT MQTT on port 443.
    pub const fn with_alpn(mut self, protocols: &'a [&'a [u8]]) -> Self {
        self.alpn = Some(protocols);
        self
    }

    /// The server name (SNI and the name verified).
    pub const fn server_name(&self) -> &'a str {
        self.server_name
    }

    /// Whether the server's certificate is verified (false only for
    /// [`insecure_no_verify`](Self::insecure_no_verify)).
    pub const fn verifies_server(&self) -> bool {
        matches!(self.server_auth, ServerAuth::Ca(_))
    }

    /// Whether a client identity is configured.
    pub const fn has_client_identity(&self) -> bool {
        self.identity.is_some()
    }
}

impl fmt::Debug for McuTlsConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Len(usize);
        impl fmt::Debug for Len {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "<{} bytes>", self.0)
            }
        }
        struct Alpn<'a>(&'a [&'a [u8]]);
        impl fmt::Debug for Alpn<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut l = f.debug_list();
                for p in self.0 {
                    match core::str::from_utf8(p) {
                        Ok(s) => l.entry(&s),
                        Err(_) => l.entry(p),
                    };
                }
                l.finish()
            }
        }
        let mut d = f.debug_struct("McuTlsConfig");
        d.field("server_name", &self.server_name);
        match self.server_auth {
            ServerAuth::Ca(ca) => d.field("ca_der", &Len(ca.len())),
            ServerAuth::Insecure => d.field("verify", &"NONE (insecure_no_verify)"),
        };
        match &self.identity {
            Some(id) => d
                .field("client_cert_der", &Len(id.cert_der.len()))
                .field("client_key", &"<redacted>"),
            None => d.field("client_cert_der", &None::<()>),
        };
        if let Some(alpn) = self.alpn {
            d.field("alpn", &Alpn(alpn));
        }
        d.finish()
    }
}

// --- PEM -------------------------------------------------------------------------------------

/// Decodes the first PEM block of `pem` (`-----BEGIN …-----`, base64, `-----END …-----`) into
/// `out` and returns the DER: [`crate::pem::decode`] with the crate's error.
///
/// Errors: [`TlsError::InvalidPem`] if there is no complete PEM block, the base64 is invalid,
/// the block has headers (an encrypted key) or does not hold one DER `SEQUENCE`;
/// [`TlsError::BufferTooSmall`] if `out` is too small (a DER needs at most 3/4 of its base64
/// length). To also check the kind of object (certificate or key), use `quectel::pem::check`
/// first. Runs in time linear in `pem.len()`, allocates nothing.
pub fn pem_to_der<'o>(pem: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], TlsError> {
    crate::pem::decode(pem, None, out).map_err(|e| match e {
        crate::pem::PemError::BufferTooSmall => TlsError::BufferTooSmall,
        _ => TlsError::InvalidPem,
    })
}

// --- keys ------------------------------------------------------------------------------------

/// Reads one DER TLV: (tag, content, rest). Definite lengths up to 3 length bytes.
fn der_tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&l0, d) = d.split_first()?;
    let (len, d) = if l0 < 0x80 {
        (usize::from(l0), d)
    } else {
        let k = usize::from(l0 & 0x7f);
        if k == 0 || k > 3 {
            return None;
        }
        let (len, d) = d.split_at_checked(k)?;
        let len = len.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, d)
    };
    let (content, rest) = d.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The SEC1 `ECPrivateKey` inside a P-256 PKCS#8 `PrivateKeyInfo`.
fn pkcs8_p256_inner(der: &[u8]) -> Option<&[u8]> {
    const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (0x30, info, _) = der_tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = der_tlv(info)? else {
        return None;
    };
    let (0x30, alg, rest) = der_tlv(rest)? else {
        return None;
    };
    let (0x06, oid, params) = der_tlv(alg)? else {
        return None;
    };
    let (0x06, curve, _) = der_tlv(params)? else {
        return None;
    };
    if oid != EC_PUBLIC_KEY || curve != PRIME256V1 {
        return None;
    }
    let (0x04, key, _) = der_tlv(rest)? else {
        return None;
    };
    Some(key)
}

/// Parses a P-256 private key, SEC1 or PKCS#8 DER.
fn signing_key(der: &[u8]) -> Result<SigningKey, TlsError> {
    let sec1 = match p256::SecretKey::from_sec1_der(der) {
        Ok(k) => return Ok(SigningKey::from(&k)),
        Err(_) => pkcs8_p256_inner(der).ok_or(TlsError::InvalidKey)?,
    };
    p256::SecretKey::from_sec1_der(sec1)
        .map(|k| SigningKey::from(&k))
        .map_err(|_| TlsError::InvalidKey)
}

// --- crypto provider -------------------------------------------------------------------------

/// An embedded-tls [`CryptoProvider`]: server verification against one CA
/// (`pki::CertVerifier`, unless the configuration is
/// [`insecure_no_verify`](McuTlsConfig::insecure_no_verify)), a P-256 client identity, and
/// the caller's RNG (any rand_core 0.6 `CryptoRngCore`, e.g. the MCU's hardware RNG).
///
/// [`McuTls::connect`] builds one; build it yourself to add a clock
/// ([`with_clock`](Self::with_clock)) or to use it with embedded-tls directly.
pub struct McuTlsProvider<'a, R, C: TlsClock = NoClock> {
    rng: R,
    verifier: Option<CertVerifier<'a, CipherSuite, C, MAX_SERVER_CHAIN>>,
    identity: Option<(&'a [u8], SigningKey)>,
}

impl<'a, R: CryptoRngCore> McuTlsProvider<'a, R, NoClock> {
    /// A provider for `config` (no clock: certificate dates are not checked). Parses the client
    /// key now: [`TlsError::InvalidKey`] if it is not a P-256 SEC1 or PKCS#8 DER key.
    pub fn new(config: &McuTlsConfig<'a>, rng: R) -> Result<Self, TlsError> {
        Self::with_clock(config, rng, NoClock)
    }
}

impl<'a, R: CryptoRngCore, C: TlsClock> McuTlsProvider<'a, R, C> {
    /// Like [`new`](McuTlsProvider::new), and checks the validity dates of the server's chain
    /// against `C::now()` (seconds since the Unix epoch; `None` skips the check).
    pub fn with_clock(config: &McuTlsConfig<'a>, rng: R, _clock: C) -> Result<Self, TlsError> {
        let identity = match config.identity {
            Some(id) => Some((id.cert_der, signing_key(id.key_der)?)),
            None => None,
        };
        let verifier = match config.server_auth {
            ServerAuth::Ca(ca) => Some(CertVerifier::new(Certificate::X509(ca))),
            ServerAuth::Insecure => None,
        };
        Ok(Self {
            rng,
            verifier,
            identity,
        })
    }
}

/// Signs with a borrowed key (no copy of the secret).
struct KeyRef<'k>(&'k SigningKey);

impl Signer<DerSignature> for KeyRef<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        Signer::<p256::ecdsa::Signature>::try_sign(self.0, msg).map(|s| s.to_der())
    }
}

impl<R: CryptoRngCore, C: TlsClock> CryptoProvider for McuTlsProvider<'_, R, C> {
    type CipherSuite = CipherSuite;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<CipherSuite>, EtlsError> {
        // `Err` makes embedded-tls skip verification: only for `insecure_no_verify`.
        self.verifier.as_mut().ok_or(EtlsError::Unimplemented)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<DerSignature>, SignatureScheme), EtlsError> {
        match &self.identity {
            Some((_, key)) => Ok((KeyRef(key), SignatureScheme::EcdsaSecp256r1Sha256)),
            None => Err(EtlsError::InvalidPrivateKey),
        }
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.identity
            .as_ref()
            .map(|(cert, _)| Certificate::X509(*cert))
    }
}

// --- buffers ---------------------------------------------------------------------------------

/// Caller-owned storage of one MCU-side TLS connection: the record read buffer (`R` bytes),
/// the record write buffer (`W` bytes) and the record aligner's buffer (`R` bytes).
///
/// The defaults (`R` = 16 640, the largest TLS 1.3 record; `W` = 4 096) take 37 376 bytes.
/// `W` bounds the size of the records we send and must exceed embedded-tls's per-record
/// overhead (`TLS_RECORD_OVERHEAD`, 128 bytes); the handshake is encoded in the larger of the
/// two buffers. Reusable across connections.
pub struct TlsBuffers<const R: usize = MAX_RECORD_BODY, const W: usize = 4096> {
    read: [u8; R],
    write: [u8; W],
    align: [u8; R],
    shared: Shared,
}

/// State shared by the stream and its record aligner.
struct Shared {
    /// The last error of the transport or the record layer, in full (embedded-tls keeps only
    /// an `ErrorKind`).
    fault: Cell<Option<TlsError>>,
    /// While set, the aligner's `flush` does not wait for the transport.
    handshaking: Cell<bool>,
}

impl<const R: usize, const W: usize> TlsBuffers<R, W> {
    /// Zeroed buffers (a `const fn`, so they can live in a `static`/`StaticCell`).
    pub const fn new() -> Self {
        Self {
            read: [0; R],
            write: [0; W],
            align: [0; R],
            shared: Shared {
                fault: Cell::new(None),
                handshaking: Cell::new(false),
            },
        }
    }
}

impl<const R: usize, const W: usize> Default for TlsBuffers<R, W> {
    fn default() -> Self {
        Self::new()
    }
}

// --- record aligner --------------------------------------------------------------------------

/// Converts a transport error: a modem socket's [`Error`] is kept as it is, in
/// [`TlsError::Transport`].
fn transport_error<E: embedded_io::Error + 'static>(e: E) -> TlsError {
    use embedded_io::ErrorKind;
    if let Some(e) = (&e as &dyn core::any::Any).downcast_ref::<Error>() {
        return TlsError::Transport(*e);
    }
    match e.kind() {
        ErrorKind::TimedOut => TlsError::Transport(Error::Timeout),
        ErrorKind::BrokenPipe
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotConnected => TlsError::Transport(Error::ConnectionClosed),
        _ => TlsError::Failure(TlsFailure::Io),
    }
}

/// Sits between embedded-tls and the transport. Reads: collects one whole record (header into
/// `header`, body into `body`) from the transport, reading exactly what the record still
/// needs, and serves it only once complete; so the only place a read waits is before
/// embedded-tls has taken any byte of a record, and everything received so far is kept here
/// when a read is dropped. Writes and flushes pass through.
///
/// Every error is also left in `shared.fault` with its full detail (embedded-tls keeps only its
/// `ErrorKind`).
struct Aligned<'b, T: ErrorType> {
    inner: T,
    /// Turns the transport's errors into ours (keeps a modem socket's [`Error`]).
    convert: fn(T::Error) -> TlsError,
    header: [u8; HEADER],
    body: &'b mut [u8],
    /// Bytes of the current record received (header included).
    have: usize,
    /// Bytes of the current record handed to embedded-tls.
    served: usize,
    /// A fatal error of the record layer (sticky).
    broken: Option<TlsError>,
    shared: &'b Shared,
}

impl<'b, T: Read + Write> Aligned<'b, T> {
    fn new(
        inner: T,
        body: &'b mut [u8],
        shared: &'b Shared,
        convert: fn(T::Error) -> TlsError,
    ) -> Self {
        Self {
            inner,
            convert,
            header: [0; HEADER],
            body,
            have: 0,
            served: 0,
            broken: None,
            shared,
        }
    }

    fn body_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]))
    }

    fn fail(&self, e: TlsError) -> TlsError {
        self.shared.fault.set(Some(e));
        e
    }

    /// Waits until the current record is complete. `Ok(false)`: the transport ended before
    /// the first byte of a record.
    async fn fill(&mut self) -> Result<bool, TlsError> {
        loop {
            let n = if self.have < HEADER {
                let rest = self.header.get_mut(self.have..).unwrap_or_default();
                self.inner.read(rest).await
            } else {
                // `have` ≥ HEADER here; `body_len` ≤ `body.len()` was checked with the header
                // (an empty slice would read 0 bytes: a truncated record).
                let got = self.have.saturating_sub(HEADER);
                let len = self.body_len();
                if got == len {
                    return Ok(true);
                }
                let rest = self.body.get_mut(got..len).unwrap_or_default();
                self.inner.read(rest).await
            };
            let n = n.map_err(|e| self.fail((self.convert)(e)))?;
            if n == 0 {
                if self.have == 0 {
                    return Ok(false);
                }
                // Truncated in the middle of a record.
                let e = TlsError::Failure(TlsFailure::PeerClosed);
                self.broken = Some(e);
                return Err(self.fail(e));
            }
            // At most one record: no saturation.
            self.have = self.have.saturating_add(n);
            if self.have == HEADER {
                let len = self.body_len();
                if len > MAX_RECORD_BODY || len > self.body.len() {
                    warn!("TLS record of {} bytes is too long", len);
                    let e = TlsError::Failure(TlsFailure::RecordTooLong);
                    self.broken = Some(e);
                    return Err(self.fail(e));
                }
            }
        }
    }
}

impl<T: ErrorType> ErrorType for Aligned<'_, T> {
    type Error = TlsError;
}

impl<T: Read + Write> Read for Aligned<'_, T> {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize, TlsError> {
        if let Some(e) = self.broken {
            return Err(self.fail(e));
        }
        if out.is_empty() {
            return Ok(0);
        }
        if !self.fill().await? {
            // Clean end of the transport between records (embedded-tls sees an I/O error).
            self.shared
                .fault
                .set(Some(TlsError::Failure(TlsFailure::PeerClosed)));
            return Ok(0);
        }
        let len = self.body_len();
        let total = len.saturating_add(HEADER);
        let mut n = 0usize;
        while n < out.len() && self.served < total {
            let src = if self.served < HEADER {
                self.header.get(self.served..)
            } else {
                self.body.get(self.served.saturating_sub(HEADER)..len)
            };
            let dst = out.get_mut(n..).unwrap_or_default();
            let k = src.map_or(0, |s| s.len()).min(dst.len());
            let (Some(src), Some(dst)) = (src.and_then(|s| s.get(..k)), dst.get_mut(..k)) else {
                break;
            };
            if k == 0 {
                // Not reached (`served < total` leaves bytes to serve): never spin.
                break;
            }
            dst.copy_from_slice(src);
            // `n` ≤ `out.len()`, `served` ≤ `total`.
            n = n.saturating_add(k);
            self.served = self.served.saturating_add(k);
        }
        if self.served == total {
            self.have = 0;
            self.served = 0;
        }
        Ok(n)
    }
}

impl<T: Read + Write> Write for Aligned<'_, T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        let r = self.inner.write(buf).await;
        r.map_err(|e| self.fail((self.convert)(e)))
    }

    async fn flush(&mut self) -> Result<(), TlsError> {
        if self.shared.handshaking.get() {
            return Ok(());
        }
        let r = self.inner.flush().await;
        r.map_err(|e| self.fail((self.convert)(e)))
    }
}

// --- connection ------------------------------------------------------------------------------

/// Maps an embedded-tls error, preferring the detailed error the aligner recorded.
fn map_error(e: EtlsError, fault: &Cell<Option<TlsError>>, handshake: bool) -> TlsError {
    let tls = TlsError::Failure;
    match e {
        EtlsError::Io(_) | EtlsError::IoError => {
            fault.take().unwrap_or(tls(TlsFailure::PeerClosed))
        }
        EtlsError::InvalidCertificate
        | EtlsError::InvalidCertificateEntry
        | EtlsError::InvalidSignature
        | EtlsError::InvalidSignatureScheme => tls(TlsFailure::Certificate),
        EtlsError::HandshakeAborted(..) | EtlsError::AbortHandshake(..) => {
            tls(TlsFailure::Handshake)
        }
        EtlsError::InsufficientSpace | EtlsError::OutOfMemory => TlsError::BufferTooSmall,
        EtlsError::InvalidPrivateKey => TlsError::InvalidKey,
        EtlsError::MissingHandshake => TlsError::InvalidState,
        EtlsError::ConnectionClosed => TlsError::Closed,
        _ if handshake => tls(TlsFailure::Handshake),
        // After the handshake, embedded-tls reports a peer's alert as `InternalError`.
        EtlsError::InternalError => tls(TlsFailure::Alert),
        _ => tls(TlsFailure::Protocol),
    }
}

/// Opens MCU-side TLS connections (see the [module docs](self)).
#[derive(Clone, Copy, Debug)]
pub struct McuTls;

impl McuTls {
    /// Runs the TLS 1.3 handshake over `transport` (usually a plain
    /// [`Remote::Tcp`](crate::asynch::Remote::Tcp) [`Socket`](crate::asynch::Socket)) and
    /// returns the encrypted stream.
    ///
    /// The server is verified as `config` says. A server that refuses our (missing) client
    /// certificate may let this succeed and fail the first read with
    /// [`TlsFailure::Alert`] (TLS 1.3 sends the refusal after our `Finished`).
    /// There is no timeout here: wrap the call in `embassy_time::with_timeout` if needed
    /// (dropping it drops the transport).
    pub async fn connect<'b, T, R, const RB: usize, const WB: usize>(
        transport: T,
        buffers: &'b mut TlsBuffers<RB, WB>,
        config: &McuTlsConfig<'_>,
        rng: R,
    ) -> Result<TlsStream<'b, T>, TlsError>
    where
        T: Read + Write + 'b,
        T::Error: 'static,
        R: CryptoRngCore,
    {
        // Certificate dates against the network's time once it is known (no check before).
        let provider = McuTlsProvider::with_clock(config, rng, NetworkClock)?;
        Self::connect_with(transport, buffers, config, provider).await
    }

    /// Like [`connect`](Self::connect) with your own [`CryptoProvider`]: a
    /// [`McuTlsProvider`] with a clock, or a provider whose signer is a secure element. The
    /// provider decides what is verified; `config` gives the server name (SNI) and ALPN.
    pub async fn connect_with<'b, T, P, const RB: usize, const WB: usize>(
        transport: T,
        buffers: &'b mut TlsBuffers<RB, WB>,
        config: &McuTlsConfig<'_>,
        mut provider: P,
    ) -> Result<TlsStream<'b, T>, TlsError>
    where
        T: Read + Write + 'b,
        T::Error: 'static,
        P: CryptoProvider<CipherSuite = CipherSuite>,
    {
        let name = config.server_name;
        if name.is_empty() || name.len() > MAX_SERVER_NAME {
            return Err(TlsError::InvalidServerName);
        }
        let TlsBuffers {
            read,
            write,
            align,
            shared,
        } = buffers;
        let shared: &'b Shared = shared;
        let fault = &shared.fault;
        fault.set(None);
        let mut conn = TlsConnection::new(
            Aligned::new(
                transport,
                &mut align[..],
                shared,
                transport_error::<T::Error>,
            ),
            &mut read[..],
            &mut write[..],
        );
        let mut tls_config = embedded_tls::TlsConfig::new().with_server_name(name);
        if let Some(alpn) = config.alpn {
            tls_config = tls_config.with_alpn(alpn);
        }
        // During the handshake, hand our flights to the transport without waiting for it to
        // flush (embedded-tls flushes after each): a server that refuses our client
        // certificate closes as soon as it has read our `Certificate`, and waiting for that
        // flush would report the close instead of the server's alert (which the first read
        // then returns).
        shared.handshaking.set(true);
        let opened = conn.open(TlsContext::new(&tls_config, &mut provider)).await;
        shared.handshaking.set(false);
        match opened {
            Ok(()) => {
                debug!("MCU TLS handshake done");
                Ok(TlsStream {
                    conn,
                    fault,
                    failed: None,
                    eof: false,
                    writing: false,
                })
            }
            Err(e) => {
                let e = map_error(e, fault, true);
                warn!("MCU TLS handshake failed");
                Err(e)
            }
        }
    }
}

/// An open MCU-side TLS connection over the transport `T`. Implements
/// `embedded_io_async::{Read, Write}` with [`TlsError`].
///
/// * `read` is **cancel-safe** (if `T`'s is): drop it at any point, nothing is lost.
///   `Ok(0)` means the server closed the connection with `close_notify`.
/// * `write` buffers plaintext into a record and sends the record when it is full; `flush`
///   sends the current record and waits until the transport has taken it. Neither is
///   cancel-safe: after one was dropped while it waited, writes fail with
///   [`TlsFailure::Interrupted`].
/// * Every error is final (returned again by later calls).
pub struct TlsStream<'b, T: Read + Write + 'b> {
    conn: TlsConnection<'b, Aligned<'b, T>, CipherSuite>,
    fault: &'b Cell<Option<TlsError>>,
    failed: Option<TlsError>,
    eof: bool,
    writing: bool,
}

impl<'b, T: Read + Write + 'b> TlsStream<'b, T> {
    fn fail(&mut self, e: EtlsError) -> TlsError {
        let e = map_error(e, self.fault, false);
        self.failed = Some(e);
        e
    }

    /// Reads decrypted bytes; waits for a record. `Ok(0)`: the server sent `close_notify`.
    /// Cancel-safe.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.eof || buf.is_empty() {
            return Ok(0);
        }
        match self.conn.read(buf).await {
            Ok(n) => Ok(n),
            Err(EtlsError::ConnectionClosed) => {
                self.eof = true;
                Ok(0)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn check_write(&mut self) -> Result<(), TlsError> {
        if self.writing {
            self.failed = Some(TlsError::Failure(TlsFailure::Interrupted));
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.eof {
            return Err(TlsError::Closed);
        }
        Ok(())
    }

    /// Buffers `buf` into the current record (sending it when full); returns how many bytes
    /// were taken. Call [`flush`](Self::flush) to send a partial record.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        self.check_write()?;
        self.writing = true;
        let r = self.conn.write(buf).await;
        self.writing = false;
        match r {
            Ok(n) => Ok(n),
            Err(e) => Err(self.write_failed(e).await),
        }
    }

    /// Sends the current record and waits until the transport has taken it (for a modem
    /// socket: until the modem accepted every byte).
    pub async fn flush(&mut self) -> Result<(), TlsError> {
        self.check_write()?;
        self.writing = true;
        let r = self.conn.flush().await;
        self.writing = false;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_failed(e).await),
        }
    }

    /// A write failed. If the peer closed the connection, it may have said why first (in
    /// TLS 1.3 a server refuses our client certificate after our `Finished`, with an alert,
    /// then closes): read what it sent, briefly, and report the alert rather than the close.
    async fn write_failed(&mut self, e: EtlsError) -> TlsError {
        let mut err = self.fail(e);
        let closed = matches!(
            err,
            TlsError::Closed | TlsError::Transport(Error::ConnectionClosed)
        );
        if closed && !self.eof {
            let mut scratch = [0u8; 1];
            let why = with_timeout(ALERT_GRACE, self.conn.read(&mut scratch)).await;
            if let Ok(Err(EtlsError::InternalError)) = why {
                err = TlsError::Failure(TlsFailure::Alert);
                self.failed = Some(err);
            }
        }
        err
    }

    /// Sends what is buffered and a `close_notify`, and gives the transport back (close it
    /// too, e.g. [`Socket::close`](crate::asynch::Socket::close)). On error the transport is
    /// dropped (a dropped modem socket is closed by the runner).
    pub async fn close(self) -> Result<T, TlsError> {
        let fault = self.fault;
        match self.conn.close().await {
            Ok(aligned) => Ok(aligned.inner),
            Err((_, e)) => Err(map_error(e, fault, false)),
        }
    }
}

impl<'b, T: Read + Write + 'b> fmt::Debug for TlsStream<'b, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("failed", &self.failed)
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<'b, T: Read + Write + 'b> ErrorType for TlsStream<'b, T> {
    type Error = TlsError;
}

impl<'b, T: Read + Write + 'b> Read for TlsStream<'b, T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        TlsStream::read(self, buf).await
    }
}

impl<'b, T: Read + Write + 'b> Write for TlsStream<'b, T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, TlsError> {
        TlsStream::write(self, buf).await
    }

    async fn flush(&mut self) -> Result<(), TlsError> {
        TlsStream::flush(self).await
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn pem_to_der_reports_pem_errors() {
        // DER 30 03 02 01 05 (SEQUENCE { INTEGER 5 }).
        let pem = b"junk\n-----BEGIN TEST-----\nMAMC\r\nAQU=\n-----END TEST-----\n";
        let mut out = [0u8; 8];
        assert_eq!(pem_to_der(pem, &mut out).unwrap(), &[0x30, 3, 2, 1, 5]);
        let mut small = [0u8; 4];
        assert_eq!(pem_to_der(pem, &mut small), Err(TlsError::BufferTooSmall));
        for bad in [
            &b"-----BEGIN X-----\nAA*C\n-----END X-----"[..],
            b"-----BEGIN X-----\nA\n-----END X-----",
            b"-----BEGIN X-----\nAA==AA\n-----END X-----",
            b"-----BEGIN X-----\n\n-----END X-----",
            b"-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END X-----",
            b"-----BEGIN X-----\nAAAA\n",
            b"no pem here",
        ] {
            assert_eq!(pem_to_der(bad, &mut out), Err(TlsError::InvalidPem));
        }
    }

    #[test]
    fn pkcs8_is_unwrapped() {
        // 30 len { 02 01 00, 30 13 { 06 07 ecPublicKey, 06 08 prime256v1 }, 04 len <sec1> }
        let sec1 = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut v = vec![0x30, 0x00, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07];
        v.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08]);
        v.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x05]);
        v.extend_from_slice(&sec1);
        v[1] = (v.len() - 2) as u8;
        assert_eq!(pkcs8_p256_inner(&v), Some(&sec1[..]));
        assert_eq!(signing_key(&v).err(), Some(TlsError::InvalidKey));
        assert_eq!(pkcs8_p256_inner(&v[..10]), None);
    }

    use crate::test_util::{Trickle, poll_once};

    fn shared() -> Shared {
        Shared {
            fault: Cell::new(None),
            handshaking: Cell::new(false),
        }
    }

    fn record(len: usize, fill: u8) -> std::vec::Vec<u8> {
        let mut r = vec![23, 3, 3, (len >> 8) as u8, len as u8];
        r.extend((0..len).map(|i| fill ^ i as u8));
        r
    }

    #[test]
    fn aligner_serves_whole_records_and_survives_dropped_reads() {
        let records = [
            record(0, 1),
            record(300, 2),
            record(1000, 3),
            record(16_640, 4),
        ];
        let stream: std::vec::Vec<u8> = records.concat();
        let ends: std::vec::Vec<usize> = records
            .iter()
            .scan(0, |end, r| {
                *end += r.len();
                Some(*end)
            })
            .collect();
        let sh = shared();
        let mut body = vec![0u8; MAX_RECORD_BODY];
        let transport = Trickle::new(stream.clone(), 7);
        let mut a = Aligned::new(transport, &mut body, &sh, TlsError::Transport);
        let mut out = std::vec::Vec::new();
        let mut dropped = 0;
        // Every read is polled once and dropped if pending (a timeout at the worst moment).
        while out.len() < stream.len() {
            let mut buf = [0u8; 5];
            match poll_once(a.read(&mut buf)) {
                Some(Ok(n)) => {
                    assert!(n > 0);
                    // Bytes of a record are served only once the whole record has arrived.
                    let record_end = ends.iter().find(|&&e| e > out.len()).copied().unwrap();
                    assert!(
                        a.inner.pos >= record_end,
                        "served before the record was whole"
                    );
                    out.extend_from_slice(&buf[..n]);
                }
                Some(Err(e)) => panic!("{e:?}"),
                None => dropped += 1,
            }
        }
        assert!(out == stream);
        assert!(dropped > 1000, "{dropped}");
        // The transport ends at a record boundary: end of stream.
        assert_eq!(embassy_futures::block_on(a.read(&mut [0u8; 5])), Ok(0));
        assert_eq!(
            sh.fault.get(),
            Some(TlsError::Failure(TlsFailure::PeerClosed))
        );
    }

    #[test]
    fn aligner_rejects_long_and_truncated_records() {
        let sh = shared();
        let mut body = vec![0u8; 1000];
        let long = Trickle::new(record(1001, 0), 100);
        let mut a = Aligned::new(long, &mut body, &sh, TlsError::Transport);
        let too_long = Err(TlsError::Failure(TlsFailure::RecordTooLong));
        assert_eq!(embassy_futures::block_on(a.read(&mut [0u8; 5])), too_long);
        assert_eq!(embassy_futures::block_on(a.read(&mut [0u8; 5])), too_long);

        let mut body = vec![0u8; MAX_RECORD_BODY + 100];
        let mut over_tls_limit = record(MAX_RECORD_BODY + 1, 0);
        over_tls_limit.truncate(5);
        let t = Trickle::new(over_tls_limit, 5);
        let mut a = Aligned::new(t, &mut body, &sh, TlsError::Transport);
        assert_eq!(embassy_futures::block_on(a.read(&mut [0u8; 5])), too_long);

        let mut body = vec![0u8; 1000];
        let mut cut = record(500, 0);
        cut.truncate(300);
        let t = Trickle::new(cut, 64);
        let mut a = Aligned::new(t, &mut body, &sh, TlsError::Transport);
        assert_eq!(
            embassy_futures::block_on(a.read(&mut [0u8; 5])),
            Err(TlsError::Failure(TlsFailure::PeerClosed))
        );
    }

    #[test]
    fn an_unusable_server_name_is_refused_before_any_io() {
        let mut buffers: std::boxed::Box<TlsBuffers> = std::boxed::Box::default();
        let long = "a".repeat(MAX_SERVER_NAME + 1);
        for name in ["", long.as_str()] {
            let transport = Trickle::new(vec![], 1);
            let config = McuTlsConfig::insecure_no_verify(name);
            let r = embassy_futures::block_on(McuTls::connect(
                transport,
                &mut buffers,
                &config,
                rand_core::OsRng,
            ));
            assert_eq!(r.err(), Some(TlsError::InvalidServerName), "{name:?}");
        }
    }

    #[test]
    fn the_transport_error_is_kept_and_its_kind_shows_through() {
        use embedded_io::Error as _;
        let e = TlsError::from(Error::ContextDeactivated);
        assert_eq!(e, TlsError::Transport(Error::ContextDeactivated));
        assert_eq!(e.kind(), embedded_io::ErrorKind::ConnectionAborted);
        assert_eq!(
            TlsError::Failure(TlsFailure::Certificate).kind(),
            embedded_io::ErrorKind::ConnectionRefused
        );
        let source = core::error::Error::source(&e).map(std::string::ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("PDP context deactivated by the network")
        );
    }

    /// RAM figures quoted in the module docs (host, 64-bit; guards against regressions).
    #[test]
    fn sizes() {
        let t = || Trickle::new(vec![], 1);
        let config = McuTlsConfig::new("localhost", &[]);
        let mut bufs: TlsBuffers = TlsBuffers::new();
        let fut = McuTls::connect(t(), &mut bufs, &config, rand_core::OsRng);
        let connect = core::mem::size_of_val(&fut);
        drop(fut);
        let buffers = core::mem::size_of::<TlsBuffers>();
        let stream = core::mem::size_of::<TlsStream<'static, Trickle>>();
        std::eprintln!("TlsBuffers {buffers} B, connect future {connect} B, TlsStream {stream} B");
        // 37 376 B alone; 37 408 B when the `aws`/`aliyun` features unify extra features into the
        // shared RustCrypto dependencies (checked with both).
        assert!((37_376..37_440).contains(&buffers), "{buffers}");
        assert!(connect < 13 * 1024, "{connect}");
        assert!(stream < 2 * 1024, "{stream}");
    }
}
