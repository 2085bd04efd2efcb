//! One product, one secret (一型一密): dynamic registration over MQTT 3.1.1, and the credential
//! store that keeps what it returns.

use core::fmt::{self, Write as _};

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Read, Write};
use serde::Deserialize;

use super::{
    Device, MQTT_CLIENT_ID_MAX, MqttCredentials, REGISTER_TOPIC, REGNWL_TOPIC, SECRET_MAX, Secret,
    SignMethod, TOKEN_MAX, USERNAME_MAX, check_client_id, sign_registration,
};
use crate::Error;
use crate::cloud::CloudError;
use crate::mqtt::v311::codec::{self, Packet};

/// Which dynamic registration (`authType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegistrationKind {
    /// `authType=register`, pre-registration: the DeviceName exists in the console; the answer
    /// on `/ext/register` is the DeviceSecret. Once the device has connected with it
    /// (activated), the platform refuses to register it again.
    Register,
    /// `authType=regnwl`, pre-registration-free (Enterprise instances in some regions): the
    /// answer on `/ext/regnwl` is a client id and a device token, for
    /// [`MqttCredentials::connwl`].
    Regnwl,
}

impl RegistrationKind {
    /// The `authType` value: `register` or `regnwl`.
    pub fn auth_type(self) -> &'static str {
        match self {
            RegistrationKind::Register => "register",
            RegistrationKind::Regnwl => "regnwl",
        }
    }

    /// The topic the platform answers on: `/ext/register` or `/ext/regnwl`.
    pub fn result_topic(self) -> &'static str {
        match self {
            RegistrationKind::Register => REGISTER_TOPIC,
            RegistrationKind::Regnwl => REGNWL_TOPIC,
        }
    }
}

/// The `random` of a registration (1–32 letters or digits). Not secret. Take it from a random
/// number generator ([`Random::from_u64`]) so that a recorded registration cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Random(heapless::String<32>);

impl Random {
    /// A caller-chosen value (1–32 ASCII letters or digits).
    pub fn new(value: &str) -> Result<Self, CloudError> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CloudError::InvalidInput);
        }
        heapless::String::try_from(value)
            .map(Random)
            .map_err(|_| CloudError::InvalidInput)
    }

    /// The decimal digits of `value`, e.g. `Random::from_u64(rng.next_u64())`.
    pub fn from_u64(value: u64) -> Self {
        let mut s = heapless::String::new();
        // 20 digits at most: always fits.
        let _ = write!(s, "{value}");
        Random(s)
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything a dynamic registration sends. `Debug` never shows the ProductSecret.
#[derive(Clone)]
pub struct Registration<'a> {
    device: Device<'a>,
    product_secret: &'a str,
    kind: RegistrationKind,
    random: Random,
    sign_method: SignMethod,
    client_id: Option<&'a str>,
    secure_mode: i8,
    instance_id: Option<&'a str>,
    timeout: Duration,
    subscribe: bool,
}

impl fmt::Debug for Registration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("device", &self.device)
            .field("product_secret", &"***")
            .field("kind", &self.kind)
            .field("random", &self.random)
            .field("sign_method", &self.sign_method)
            .field("client_id", &self.client_id)
            .field("secure_mode", &self.secure_mode)
            .field("instance_id", &self.instance_id)
            .field("timeout", &self.timeout)
            .field("subscribe", &self.subscribe)
            .finish()
    }
}

/// Default time for the whole exchange (Aliyun closes the connection 15 s after CONNACK).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

impl<'a> Registration<'a> {
    /// A registration of `device` with the product's ProductSecret: hmacsha256, client id
    /// `{deviceName}.{productKey}` (as Aliyun's Link SDK 4.x), `securemode=2`, 20 s for the
    /// whole exchange, no SUBSCRIBE.
    pub fn new(
        device: Device<'a>,
        product_secret: &'a str,
        kind: RegistrationKind,
        random: Random,
    ) -> Self {
        Self {
            device,
            product_secret,
            kind,
            random,
            sign_method: SignMethod::default(),
            client_id: None,
            secure_mode: 2,
            instance_id: None,
            timeout: DEFAULT_TIMEOUT,
            subscribe: false,
        }
    }

    /// The HMAC of the sign (default [`SignMethod::HmacSha256`]).
    pub fn sign_method(mut self, method: SignMethod) -> Self {
        self.sign_method = method;
        self
    }

    /// The client id before the `|…|` parameters (letters, digits, `-_@.:`).
    pub fn client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    /// Adds `instanceId={id}` (new public and Enterprise instances). Aliyun's documentation
    /// pairs it with `securemode=-2` ([`Registration::secure_mode`]); its Link SDK 4.x sends
    /// `securemode=2`.
    pub fn instance_id(mut self, instance_id: &'a str) -> Self {
        self.instance_id = Some(instance_id);
        self
    }

    /// `securemode`: 2 (default) or -2. Anything else is refused by [`register`] with
    /// [`CloudError::InvalidInput`]. Registration is TLS only either way.
    pub fn secure_mode(mut self, mode: i8) -> Self {
        self.secure_mode = mode;
        self
    }

    /// How long the whole exchange (CONNECT to the answer) may take (default 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends a SUBSCRIBE for the answer topic right after CONNACK. **Aliyun does not need it**
    /// (it publishes the answer without one, and its SDKs do not subscribe); it is for brokers
    /// that route by subscription only, such as a Mosquitto stand-in in tests or a self-hosted
    /// registration service. Default off.
    pub fn subscribe_to_result(mut self, on: bool) -> Self {
        self.subscribe = on;
        self
    }

