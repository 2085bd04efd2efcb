//! Aliyun (Alibaba Cloud) IoT Platform: MQTT credentials, endpoints, topics, and dynamic
//! registration (feature `aliyun`).
//!
//! A device is known by its *triple* ProductKey / DeviceName / DeviceSecret. Two ways to get it
//! onto the device:
//!
//! - **一机一密** (one device, one secret): every unit is flashed with its own DeviceSecret.
//!   [`MqttCredentials::builder`] signs the MQTT password from it (hmacmd5, hmacsha1 or
//!   hmacsha256, uppercase hex like Aliyun's C SDKs) and produces the client id
//!   `{clientId}|securemode=2,signmethod=hmacsha256|` and the user name `{dn}&{pk}`.
//! - **一型一密** (one product, one secret): every unit carries only the ProductKey and the
//!   ProductSecret and asks the platform for its own credentials on first boot, over MQTT with
//!   TLS ([`register`], [`provision`]): `authType=register` returns the DeviceSecret,
//!   `authType=regnwl` returns a client id and a device token (then [`MqttCredentials::connwl`]).
//!   Aliyun hands a DeviceSecret out **once**: a device that loses it is locked out until it is
//!   reset in the console. [`ensure_credentials`] therefore loads from the application's
//!   [`CredentialStore`] first and saves what a registration returns before anything else.
//!
//! Once connected, [`Thing`] (module [`thing`]) speaks the Alink thing model and RRPC: property
//! and event posts with their replies matched by id, property sets and service calls answered,
//! RRPC responses within the platform's 8 s deadline, broadcast and custom topics sorted.
//!
//! With the feature `ota`, module `ota` adds firmware updates: the OTA topics (version,
//! upgrade, progress) and the HTTPS range download into embassy-boot's update partition.
//!
//! Limits that shape the API:
//!
//! - Aliyun accepts MQTT 5 only on **Enterprise Edition instances**; public instances speak
//!   MQTT 3.1.1. [`MqttCredentials::mqtt_config`] therefore selects
//!   [`Version::V311`](crate::mqtt::Version) (the crate's own 3.1.1 client); set
//!   `config.version = Version::V5` for an Enterprise instance that offers MQTT 5. The
//!   application code is the same for both.
//! - Client ids (extension parameters included) hold up to [`MQTT_CLIENT_ID_MAX`] bytes here;
//!   MQTT 5 (minimq) takes at most 64 of them
//!   ([`MAX_CLIENT_ID_LEN`](crate::mqtt::MAX_CLIENT_ID_LEN)), 3.1.1 all of them. A client id
//!   that does not fit is [`CloudError::RequestTooLarge`] (or `MqttError::ClientIdTooLong`),
//!   never truncated.
//! - Public instances speak TLS 1.2 at most. TLS on the MCU (embedded-tls) speaks only 1.3:
//!   `securemode=2` goes through the modem's TLS ([`Transport::ModemTls`](crate::mqtt::Transport));
//!   [`MqttCredentials::mqtt_config`] refuses plain TCP under TLS credentials with
//!   [`CloudError::TlsVersion`].
//!
//! ```rust
//! use quectel::cloud::aliyun::{Device, MqttCredentials, SignMethod};
//!
//! let device = Device::new("a1X2bEnP82z", "example1")?;
//! let creds = MqttCredentials::builder(device, "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe")
//!     .client_id("sn-0001")
//!     .sign_method(SignMethod::HmacSha256)
//!     .build()?;
//! assert_eq!(creds.client_id(), "sn-0001|securemode=2,signmethod=hmacsha256|");
//! assert_eq!(creds.username(), "example1&a1X2bEnP82z");
//! let topic = device.user_topic("update")?;
//! assert_eq!(topic.as_str(), "/a1X2bEnP82z/example1/user/update");
//! # Ok::<(), quectel::cloud::CloudError>(())
//! ```

use core::fmt::{self, Write as _};

use hmac::{Hmac, Mac};

use super::CloudError;

#[cfg(feature = "ota")]
pub mod ota;
mod register;
pub mod thing;

pub use register::{
    CredentialStore, DeviceCredentials, ENCODED_MAX, Provisioned, RamStore, Random, Registration,
    RegistrationKind, RegistrationLink, ensure_credentials, provision, register,
};
pub use thing::{
    CODE_OK, Inbound, Message, PostKind, PostReply, RRPC_DEADLINE, ReplyTarget, ReplyTo, Request,
    RrpcRequest, RrpcTicket, Thing, ThingError,
};