    /// The device being registered.
    pub fn device(&self) -> Device<'a> {
        self.device
    }

    /// `register` or `regnwl`.
    pub fn kind(&self) -> RegistrationKind {
        self.kind
    }

    /// The MQTT client id of the registration:
    /// `{clientId}|securemode=2,authType=register,random=…,signmethod=…[,instanceId=…]|`.
    /// Longer than 64 bytes as a rule, which is why this exchange does not use minimq.
    pub fn mqtt_client_id(&self) -> Result<heapless::String<256>, CloudError> {
        if !matches!(self.secure_mode, 2 | -2) {
            return Err(CloudError::InvalidInput);
        }
        let mut id = heapless::String::new();
        let full = |_| CloudError::RequestTooLarge;
        match self.client_id {
            Some(c) => {
                check_client_id(c)?;
                id.push_str(c).map_err(full)?;
            }
            None => write!(
                id,
                "{}.{}",
                self.device.device_name(),
                self.device.product_key()
            )
            .map_err(|_| CloudError::RequestTooLarge)?,
        }
        write!(
            id,
            "|securemode={},authType={},random={},signmethod={}",
            self.secure_mode,
            self.kind.auth_type(),
            self.random.as_str(),
            self.sign_method.as_str()
        )
        .map_err(|_| CloudError::RequestTooLarge)?;
        if let Some(instance) = self.instance_id {
            if instance.is_empty()
                || !instance
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(CloudError::InvalidInput);
            }
            write!(id, ",instanceId={instance}").map_err(|_| CloudError::RequestTooLarge)?;
        }
        id.push('|').map_err(full)?;
        Ok(id)
    }
}

/// What a registration obtained, to keep in a [`CredentialStore`]. `Debug` and `defmt` never
/// show the secret or the token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
// Kept once, by value (no heap): the size difference is the point of a `Token`.
#[allow(clippy::large_enum_variant)]
pub enum DeviceCredentials {
    /// `register`: the DeviceSecret (one device, one secret from now on).
    DeviceSecret(Secret<SECRET_MAX>),
    /// `regnwl`: the client id and device token for [`MqttCredentials::connwl`].
    Token {
        /// The client id the platform assigned.
        client_id: heapless::String<MQTT_CLIENT_ID_MAX>,
        /// The device token (the MQTT password).
        device_token: Secret<TOKEN_MAX>,
    },
}

/// Bytes [`DeviceCredentials::encode`] needs at most.
pub const ENCODED_MAX: usize = 2 + 1 + MQTT_CLIENT_ID_MAX + 1 + TOKEN_MAX;

const FORMAT_VERSION: u8 = 1;

impl DeviceCredentials {
    /// The MQTT credentials to connect with: for a DeviceSecret,
    /// [`MqttCredentials::builder`] with its defaults (client id `{pk}.{dn}`, hmacsha256, TLS;
    /// build it yourself from [`DeviceCredentials::device_secret`] to choose); for a token,
    /// [`MqttCredentials::connwl`].
    pub fn mqtt_credentials(&self, device: Device<'_>) -> Result<MqttCredentials, CloudError> {
        match self {
            DeviceCredentials::DeviceSecret(s) => {
                MqttCredentials::builder(device, s.expose()).build()
            }
            DeviceCredentials::Token {
                client_id,
                device_token,
            } => MqttCredentials::connwl(device, client_id, device_token.expose()),
        }
    }

    /// The DeviceSecret, if this is one.
    pub fn device_secret(&self) -> Option<&Secret<SECRET_MAX>> {
        match self {
            DeviceCredentials::DeviceSecret(s) => Some(s),
            DeviceCredentials::Token { .. } => None,
        }
    }

    /// Serialises into `out` (at most [`ENCODED_MAX`] bytes) for flash or a file: a version
    /// byte, a kind byte, then length-prefixed fields. Returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, CloudError> {
        let mut w = Out { buf: out, len: 0 };
        w.put(&[FORMAT_VERSION])?;
        match self {
            DeviceCredentials::DeviceSecret(s) => {
                w.put(&[1])?;
                w.put_short(s.expose())?;
            }
            DeviceCredentials::Token {
                client_id,
                device_token,
            } => {
                w.put(&[2])?;
                w.put_short(client_id)?;
                w.put_short(device_token.expose())?;
            }
        }
        Ok(w.len)
    }

    /// Reads what [`DeviceCredentials::encode`] wrote. [`CloudError::Storage`] if the bytes are
    /// not a valid record (erased flash, another format, corruption).
    pub fn decode(bytes: &[u8]) -> Result<Self, CloudError> {
        fn field<'b>(rest: &mut &'b [u8]) -> Result<&'b str, CloudError> {
            let (&n, tail) = rest.split_first().ok_or(CloudError::Storage)?;
            let n = usize::from(n);
            let (value, tail) = tail.split_at_checked(n).ok_or(CloudError::Storage)?;
            *rest = tail;
            core::str::from_utf8(value).map_err(|_| CloudError::Storage)
        }
        let Some((&[version, kind], mut rest)) = bytes.split_first_chunk::<2>() else {
            return Err(CloudError::Storage);
        };
        if version != FORMAT_VERSION {
            return Err(CloudError::Storage);
        }
        let creds = match kind {
            1 => DeviceCredentials::DeviceSecret(
                Secret::new(field(&mut rest)?).map_err(|_| CloudError::Storage)?,
            ),
            2 => {
                let id = field(&mut rest)?;
                let token = field(&mut rest)?;
                DeviceCredentials::Token {
                    client_id: heapless::String::try_from(id).map_err(|_| CloudError::Storage)?,
                    device_token: Secret::new(token).map_err(|_| CloudError::Storage)?,
                }
            }
            _ => return Err(CloudError::Storage),
        };
        if !rest.is_empty() {
            return Err(CloudError::Storage);
        }
        Ok(creds)
    }
}

/// Where the application keeps the credentials a registration returned (flash, the modem's
/// file system, a secure element). [`ensure_credentials`] calls `load` first and `save` once,
/// right after a registration succeeded.
///
/// A `load` that fails (rather than finding nothing) stops [`ensure_credentials`]: registering
/// again while a secret may be stored is how devices get locked out.
#[allow(async_fn_in_trait)]
pub trait CredentialStore {
    /// The store's own error (reported as [`CloudError::Storage`]).
    type Error: fmt::Debug;

    /// The stored credentials, or `None` if there are none (first boot).
    async fn load(&mut self) -> Result<Option<DeviceCredentials>, Self::Error>;

    /// Stores `credentials`, replacing what was there. Make it durable before returning.
    async fn save(&mut self, credentials: &DeviceCredentials) -> Result<(), Self::Error>;
}

/// A [`CredentialStore`] in RAM: for tests, and for devices that keep RAM across the reboots
/// that matter. It counts the saves.
#[derive(Clone, Debug, Default)]
pub struct RamStore {
    credentials: Option<DeviceCredentials>,
    saves: u32,
}

impl RamStore {
    /// An empty store.
    pub const fn new() -> Self {
        Self {
            credentials: None,
            saves: 0,
        }
    }

    /// A store holding `credentials`.
    pub fn with(credentials: DeviceCredentials) -> Self {
        Self {
            credentials: Some(credentials),
            saves: 0,
        }
    }

    /// What it holds.
    pub fn credentials(&self) -> Option<&DeviceCredentials> {
        self.credentials.as_ref()
    }

    /// How many times `save` was called.
    pub fn saves(&self) -> u32 {
        self.saves
    }
}

impl CredentialStore for RamStore {
    type Error = core::convert::Infallible;

    async fn load(&mut self) -> Result<Option<DeviceCredentials>, Self::Error> {
        Ok(self.credentials.clone())
    }

    async fn save(&mut self, credentials: &DeviceCredentials) -> Result<(), Self::Error> {
        self.credentials = Some(credentials.clone());
        self.saves = self.saves.saturating_add(1);
        Ok(())
    }
}

/// The outcome of [`ensure_credentials`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Provisioned {
    /// Loaded from the store; no registration happened.
    Stored(DeviceCredentials),
    /// Obtained by a registration and saved.
    Registered(DeviceCredentials),
    /// Obtained by a registration, but the store's `save` failed. **This is the only copy**: the
    /// credentials work, but save them (retry [`CredentialStore::save`]) before the device
    /// reboots, or a DeviceSecret is lost and the device must be reset in the console.
    RegisteredNotSaved(DeviceCredentials),
}

impl Provisioned {
    /// The credentials, however they were obtained.
    pub fn credentials(&self) -> &DeviceCredentials {
        match self {
            Provisioned::Stored(c)
            | Provisioned::Registered(c)
            | Provisioned::RegisteredNotSaved(c) => c,
        }
    }

    /// Whether a registration happened.
    pub fn registered(&self) -> bool {
        !matches!(self, Provisioned::Stored(_))
    }
}

/// Loads the credentials from `store`; if there are none, runs `register` (e.g. [`register`]
/// over a fresh TLS connection), saves the result (one `save` call) and returns it.
///
/// - the store fails to load → [`CloudError::Storage`], and no registration;
/// - the store is empty and the platform says the device is already activated →
///   [`CloudError::AlreadyActivated`] (its secret was issued before and lost: reset the device
///   in the console);
/// - the save fails → [`Provisioned::RegisteredNotSaved`] (not an error: the credentials are
///   valid and must not be thrown away).
pub async fn ensure_credentials<S: CredentialStore>(
    store: &mut S,
    register: impl AsyncFnOnce() -> Result<DeviceCredentials, CloudError>,
) -> Result<Provisioned, CloudError> {
    match store.load().await {
        Ok(Some(c)) => return Ok(Provisioned::Stored(c)),
        Ok(None) => {}
        Err(_e) => {
            warn!("aliyun: the credential store failed to load");
            return Err(CloudError::Storage);
        }
    }
    let credentials = register().await?;
    match store.save(&credentials).await {
        Ok(()) => Ok(Provisioned::Registered(credentials)),
        Err(_e) => {
            error!("aliyun: registered, but the credential store failed to save");
            Ok(Provisioned::RegisteredNotSaved(credentials))
        }
    }
}

/// Where [`provision`] opens its TLS connection through the modem.
#[derive(Clone, Copy, Debug)]
pub struct RegistrationLink<'a> {
    /// PDP context (its data call must be active).
    pub cid: u8,
    /// SSL context to set up from `tls` (0–5).
    pub ssl_ctx: u8,
    /// Server authentication (Aliyun: the GlobalSign root; no client certificate).
    pub tls: crate::asynch::TlsConfig<'a>,
    /// The MQTT endpoint ([`public_endpoint`](super::public_endpoint) or
    /// [`instance_endpoint`](super::instance_endpoint)).
    pub host: &'a str,
    /// Its port ([`PORT`](super::PORT)).
    pub port: u16,
}