/// Longest MQTT client id [`Mqtt`](crate::mqtt::Mqtt) (minimq) accepts, in bytes, including
/// Aliyun's `|…|` extension parameters.
pub const MQTT_CLIENT_ID_MAX: usize = 160;
/// Capacity of an MQTT user name (`{deviceName}&{productKey}`).
pub const USERNAME_MAX: usize = 128;
/// Capacity of an MQTT password: a signature (at most 64 hex digits) or a device token.
pub const PASSWORD_MAX: usize = 128;
/// Capacity of a DeviceSecret or ProductSecret.
pub const SECRET_MAX: usize = 64;
/// Capacity of a device token (`regnwl`).
pub const TOKEN_MAX: usize = 128;
/// Capacity of the topics built here.
pub const TOPIC_MAX: usize = 128;
/// Capacity of an endpoint host name.
pub const HOST_MAX: usize = 128;

/// MQTT port of the Aliyun endpoints, for TLS (`securemode=2`) and plain TCP (`securemode=3`).
/// (Aliyun's v3 C SDK connects to 443 when built with TLS; both ports are served.)
pub const PORT: u16 = 1883;

/// Topic on which the platform answers `authType=register`.
pub const REGISTER_TOPIC: &str = "/ext/register";
/// Topic on which the platform answers `authType=regnwl`.
pub const REGNWL_TOPIC: &str = "/ext/regnwl";

/// A topic built by the [`Device`] helpers.
pub type Topic = heapless::String<TOPIC_MAX>;
/// An endpoint host name.
pub type Host = heapless::String<HOST_MAX>;

/// The HMAC of a signature (`signmethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SignMethod {
    /// HMAC-MD5 (`hmacmd5`, the platform's default when `signmethod` is absent).
    HmacMd5,
    /// HMAC-SHA1 (`hmacsha1`).
    HmacSha1,
    /// HMAC-SHA256 (`hmacsha256`, what Aliyun's SDKs use). The default here.
    #[default]
    HmacSha256,
}

impl SignMethod {
    /// The name used in client ids: `hmacmd5`, `hmacsha1`, `hmacsha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::HmacMd5 => "hmacmd5",
            SignMethod::HmacSha1 => "hmacsha1",
            SignMethod::HmacSha256 => "hmacsha256",
        }
    }
}

/// `securemode` of a one-device-one-secret connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecureMode {
    /// `securemode=2`: TLS (the modem's TLS, [`Transport::ModemTls`](crate::mqtt::Transport),
    /// or TLS on the MCU). The default.
    #[default]
    Tls,
    /// `securemode=3`: plain TCP. Anyone on the path reads the traffic.
    Tcp,
}

impl SecureMode {
    /// The number in the client id (2 or 3).
    pub fn value(self) -> u8 {
        match self {
            SecureMode::Tls => 2,
            SecureMode::Tcp => 3,
        }
    }
}

/// A secret string (DeviceSecret, device token) of at most `N` bytes. `Debug` and `defmt` show
/// `***`; [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<const N: usize>(heapless::String<N>);

impl<const N: usize> Secret<N> {
    /// Checks `value` (1 to `N` printable ASCII characters, no space) and keeps it.
    pub fn new(value: &str) -> Result<Self, CloudError> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CloudError::InvalidInput);
        }
        heapless::String::try_from(value)
            .map(Secret)
            .map_err(|_| CloudError::InvalidInput)
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for Secret<N> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Secret(***)")
    }
}

/// An HMAC as uppercase hex (32, 40 or 64 digits), e.g. an MQTT password. `Debug` and `defmt`
/// show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(heapless::String<64>);

impl Signature {
    /// The hex digits. This is a password: do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(***)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Signature {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Signature(***)")
    }
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    pairs: &[(&str, &str)],
) -> Result<Signature, CloudError> {
    let mut mac = <M as Mac>::new_from_slice(key).map_err(|_| CloudError::InvalidInput)?;
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    let digest = mac.finalize().into_bytes();
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = heapless::String::new();
    for b in digest.iter() {
        for nibble in [b >> 4, b & 0x0f] {
            // `nibble` ≤ 15.
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ))
            .map_err(|_| CloudError::RequestTooLarge)?;
        }
    }
    Ok(Signature(out))
}