/// [`ensure_credentials`] through the modem: if `store` is empty, sets up SSL context
/// `link.ssl_ctx`, opens a TLS socket to `link.host`, runs [`register`] with `buf`, closes the
/// socket, and saves the result. The data call on `link.cid` must be active.
pub async fn provision<S>(
    modem: &crate::asynch::Modem<'_>,
    link: &RegistrationLink<'_>,
    registration: &Registration<'_>,
    store: &mut S,
    buf: &mut [u8],
) -> Result<Provisioned, CloudError>
where
    S: CredentialStore,
{
    ensure_credentials(store, async || {
        modem.configure_tls(link.ssl_ctx, &link.tls).await?;
        let remote = crate::asynch::Remote::Tls {
            ssl_ctx: link.ssl_ctx,
            host: link.host,
            port: link.port,
        };
        let mut socket = modem.connect(link.cid, remote).await?;
        let result = register(&mut socket, registration, buf).await;
        // The platform may have closed already; what matters is the result.
        let _ = socket.close().await;
        result
    })
    .await
}

/// Runs one dynamic registration over `io`, a fresh connection to the MQTT endpoint (TLS: the
/// platform refuses plain TCP): MQTT 3.1.1 CONNECT with the registration client id, user name
/// `{dn}&{pk}` and the signed password; CONNACK; then the PUBLISH on `/ext/register` or
/// `/ext/regnwl` that the platform sends without a SUBSCRIBE (QoS 0 or 1, acknowledged);
/// DISCONNECT. Packets are built and read in `buf` (512 bytes are plenty; a packet that does
/// not fit is [`CloudError::RequestTooLarge`] / [`CloudError::ResponseTooLarge`]). The whole
/// exchange is bounded by the registration's timeout ([`CloudError::NoResponse`]).
///
/// CONNACK refusals: 4 (bad user name or password: wrong ProductSecret) →
/// [`CloudError::BadCredentials`]; 5 (not authorised) for `register` →
/// [`CloudError::AlreadyActivated`] (the device was activated before: its DeviceSecret is not
/// issued again); any other code → [`CloudError::Rejected`] with the code as status. A
/// malformed packet is [`CloudError::InvalidResponse`], a closed connection
/// [`Error::ConnectionClosed`].
pub async fn register<IO>(
    io: &mut IO,
    registration: &Registration<'_>,
    buf: &mut [u8],
) -> Result<DeviceCredentials, CloudError>
where
    IO: Read + Write,
    CloudError: From<IO::Error>,
{
    match with_timeout(registration.timeout, exchange(io, registration, buf)).await {
        Ok(r) => r,
        Err(_) => {
            warn!("aliyun: no registration answer in time");
            Err(CloudError::NoResponse)
        }
    }
}

/// Appends the storage format's fields to a buffer, refusing to overflow it.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), CloudError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(CloudError::RequestTooLarge)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(CloudError::RequestTooLarge)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// A field of the storage format: 8-bit length, then the bytes.
    fn put_short(&mut self, s: &str) -> Result<(), CloudError> {
        let n = u8::try_from(s.len()).map_err(|_| CloudError::RequestTooLarge)?;
        self.put(&[n])?;
        self.put(s.as_bytes())
    }
}

/// An outbound packet that does not fit `buf`, or an MQTT field too long.
fn request_error(_: codec::CodecError) -> CloudError {
    CloudError::RequestTooLarge
}

/// Writes and flushes `bytes`. (`Write::write_all` panics when a write returns 0; a closed
/// stream is [`Error::ConnectionClosed`] here.)
async fn write_all<IO>(io: &mut IO, bytes: &[u8]) -> Result<(), CloudError>
where
    IO: Write,
    CloudError: From<IO::Error>,
{
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = io.write(rest).await?;
        if n == 0 {
            return Err(Error::ConnectionClosed.into());
        }
        // A writer returns at most `rest.len()`.
        rest = rest.get(n..).unwrap_or_default();
    }
    io.flush().await?;
    Ok(())
}

/// `Read::read_exact`, with the end of the stream as [`Error::ConnectionClosed`].
async fn read_exact<IO>(io: &mut IO, buf: &mut [u8]) -> Result<(), CloudError>
where
    IO: Read,
    CloudError: From<IO::Error>,
{
    io.read_exact(buf).await.map_err(|e| match e {
        embedded_io_async::ReadExactError::UnexpectedEof => Error::ConnectionClosed.into(),
        embedded_io_async::ReadExactError::Other(e) => e.into(),
    })
}

/// Reads one packet into `buf` (its fixed header parsed by the MQTT 3.1.1 codec): returns its
/// first byte and the length of its body.
async fn read_packet<IO>(io: &mut IO, buf: &mut [u8]) -> Result<(u8, usize), CloudError>
where
    IO: Read,
    CloudError: From<IO::Error>,
{
    let mut hdr = [0u8; codec::MAX_HEADER];
    let mut got = 0usize;
    let (first, len) = loop {
        let byte = hdr.get_mut(got..=got).ok_or(CloudError::InvalidResponse)?;
        read_exact(io, byte).await?;
        got = got.saturating_add(1);
        match codec::parse_header(hdr.get(..got).unwrap_or_default()) {
            Ok(Some((first, len, _))) => break (first, len),
            Ok(None) => {}
            Err(_) => return Err(CloudError::InvalidResponse),
        }
    };
    let capacity = buf.len();
    let Some(body) = buf.get_mut(..len) else {
        return Err(CloudError::ResponseTooLarge {
            needed: len,
            capacity,
        });
    };
    read_exact(io, body).await?;
    Ok((first, len))
}