/// Signs `pairs` the Aliyun way: HMAC(`key`, `name1value1name2value2…`) as uppercase hex. The
/// caller passes the pairs sorted by name and leaves out the absent ones.
pub fn sign(
    method: SignMethod,
    key: &[u8],
    pairs: &[(&str, &str)],
) -> Result<Signature, CloudError> {
    match method {
        SignMethod::HmacMd5 => hmac_hex::<Hmac<md5::Md5>>(key, pairs),
        SignMethod::HmacSha1 => hmac_hex::<Hmac<sha1::Sha1>>(key, pairs),
        SignMethod::HmacSha256 => hmac_hex::<Hmac<sha2::Sha256>>(key, pairs),
    }
}

/// The one-device-one-secret MQTT password: HMAC(DeviceSecret, `clientId…deviceName…
/// productKey…timestamp…`), `clientId` and `timestamp` left out when `None`.
pub fn sign_device(
    method: SignMethod,
    device_secret: &str,
    client_id: Option<&str>,
    device: &Device<'_>,
    timestamp: Option<&str>,
) -> Result<Signature, CloudError> {
    let mut pairs: [(&str, &str); 4] = [("", ""); 4];
    let given = [
        ("clientId", client_id),
        ("deviceName", Some(device.device_name)),
        ("productKey", Some(device.product_key)),
        ("timestamp", timestamp),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)));
    let n = pairs
        .iter_mut()
        .zip(given)
        .map(|(slot, pair)| *slot = pair)
        .count();
    sign(
        method,
        device_secret.as_bytes(),
        pairs.get(..n).unwrap_or_default(),
    )
}

/// The dynamic-registration sign: HMAC(ProductSecret, `deviceName…productKey…random…`).
pub fn sign_registration(
    method: SignMethod,
    product_secret: &str,
    device: &Device<'_>,
    random: &str,
) -> Result<Signature, CloudError> {
    sign(
        method,
        product_secret.as_bytes(),
        &[
            ("deviceName", device.device_name),
            ("productKey", device.product_key),
            ("random", random),
        ],
    )
}

fn check(value: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<(), CloudError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(allowed) {
        return Err(CloudError::InvalidInput);
    }
    Ok(())
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// DeviceName characters (Aliyun: letters, digits and `-_@.:`).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'@' | b'.' | b':')
}

/// Checks a client id chosen by the application (no `|`, `,`, `=`, `&`, spaces).
pub(crate) fn check_client_id(id: &str) -> Result<(), CloudError> {
    check(id, MQTT_CLIENT_ID_MAX, is_name_char)
}

/// A device's ProductKey and DeviceName; builds its topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Device<'a> {
    product_key: &'a str,
    device_name: &'a str,
}

impl<'a> Device<'a> {
    /// Checks the ProductKey (1–32 letters, digits, `-`, `_`) and the DeviceName (1–64
    /// letters, digits, `-_@.:`).
    pub fn new(product_key: &'a str, device_name: &'a str) -> Result<Self, CloudError> {
        check(product_key, 32, is_key_char)?;
        check(device_name, 64, is_name_char)?;
        Ok(Self {
            product_key,
            device_name,
        })
    }

    /// The ProductKey.
    pub fn product_key(&self) -> &'a str {
        self.product_key
    }

    /// The DeviceName.
    pub fn device_name(&self) -> &'a str {
        self.device_name
    }

    /// The MQTT user name `{deviceName}&{productKey}`.
    pub fn username(&self) -> Result<heapless::String<USERNAME_MAX>, CloudError> {
        let mut s = heapless::String::new();
        write!(s, "{}&{}", self.device_name, self.product_key)
            .map_err(|_| CloudError::RequestTooLarge)?;
        Ok(s)
    }

    fn topic(&self, args: fmt::Arguments<'_>) -> Result<Topic, CloudError> {
        let mut t = Topic::new();
        t.write_fmt(args).map_err(|_| CloudError::RequestTooLarge)?;
        Ok(t)
    }

    /// A custom topic `/{pk}/{dn}/user/{name}` (e.g. `update`, `get`, or a filter such as
    /// `#`). `name` must not be empty nor hold spaces or control characters.
    pub fn user_topic(&self, name: &str) -> Result<Topic, CloudError> {
        check(name, TOPIC_MAX, |b| b.is_ascii_graphic())?;
        self.topic(format_args!(
            "/{}/{}/user/{name}",
            self.product_key, self.device_name
        ))
    }

    /// A system topic `/sys/{pk}/{dn}/{suffix}` (e.g. `thing/event/property/post`).
    pub fn sys_topic(&self, suffix: &str) -> Result<Topic, CloudError> {
        check(suffix, TOPIC_MAX, |b| b.is_ascii_graphic())?;
        self.topic(format_args!(
            "/sys/{}/{}/{suffix}",
            self.product_key, self.device_name
        ))
    }

    /// Thing model property report: `/sys/{pk}/{dn}/thing/event/property/post`.
    pub fn property_post(&self) -> Result<Topic, CloudError> {
        self.sys_topic("thing/event/property/post")
    }

    /// The platform's answer to a property report: `…/thing/event/property/post_reply`.
    pub fn property_post_reply(&self) -> Result<Topic, CloudError> {
        self.sys_topic("thing/event/property/post_reply")
    }

    /// Properties set by the cloud (downlink): `/sys/{pk}/{dn}/thing/service/property/set`.
    pub fn property_set(&self) -> Result<Topic, CloudError> {
        self.sys_topic("thing/service/property/set")
    }

    /// The device's answer to a property set: `…/thing/service/property/set_reply`.
    pub fn property_set_reply(&self) -> Result<Topic, CloudError> {
        self.sys_topic("thing/service/property/set_reply")
    }

    /// An event report: `/sys/{pk}/{dn}/thing/event/{identifier}/post`.
    pub fn event_post(&self, identifier: &str) -> Result<Topic, CloudError> {
        check(identifier, 64, is_key_char)?;
        self.topic(format_args!(
            "/sys/{}/{}/thing/event/{identifier}/post",
            self.product_key, self.device_name
        ))
    }

    /// The platform's answer to an event report: `…/thing/event/{identifier}/post_reply`.
    pub fn event_post_reply(&self, identifier: &str) -> Result<Topic, CloudError> {
        check(identifier, 64, is_key_char)?;
        self.topic(format_args!(
            "/sys/{}/{}/thing/event/{identifier}/post_reply",
            self.product_key, self.device_name
        ))
    }

    /// A service call from the cloud: `/sys/{pk}/{dn}/thing/service/{identifier}`.
    pub fn service(&self, identifier: &str) -> Result<Topic, CloudError> {
        check(identifier, 64, is_key_char)?;
        self.topic(format_args!(
            "/sys/{}/{}/thing/service/{identifier}",
            self.product_key, self.device_name
        ))
    }

    /// The device's answer to a service call: `…/thing/service/{identifier}_reply`.
    pub fn service_reply(&self, identifier: &str) -> Result<Topic, CloudError> {
        check(identifier, 64, is_key_char)?;
        self.topic(format_args!(
            "/sys/{}/{}/thing/service/{identifier}_reply",
            self.product_key, self.device_name
        ))
    }
}

/// The endpoint of an old public instance: `{productKey}.iot-as-mqtt.{region}.aliyuncs.com`
/// (e.g. region `cn-shanghai`), port [`PORT`].
pub fn public_endpoint(product_key: &str, region: &str) -> Result<Host, CloudError> {
    check(product_key, 32, is_key_char)?;
    check(region, 32, |b| b.is_ascii_alphanumeric() || b == b'-')?;
    let mut h = Host::new();
    write!(h, "{product_key}.iot-as-mqtt.{region}.aliyuncs.com")
        .map_err(|_| CloudError::RequestTooLarge)?;
    Ok(h)
}

/// The endpoint of a new public or Enterprise Edition instance, in the form Aliyun's samples
/// show: `{instanceId}.mqtt.iothub.aliyuncs.com`, port [`PORT`]. The console's "instance
/// endpoint" page is authoritative: use what it shows if it differs.
pub fn instance_endpoint(instance_id: &str) -> Result<Host, CloudError> {
    check(instance_id, 64, is_key_char)?;
    let mut h = Host::new();
    write!(h, "{instance_id}.mqtt.iothub.aliyuncs.com").map_err(|_| CloudError::RequestTooLarge)?;
    Ok(h)
}

/// MQTT client id, user name and password for [`MqttConfig`](crate::mqtt::MqttConfig).
/// `Debug` and `defmt` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttCredentials {
    client_id: heapless::String<MQTT_CLIENT_ID_MAX>,
    username: heapless::String<USERNAME_MAX>,
    password: Secret<PASSWORD_MAX>,
    /// Whether the client id promises TLS (`securemode=2` or `-2`).
    tls: bool,
}