#[derive(Deserialize)]
struct RegisterAnswer<'a> {
    #[serde(rename = "productKey")]
    product_key: &'a str,
    #[serde(rename = "deviceName")]
    device_name: &'a str,
    #[serde(rename = "deviceSecret")]
    device_secret: &'a str,
}

#[derive(Deserialize)]
struct RegnwlAnswer<'a> {
    #[serde(rename = "clientId")]
    client_id: &'a str,
    #[serde(rename = "productKey")]
    product_key: &'a str,
    #[serde(rename = "deviceName")]
    device_name: &'a str,
    #[serde(rename = "deviceToken")]
    device_token: &'a str,
}

fn too_large(needed: usize, capacity: usize) -> Result<(), CloudError> {
    if needed > capacity {
        return Err(CloudError::ResponseTooLarge { needed, capacity });
    }
    Ok(())
}

/// Parses the answer payload and checks that it is about this device.
fn parse_answer(
    kind: RegistrationKind,
    device: &Device<'_>,
    payload: &[u8],
) -> Result<DeviceCredentials, CloudError> {
    let same = |pk: &str, dn: &str| pk == device.product_key() && dn == device.device_name();
    match kind {
        RegistrationKind::Register => {
            let (a, _) = serde_json_core::from_slice::<RegisterAnswer<'_>>(payload)
                .map_err(|_| CloudError::InvalidResponse)?;
            if !same(a.product_key, a.device_name) {
                return Err(CloudError::InvalidResponse);
            }
            too_large(a.device_secret.len(), SECRET_MAX)?;
            Secret::new(a.device_secret)
                .map(DeviceCredentials::DeviceSecret)
                .map_err(|_| CloudError::InvalidResponse)
        }
        RegistrationKind::Regnwl => {
            let (a, _) = serde_json_core::from_slice::<RegnwlAnswer<'_>>(payload)
                .map_err(|_| CloudError::InvalidResponse)?;
            if !same(a.product_key, a.device_name) {
                return Err(CloudError::InvalidResponse);
            }
            too_large(a.client_id.len(), MQTT_CLIENT_ID_MAX)?;
            too_large(a.device_token.len(), TOKEN_MAX)?;
            if a.client_id.is_empty() || !a.client_id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CloudError::InvalidResponse);
            }
            Ok(DeviceCredentials::Token {
                client_id: heapless::String::try_from(a.client_id)
                    .map_err(|_| CloudError::InvalidResponse)?,
                device_token: Secret::new(a.device_token)
                    .map_err(|_| CloudError::InvalidResponse)?,
            })
        }
    }
}

async fn exchange<IO>(
    io: &mut IO,
    reg: &Registration<'_>,
    buf: &mut [u8],
) -> Result<DeviceCredentials, CloudError>
where
    IO: Read + Write,
    CloudError: From<IO::Error>,
{
    let client_id = reg.mqtt_client_id()?;
    if reg.product_secret.is_empty() || reg.product_secret.len() > SECRET_MAX {
        return Err(CloudError::InvalidInput);
    }
    let username: heapless::String<USERNAME_MAX> = reg.device.username()?;
    let password = sign_registration(
        reg.sign_method,
        reg.product_secret,
        &reg.device,
        reg.random.as_str(),
    )?;
    // The server drops a client silent for 1.5 × keep-alive: never before our own timeout.
    let keepalive = (reg.timeout.as_secs().saturating_mul(2)).clamp(60, 1200) as u16;

    // CONNECT: protocol level 4, user name + password + clean session.
    let connect = codec::Connect {
        client_id: &client_id,
        keepalive_s: keepalive,
        clean_session: true,
        auth: Some((&username, password.as_str().as_bytes())),
        will: None,
    };
    let len = connect.encode(buf).map_err(request_error)?;
    debug!("aliyun: registration CONNECT ({} bytes)", len);
    write_all(io, buf.get(..len).unwrap_or_default()).await?;

    let (first, n) = read_packet(io, buf).await?;
    let body = buf.get(..n).unwrap_or_default();
    let Ok(Packet::ConnAck { code, .. }) = codec::decode(first, body) else {
        return Err(CloudError::InvalidResponse);
    };
    match code {
        0 => {}
        4 => return Err(CloudError::BadCredentials),
        5 if reg.kind == RegistrationKind::Register => {
            return Err(CloudError::AlreadyActivated);
        }
        1..=5 => {
            return Err(CloudError::Rejected {
                status: u16::from(code),
            });
        }
        _ => return Err(CloudError::InvalidResponse),
    }
    debug!("aliyun: registration accepted, waiting for the answer");

    let topic = reg.kind.result_topic();
    if reg.subscribe {
        let len = codec::encode_subscribe(buf, 1, &[(topic, 1)]).map_err(request_error)?;
        write_all(io, buf.get(..len).unwrap_or_default()).await?;
    }

    loop {
        let (first, n) = read_packet(io, buf).await?;
        let body = buf.get(..n).unwrap_or_default();
        match codec::decode(first, body) {
            // Aliyun publishes with QoS 0 or 1 only.
            Ok(Packet::Publish(p)) if p.qos <= 1 => {
                let answer = if p.topic == topic {
                    Some(parse_answer(reg.kind, &reg.device, p.payload))
                } else {
                    debug!("aliyun: ignoring a message on another topic");
                    None
                };
                if let Some(id) = p.id {
                    // Once the answer is here, a failed PUBACK no longer matters.
                    if let Err(e) = write_all(io, &codec::puback(id)).await
                        && answer.is_none()
                    {
                        return Err(e);
                    }
                }
                if let Some(answer) = answer {
                    let credentials = answer?;
                    // Done: say goodbye; the answer is what counts, not whether this arrives.
                    let _ = write_all(io, &codec::DISCONNECT_PACKET).await;
                    info!("aliyun: dynamic registration answered");
                    return Ok(credentials);
                }
            }
            Ok(Packet::SubAck { .. } | Packet::PingResp) => {}
            _ => return Err(CloudError::InvalidResponse),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    /// A scripted peer: reads come from `input` (in chunks of `chunk` bytes), writes are kept.
    struct Peer {
        input: Vec<u8>,
        pos: usize,
        chunk: usize,
        written: Vec<u8>,
    }

    impl Peer {
        fn new(input: &[u8]) -> Self {
            Self {
                input: input.to_vec(),
                pos: 0,
                chunk: 3,
                written: Vec::new(),
            }
        }
    }

    impl embedded_io_async::ErrorType for Peer {
        type Error = Error;
    }

    impl Read for Peer {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            if self.pos >= self.input.len() {
                // Like a peer that keeps the connection open and says nothing.
                core::future::pending::<()>().await;
            }
            let n = buf.len().min(self.chunk).min(self.input.len() - self.pos);
            buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Peer {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        async fn flush(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    const PK: &str = "a1X2bEnP82z";
    const DN: &str = "example1";

    fn reg(kind: RegistrationKind) -> Registration<'static> {
        Registration::new(
            Device::new(PK, DN).unwrap(),
            "7jluWm1zql7bt8qK",
            kind,
            Random::new("8Ygb7ULYh53B6OA").unwrap(),
        )
        .timeout(Duration::from_millis(300))
    }

    fn publish(qos: u8, topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if qos == 1 {
            body.extend_from_slice(&[0x12, 0x34]);
        }
        body.extend_from_slice(payload);
        let mut p = std::vec![0x30 | (qos << 1)];
        let mut n = body.len();
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            p.push(b);
            if n == 0 {
                break;
            }
        }
        p.extend(body);
        p
    }

    const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
    const SECRET_JSON: &[u8] = br#"{"productKey":"a1X2bEnP82z","deviceName":"example1","deviceSecret":"S3cr3tFromTheCloud"}"#;

    fn run(
        reg: &Registration<'_>,
        input: &[u8],
        buf_len: usize,
    ) -> (Result<DeviceCredentials, CloudError>, Vec<u8>) {
        let mut peer = Peer::new(input);
        let mut buf = std::vec![0u8; buf_len];
        let r = embassy_futures::block_on(register(&mut peer, reg, &mut buf));
        (r, peer.written)
    }

    /// Splits what the client wrote into packets (first byte, body).
    fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let first = bytes[0];
            let (mut len, mut i, mut shift) = (0usize, 1, 0);
            loop {
                let b = bytes[i];
                len |= usize::from(b & 0x7f) << shift;
                i += 1;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            out.push((first, bytes[i..i + len].to_vec()));
            bytes = &bytes[i + len..];
        }
        out
    }

    #[test]
    fn register_qos1_connect_puback_disconnect() {
        let mut input = CONNACK_OK.to_vec();
        input.extend(publish(1, "/ext/register", SECRET_JSON));
        let (r, written) = run(&reg(RegistrationKind::Register), &input, 512);
        assert_eq!(
            r.unwrap(),
            DeviceCredentials::DeviceSecret(Secret::new("S3cr3tFromTheCloud").unwrap())
        );
        let p = packets(&written);
        assert_eq!(p.len(), 3, "{p:?}");
        // CONNECT, exactly as specified.
        let (first, body) = &p[0];
        assert_eq!(*first, 0x10);
        let mut expected = std::vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
        let id = "example1.a1X2bEnP82z|securemode=2,authType=register,random=8Ygb7ULYh53B6OA,signmethod=hmacsha256|";
        for s in [
            id,
            "example1&a1X2bEnP82z",
            "37C9D9C4DCAB7FC75D65D25547A4E11080E59DD82F3255AAFC90D83498480E88",
        ] {
            expected.extend_from_slice(&(s.len() as u16).to_be_bytes());
            expected.extend_from_slice(s.as_bytes());
        }
        assert_eq!(body, &expected);
        // PUBACK with the packet id, then DISCONNECT; no SUBSCRIBE.
        assert_eq!(p[1], (0x40, std::vec![0x12, 0x34]));
        assert_eq!(p[2], (0xE0, std::vec![]));
    }

    #[test]
    fn regnwl_qos0_after_an_unrelated_message() {
        let mut input = CONNACK_OK.to_vec();
        input.extend(publish(1, "/other", b"x"));
        input.extend(publish(
            0,
            "/ext/regnwl",
            br#"{"clientId":"cid-77","productKey":"a1X2bEnP82z","deviceName":"example1","deviceToken":"tok-123","extra":[1,{"a":2}]}"#,
        ));
        let r = reg(RegistrationKind::Regnwl)
            .sign_method(SignMethod::HmacSha1)
            .client_id("sn42")
            .instance_id("iot-06z009y9rnab11u")
            .secure_mode(-2);
        assert_eq!(
            r.mqtt_client_id().unwrap(),
            "sn42|securemode=-2,authType=regnwl,random=8Ygb7ULYh53B6OA,signmethod=hmacsha1,instanceId=iot-06z009y9rnab11u|"
        );
        let (res, written) = run(&r, &input, 512);
        let creds = res.unwrap();
        assert_eq!(
            creds,
            DeviceCredentials::Token {
                client_id: heapless::String::try_from("cid-77").unwrap(),
                device_token: Secret::new("tok-123").unwrap(),
            }
        );
        let p = packets(&written);
        // CONNECT, PUBACK for the unrelated QoS 1 message, DISCONNECT (no PUBACK for QoS 0).
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[1].0, 0x40);
        assert_eq!(p[2].0, 0xE0);
        let mqtt = creds
            .mqtt_credentials(Device::new(PK, DN).unwrap())
            .unwrap();
        assert_eq!(mqtt.client_id(), "cid-77|securemode=-2,authType=connwl|");
        assert_eq!(mqtt.password(), b"tok-123");
    }

    #[test]
    fn connack_codes() {
        let refuse = |code: u8, kind| run(&reg(kind), &[0x20, 2, 0, code], 512).0.unwrap_err();
        use RegistrationKind::*;
        assert_eq!(refuse(4, Register), (CloudError::BadCredentials));
        assert_eq!(refuse(5, Register), (CloudError::AlreadyActivated));
        assert_eq!(refuse(5, Regnwl), (CloudError::Rejected { status: 5 }));
        assert_eq!(refuse(2, Register), (CloudError::Rejected { status: 2 }));
        assert_eq!(refuse(3, Register), (CloudError::Rejected { status: 3 }));
        assert_eq!(refuse(9, Register), (CloudError::InvalidResponse));
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let inv = CloudError::InvalidResponse;
        let register = reg(RegistrationKind::Register);
        let go = |input: &[u8], buf| run(&register, input, buf).0.unwrap_err();
        // Not a CONNACK first; a CONNACK of the wrong length.
        assert_eq!(go(&[0x30, 0x00], 512), inv);
        assert_eq!(go(&[0x20, 0x03, 0, 0, 0], 512), inv);
        // Five remaining-length bytes.
        assert_eq!(go(&[0x20, 0xff, 0xff, 0xff, 0xff, 0x01], 512), inv);
        // A packet larger than the buffer.
        let mut big = CONNACK_OK.to_vec();
        big.extend(publish(0, "/ext/register", &[b' '; 600]));
        assert_eq!(
            go(&big, 512),
            (CloudError::ResponseTooLarge {
                needed: 600 + 2 + 13,
                capacity: 512
            })
        );
        // QoS 2 and QoS 3 publishes; a topic length beyond the body; a missing packet id.
        for bad in [
            std::vec![0x34, 0x02, 0, 0],
            std::vec![0x36, 0x02, 0, 0],
            std::vec![0x30, 0x03, 0, 9, b'a'],
            std::vec![0x32, 0x03, 0, 1, b'a'],
            // A packet type that has no business here (SUBSCRIBE).
            std::vec![0x82, 0x00],
        ] {
            let mut input = CONNACK_OK.to_vec();
            input.extend(&bad);
            assert_eq!(go(&input, 512), inv, "{bad:x?}");
        }
        // Not the documented JSON, or about another device.
        for payload in [
            &b"not json"[..],
            br#"{"productKey":"a1X2bEnP82z","deviceName":"example1"}"#,
            br#"{"productKey":"a1X2bEnP82z","deviceName":"other","deviceSecret":"s"}"#,
        ] {
            let mut input = CONNACK_OK.to_vec();
            input.extend(publish(0, "/ext/register", payload));
            assert_eq!(go(&input, 512), inv);
        }
        // A secret too long for its buffer.
        let long = std::format!(
            r#"{{"productKey":"a1X2bEnP82z","deviceName":"example1","deviceSecret":"{}"}}"#,
            "s".repeat(65)
        );
        let mut input = CONNACK_OK.to_vec();
        input.extend(publish(0, "/ext/register", long.as_bytes()));
        assert_eq!(
            go(&input, 512),
            (CloudError::ResponseTooLarge {
                needed: 65,
                capacity: 64
            })
        );
        // CONNECT does not fit the buffer.
        assert_eq!(go(&CONNACK_OK, 64), (CloudError::RequestTooLarge));
    }

    #[test]
    fn silence_and_eof() {
        let register = reg(RegistrationKind::Register);
        // Accepted, then nothing: bounded by the timeout.
        let (r, _) = run(&register, &CONNACK_OK, 512);
        assert_eq!(r.unwrap_err(), (CloudError::NoResponse));
        // Closed mid-packet.
        struct Eof;
        impl embedded_io_async::ErrorType for Eof {
            type Error = Error;
        }
        impl Read for Eof {
            async fn read(&mut self, _: &mut [u8]) -> Result<usize, Error> {
                Ok(0)
            }
        }
        impl Write for Eof {
            async fn write(&mut self, b: &[u8]) -> Result<usize, Error> {
                Ok(b.len())
            }
            async fn flush(&mut self) -> Result<(), Error> {
                Ok(())
            }
        }
        let mut buf = [0u8; 512];
        let r = embassy_futures::block_on(super::register(&mut Eof, &register, &mut buf));
        assert_eq!(r.unwrap_err(), CloudError::Modem(Error::ConnectionClosed));
    }

    #[test]
    fn subscribe_option_sends_one_subscribe() {
        let mut input = CONNACK_OK.to_vec();
        input.extend([0x90, 0x03, 0x00, 0x01, 0x01]);
        input.extend(publish(0, "/ext/register", SECRET_JSON));
        let (r, written) = run(
            &reg(RegistrationKind::Register).subscribe_to_result(true),
            &input,
            512,
        );
        assert!(r.is_ok());
        let p = packets(&written);
        let mut sub = std::vec![0, 1, 0, 13];
        sub.extend_from_slice(b"/ext/register");
        sub.push(1);
        assert_eq!(p[1], (0x82, sub));
    }

    #[test]
    fn bad_registration_input() {
        let d = Device::new(PK, DN).unwrap();
        let r = Registration::new(d, "", RegistrationKind::Register, Random::from_u64(7));
        assert_eq!(run(&r, &[], 512).0.unwrap_err(), (CloudError::InvalidInput));
        let r = reg(RegistrationKind::Register).secure_mode(3);
        assert_eq!(r.mqtt_client_id().unwrap_err(), CloudError::InvalidInput);
        let r = reg(RegistrationKind::Register).client_id("a|b");
        assert_eq!(r.mqtt_client_id().unwrap_err(), CloudError::InvalidInput);
        assert_eq!(Random::new("").unwrap_err(), CloudError::InvalidInput);
        assert_eq!(Random::new("a-b").unwrap_err(), CloudError::InvalidInput);
        assert_eq!(Random::from_u64(u64::MAX).as_str(), "18446744073709551615");
        let text = std::format!("{:?}", reg(RegistrationKind::Register));
        assert!(!text.contains("7jluWm1zql7bt8qK"), "{text}");
    }

    #[test]
    fn storage_format_round_trip() {
        let mut buf = [0u8; ENCODED_MAX];
        for c in [
            DeviceCredentials::DeviceSecret(Secret::new("abc").unwrap()),
            DeviceCredentials::Token {
                client_id: heapless::String::try_from("c".repeat(64).as_str()).unwrap(),
                device_token: Secret::new(&"t".repeat(128)).unwrap(),
            },
        ] {
            let n = c.encode(&mut buf).unwrap();
            assert_eq!(DeviceCredentials::decode(&buf[..n]).unwrap(), c);
            // Truncated, extended, or wrong version: refused.
            assert_eq!(
                DeviceCredentials::decode(&buf[..n - 1]).unwrap_err(),
                CloudError::Storage
            );
            let mut longer = buf[..n].to_vec();
            longer.push(0);
            assert_eq!(
                DeviceCredentials::decode(&longer).unwrap_err(),
                CloudError::Storage
            );
            assert!(c.encode(&mut buf[..n - 1]).is_err());
        }
        assert_eq!(
            DeviceCredentials::decode(&[0xff; 8]).unwrap_err(),
            CloudError::Storage
        );
        assert_eq!(
            DeviceCredentials::decode(&[]).unwrap_err(),
            CloudError::Storage
        );
        let text = std::format!(
            "{:?}",
            DeviceCredentials::DeviceSecret(Secret::new("TopSecret").unwrap())
        );
        assert!(!text.contains("TopSecret"));
    }

    struct FailingStore {
        load_fails: bool,
        saves: u32,
    }

    impl CredentialStore for FailingStore {
        type Error = ();
        async fn load(&mut self) -> Result<Option<DeviceCredentials>, ()> {
            if self.load_fails { Err(()) } else { Ok(None) }
        }
        async fn save(&mut self, _: &DeviceCredentials) -> Result<(), ()> {
            self.saves += 1;
            Err(())
        }
    }

    #[test]
    fn ensure_credentials_paths() {
        let secret = DeviceCredentials::DeviceSecret(Secret::new("s1").unwrap());
        // Empty store: registers once, saves once.
        let mut store = RamStore::new();
        let mut calls = 0;
        let p = embassy_futures::block_on(ensure_credentials(&mut store, async || {
            calls += 1;
            Ok(secret.clone())
        }))
        .unwrap();
        assert_eq!(p, Provisioned::Registered(secret.clone()));
        assert_eq!((calls, store.saves()), (1, 1));
        // Second boot: no registration.
        let p = embassy_futures::block_on(ensure_credentials(&mut store, async || {
            calls += 1;
            Err(CloudError::AlreadyActivated)
        }))
        .unwrap();
        assert_eq!(p, Provisioned::Stored(secret.clone()));
        assert!(!p.registered());
        assert_eq!((calls, store.saves()), (1, 1));
        // Registration refusal passes through, nothing saved.
        let mut empty = RamStore::new();
        let e = embassy_futures::block_on(ensure_credentials(&mut empty, async || {
            Err(CloudError::AlreadyActivated)
        }))
        .unwrap_err();
        assert_eq!(e, (CloudError::AlreadyActivated));
        assert_eq!(empty.saves(), 0);
        // A store that cannot load: no registration.
        let mut broken = FailingStore {
            load_fails: true,
            saves: 0,
        };
        let mut called = false;
        let e = embassy_futures::block_on(ensure_credentials(&mut broken, async || {
            called = true;
            Ok(secret.clone())
        }))
        .unwrap_err();
        assert_eq!(e, (CloudError::Storage));
        assert!(!called);
        // A store that cannot save: the credentials are still returned.
        let mut unsaved = FailingStore {
            load_fails: false,
            saves: 0,
        };
        let p =
            embassy_futures::block_on(ensure_credentials(
                &mut unsaved,
                async || Ok(secret.clone()),
            ))
            .unwrap();
        assert_eq!(p, Provisioned::RegisteredNotSaved(secret.clone()));
        assert_eq!(p.credentials(), &secret);
        assert_eq!(unsaved.saves, 1);
    }
}