impl fmt::Debug for MqttCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttCredentials")
            .field("client_id", &self.client_id.as_str())
            .field("username", &self.username.as_str())
            .field("password", &"***")
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for MqttCredentials {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "MqttCredentials {{ client_id: {=str}, username: {=str}, password: *** }}",
            self.client_id.as_str(),
            self.username.as_str()
        )
    }
}

impl MqttCredentials {
    /// One device, one secret: starts a builder for `device` with its DeviceSecret.
    pub fn builder<'a>(device: Device<'a>, device_secret: &'a str) -> MqttCredentialsBuilder<'a> {
        MqttCredentialsBuilder {
            device,
            device_secret,
            client_id: None,
            sign_method: SignMethod::default(),
            secure_mode: SecureMode::default(),
            timestamp: None,
        }
    }

    /// After a `regnwl` registration: client id `{clientId}|securemode=-2,authType=connwl|`,
    /// user name `{dn}&{pk}`, password = the device token. [`CloudError::RequestTooLarge`] if
    /// the client id does not fit [`MQTT_CLIENT_ID_MAX`].
    pub fn connwl(
        device: Device<'_>,
        client_id: &str,
        device_token: &str,
    ) -> Result<Self, CloudError> {
        check(client_id, MQTT_CLIENT_ID_MAX, |b| {
            b.is_ascii_graphic() && b != b'|' && b != b','
        })?;
        let mut id = heapless::String::new();
        write!(id, "{client_id}|securemode=-2,authType=connwl|")
            .map_err(|_| CloudError::RequestTooLarge)?;
        Ok(Self {
            client_id: id,
            username: device.username()?,
            password: Secret::new(device_token)?,
            tls: true,
        })
    }

    /// The MQTT client id (with the `|…|` parameters).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The MQTT user name `{dn}&{pk}`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The MQTT password. Do not log it.
    pub fn password(&self) -> &[u8] {
        self.password.expose().as_bytes()
    }

    /// An [`MqttConfig`](crate::mqtt::MqttConfig) with these credentials and Aliyun-friendly
    /// settings: MQTT 3.1.1 (what public instances speak; set `version` to
    /// [`Version::V5`](crate::mqtt::Version) for an Enterprise instance offering MQTT 5),
    /// keep-alive 60 s (Aliyun wants 30–1200 s), clean session (session expiry 0; Aliyun keeps
    /// a 3.1.1 session with `cleanSession=0` too: set `session_expiry_s` above 0 for that),
    /// no will (Aliyun supports none on 3.1.1).
    ///
    /// [`CloudError::TlsVersion`] for TLS credentials (`securemode=2`) over
    /// [`Transport::Tcp`](crate::mqtt::Transport): that would mean TLS on the MCU, which speaks
    /// only TLS 1.3, and Aliyun public instances speak at most TLS 1.2. Use
    /// `Transport::ModemTls`, or credentials built with [`SecureMode::Tcp`].
    pub fn mqtt_config<'c>(
        &'c self,
        host: &'c str,
        port: u16,
        transport: crate::mqtt::Transport<'c>,
        apn: crate::asynch::Apn<'c>,
    ) -> Result<crate::mqtt::MqttConfig<'c>, CloudError> {
        if self.tls && matches!(transport, crate::mqtt::Transport::Tcp) {
            return Err(CloudError::TlsVersion);
        }
        let mut config = crate::mqtt::MqttConfig::new(host, port, self.client_id(), transport, apn);
        config.version = crate::mqtt::Version::V311;
        config.keepalive_s = 60;
        config.session_expiry_s = 0;
        config.auth = Some((self.username(), self.password()));
        Ok(config)
    }
}

/// Builds one-device-one-secret [`MqttCredentials`] (see [`MqttCredentials::builder`]).
#[derive(Clone, Copy)]
pub struct MqttCredentialsBuilder<'a> {
    device: Device<'a>,
    device_secret: &'a str,
    client_id: Option<&'a str>,
    sign_method: SignMethod,
    secure_mode: SecureMode,
    timestamp: Option<&'a str>,
}

impl fmt::Debug for MqttCredentialsBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttCredentialsBuilder")
            .field("device", &self.device)
            .field("device_secret", &"***")
            .field("client_id", &self.client_id)
            .field("sign_method", &self.sign_method)
            .field("secure_mode", &self.secure_mode)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl<'a> MqttCredentialsBuilder<'a> {
    /// The client id before the `|…|` parameters (Aliyun: up to 64 characters, e.g. the serial
    /// number or MAC; here letters, digits and `-_@.:`). Default `{productKey}.{deviceName}`,
    /// like Aliyun's SDK — often too long for minimq's 64 bytes once the parameters are added.
    pub fn client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    /// The HMAC (default [`SignMethod::HmacSha256`]).
    pub fn sign_method(mut self, method: SignMethod) -> Self {
        self.sign_method = method;
        self
    }

    /// TLS (`securemode=2`, default) or plain TCP (`securemode=3`).
    pub fn secure_mode(mut self, mode: SecureMode) -> Self {
        self.secure_mode = mode;
        self
    }

    /// Adds `timestamp={ms}` (decimal digits) to the client id and the signed content. It is
    /// optional and costs 24 bytes of the 64; Aliyun's SDKs send the fixed `2524608000000`.
    pub fn timestamp(mut self, timestamp_ms: &'a str) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Signs and assembles. [`CloudError::InvalidInput`] for a malformed client id, secret or
    /// timestamp; [`CloudError::RequestTooLarge`] if the client id with its parameters exceeds
    /// [`MQTT_CLIENT_ID_MAX`] bytes.
    pub fn build(&self) -> Result<MqttCredentials, CloudError> {
        check(self.device_secret, SECRET_MAX, |b| b.is_ascii_graphic())?;
        if let Some(ts) = self.timestamp {
            check(ts, 20, |b| b.is_ascii_digit())?;
        }
        let mut base: heapless::String<MQTT_CLIENT_ID_MAX> = heapless::String::new();
        match self.client_id {
            Some(id) => {
                check_client_id(id)?;
                base.push_str(id).map_err(|_| CloudError::RequestTooLarge)?;
            }
            None => write!(
                base,
                "{}.{}",
                self.device.product_key, self.device.device_name
            )
            .map_err(|_| CloudError::RequestTooLarge)?,
        }
        let mut id: heapless::String<MQTT_CLIENT_ID_MAX> = heapless::String::new();
        write!(
            id,
            "{base}|securemode={},signmethod={}",
            self.secure_mode.value(),
            self.sign_method.as_str()
        )
        .map_err(|_| CloudError::RequestTooLarge)?;
        if let Some(ts) = self.timestamp {
            write!(id, ",timestamp={ts}").map_err(|_| CloudError::RequestTooLarge)?;
        }
        id.push('|').map_err(|_| CloudError::RequestTooLarge)?;
        let password = sign_device(
            self.sign_method,
            self.device_secret,
            Some(&base),
            &self.device,
            self.timestamp,
        )?;
        Ok(MqttCredentials {
            client_id: id,
            username: self.device.username()?,
            password: Secret::new(password.as_str())?,
            tls: self.secure_mode == SecureMode::Tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(method: SignMethod, key: &str, pairs: &[(&str, &str)]) -> heapless::String<64> {
        sign(method, key.as_bytes(), pairs).unwrap().0
    }

    // KAT-ALI-1: Aliyun's documented example (content
    // `clientId12345deviceNamedeviceproductKeypktimestamp789`, key `secret`).
    #[test]
    fn kat_ali_1() {
        let device = Device::new("pk", "device").unwrap();
        let pw = |m| {
            sign_device(m, "secret", Some("12345"), &device, Some("789"))
                .unwrap()
                .0
        };
        assert_eq!(
            pw(SignMethod::HmacSha1),
            "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
        );
        assert_eq!(pw(SignMethod::HmacMd5), "14B198324FE55E1D3C88F2E705E201EE");
        assert_eq!(
            pw(SignMethod::HmacSha256),
            "6074A46A91B1EBB2CC4EA42790AD0E80202C9843859FC292E57C4EB19FAD9E57"
        );
        let creds = MqttCredentials::builder(device, "secret")
            .client_id("12345")
            .sign_method(SignMethod::HmacSha1)
            .secure_mode(SecureMode::Tcp)
            .timestamp("789")
            .build()
            .unwrap();
        assert_eq!(
            creds.client_id(),
            "12345|securemode=3,signmethod=hmacsha1,timestamp=789|"
        );
        assert_eq!(creds.username(), "device&pk");
        assert_eq!(
            creds.password(),
            b"FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
        );
    }

    // KAT-ALI-2: the SDK's example device, client id `{pk}.{dn}`, fixed timestamp.
    #[test]
    fn kat_ali_2() {
        let device = Device::new("a1X2bEnP82z", "example1").unwrap();
        let secret = "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe";
        let pw = |m| {
            sign_device(
                m,
                secret,
                Some("a1X2bEnP82z.example1"),
                &device,
                Some("2524608000000"),
            )
            .unwrap()
            .0
        };
        assert_eq!(
            pw(SignMethod::HmacSha256),
            "B8CE8F1D706DD3C61D13BFD9855DEF7E321B785084CA9C93F0169A2B46785DD2"
        );
        assert_eq!(
            pw(SignMethod::HmacSha1),
            "B2C9AF96273C92315CC9EB431ED90573A6850105"
        );
        assert_eq!(pw(SignMethod::HmacMd5), "7E2C52953F3DCFBBC313DE587AD83F74");
        // The same password through the builder (default client id). With the timestamp the
        // client id needs 80 bytes: above MQTT 5's 64 (`Mqtt::new` refuses it for
        // `Version::V5`), fine for MQTT 3.1.1 and these credentials.
        let b = MqttCredentials::builder(device, secret).timestamp("2524608000000");
        let long = b.build().unwrap();
        assert_eq!(
            long.client_id(),
            "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|"
        );
        assert_eq!(long.client_id().len(), 80);
        let creds = MqttCredentials::builder(device, secret).build().unwrap();
        assert_eq!(
            creds.client_id(),
            "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256|"
        );
        assert_eq!(creds.username(), "example1&a1X2bEnP82z");
        let expected = sign_device(
            SignMethod::HmacSha256,
            secret,
            Some("a1X2bEnP82z.example1"),
            &device,
            None,
        )
        .unwrap();
        assert_eq!(creds.password(), expected.as_str().as_bytes());
        // The TLS-PSK content of the 4.x SDK, through the generic signer.
        assert_eq!(
            s(
                SignMethod::HmacSha256,
                secret,
                &[
                    ("id", "a1X2bEnP82z&example1"),
                    ("timestamp", "2524608000000")
                ]
            ),
            "7CB647360E50AFA1E4C4B3556945A25D4970B94404DE1FBA159D1B2D37B0D23F"
        );
    }

    // KAT-ALI-3: registration sign with the ProductSecret.
    #[test]
    fn kat_ali_3() {
        let device = Device::new("a1X2bEnP82z", "example1").unwrap();
        let sign = |m| {
            sign_registration(m, "7jluWm1zql7bt8qK", &device, "8Ygb7ULYh53B6OA")
                .unwrap()
                .0
        };
        assert_eq!(
            sign(SignMethod::HmacSha256),
            "37C9D9C4DCAB7FC75D65D25547A4E11080E59DD82F3255AAFC90D83498480E88"
        );
        assert_eq!(
            sign(SignMethod::HmacSha1),
            "3FA1991D5318B431194521321B33DE0D926DBD2B"
        );
        assert_eq!(
            sign(SignMethod::HmacMd5),
            "85F7F00EC3FDE741CF933B133BEE3835"
        );
    }

    #[test]
    fn client_id_limit_is_an_error_not_a_truncation() {
        let device = Device::new("a1X2bEnP82z", "example1").unwrap();
        // 124 + 36 = 160 bytes: fits exactly.
        let id124 = "a".repeat_into::<124>();
        let c = MqttCredentials::builder(device, "s")
            .client_id(&id124)
            .build()
            .unwrap();
        assert_eq!(c.client_id().len(), MQTT_CLIENT_ID_MAX);
        let id125 = "a".repeat_into::<125>();
        let e = MqttCredentials::builder(device, "s")
            .client_id(&id125)
            .build()
            .unwrap_err();
        assert_eq!(e, CloudError::RequestTooLarge);
        // connwl: 31 bytes of parameters leave 129 for the platform's client id.
        let fits = "a".repeat_into::<129>();
        let ok = MqttCredentials::connwl(device, &fits, "tok").unwrap();
        assert_eq!(ok.client_id().len(), MQTT_CLIENT_ID_MAX);
        assert!(ok.client_id().ends_with("|securemode=-2,authType=connwl|"));
        assert_eq!(ok.password(), b"tok");
        let long = "a".repeat_into::<130>();
        assert_eq!(
            MqttCredentials::connwl(device, &long, "tok").unwrap_err(),
            CloudError::RequestTooLarge
        );
    }

    trait RepeatInto {
        fn repeat_into<const N: usize>(&self) -> heapless::String<N>;
    }
    impl RepeatInto for str {
        fn repeat_into<const N: usize>(&self) -> heapless::String<N> {
            let mut s = heapless::String::new();
            while s.len() + self.len() <= N {
                s.push_str(self).unwrap();
            }
            s
        }
    }

    #[test]
    fn bad_input_is_rejected() {
        assert_eq!(Device::new("", "dn").unwrap_err(), CloudError::InvalidInput);
        assert_eq!(
            Device::new("pk", "a|b").unwrap_err(),
            CloudError::InvalidInput
        );
        assert_eq!(
            Device::new("p/k", "dn").unwrap_err(),
            CloudError::InvalidInput
        );
        let d = Device::new("pk", "dn").unwrap();
        for bad in ["a,b", "a|b", "", "a b", "a=b", "a&b"] {
            assert_eq!(
                MqttCredentials::builder(d, "s")
                    .client_id(bad)
                    .build()
                    .unwrap_err(),
                CloudError::InvalidInput,
                "{bad:?}"
            );
        }
        assert_eq!(
            MqttCredentials::builder(d, "s")
                .timestamp("12a")
                .build()
                .unwrap_err(),
            CloudError::InvalidInput
        );
        assert_eq!(
            MqttCredentials::builder(d, "").build().unwrap_err(),
            CloudError::InvalidInput
        );
        assert_eq!(d.user_topic("").unwrap_err(), CloudError::InvalidInput);
        assert_eq!(d.event_post("a/b").unwrap_err(), CloudError::InvalidInput);
    }

    #[test]
    fn topics_and_endpoints() {
        let d = Device::new("a1X2bEnP82z", "example1").unwrap();
        assert_eq!(
            d.user_topic("update").unwrap(),
            "/a1X2bEnP82z/example1/user/update"
        );
        assert_eq!(
            d.property_post().unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/event/property/post"
        );
        assert_eq!(
            d.property_post_reply().unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/event/property/post_reply"
        );
        assert_eq!(
            d.property_set().unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/service/property/set"
        );
        assert_eq!(
            d.property_set_reply().unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/service/property/set_reply"
        );
        assert_eq!(
            d.event_post("Alarm").unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/event/Alarm/post"
        );
        assert_eq!(
            d.event_post_reply("Alarm").unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/event/Alarm/post_reply"
        );
        assert_eq!(
            d.service("Reboot").unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/service/Reboot"
        );
        assert_eq!(
            d.service_reply("Reboot").unwrap(),
            "/sys/a1X2bEnP82z/example1/thing/service/Reboot_reply"
        );
        // A topic longer than TOPIC_MAX is an error, not a truncation.
        let long = "x".repeat_into::<120>();
        assert_eq!(
            d.user_topic(&long).unwrap_err(),
            CloudError::RequestTooLarge
        );
        assert_eq!(
            public_endpoint("a1X2bEnP82z", "cn-shanghai").unwrap(),
            "a1X2bEnP82z.iot-as-mqtt.cn-shanghai.aliyuncs.com"
        );
        assert_eq!(
            instance_endpoint("iot-06z009y9rnab11u").unwrap(),
            "iot-06z009y9rnab11u.mqtt.iothub.aliyuncs.com"
        );
        assert_eq!(
            public_endpoint("pk", "cn shanghai").unwrap_err(),
            CloudError::InvalidInput
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        extern crate std;
        use std::format;
        let d = Device::new("pk", "device").unwrap();
        let b = MqttCredentials::builder(d, "TopSecretValue").client_id("c1");
        let c = b.build().unwrap();
        let pw = core::str::from_utf8(c.password()).unwrap();
        for text in [
            format!("{b:?}"),
            format!("{c:?}"),
            format!("{:?}", Secret::<64>::new("TopSecretValue").unwrap()),
            format!("{:?}", sign(SignMethod::HmacMd5, b"k", &[]).unwrap()),
        ] {
            assert!(!text.contains("TopSecretValue"), "{text}");
            assert!(!text.contains(pw), "{text}");
            assert!(text.contains("***"), "{text}");
        }
    }
}
