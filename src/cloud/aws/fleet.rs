//! Fleet provisioning by claim over MQTT (`$aws/certificates/...`,
//! `$aws/provisioning-templates/...`), JSON payloads.

use core::fmt;

use embassy_time::{Duration, Instant, with_timeout};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json_core::str::{EscapedStr, EscapedStringFragment};

use super::identity::{DeviceIdentity, IdentityStore};
use super::keys::{DeviceKey, MAX_CSR_PEM_LEN, SEC1_PEM_LEN};
use crate::Error;
use crate::cloud::CloudError;
use crate::mqtt::{MqttConnection, MqttError, MqttIo, QoS};

/// How long each wait (for room to send, for the answer) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest provisioning template name AWS allows (1–36 characters of `[0-9A-Za-z_-]`).
pub const MAX_TEMPLATE_NAME: usize = 36;

/// Most `deviceConfiguration` entries a [`RegisteredThing`] holds.
pub const MAX_DEVICE_CONFIGURATION: usize = 16;

/// Longest `errorCode` kept in a [`Rejection`].
pub const MAX_ERROR_CODE: usize = 64;

/// Longest `errorMessage` kept in a [`Rejection`] (longer ones are cut, see
/// [`Rejection::message_truncated`]).
pub const MAX_ERROR_MESSAGE: usize = 128;

/// Longest thing name AWS allows (and longest MQTT client id).
pub const MAX_THING_NAME: usize = 128;

/// Buffer that [`FleetProvisioning::provision_with_csr`] should get: AWS's certificate PEM
/// (about 1.3 KB), ownership token, certificate id, the SEC1 key PEM and the `RegisterThing`
/// answer, with headroom. An estimate, not a documented AWS figure: a response that does not
/// fit is reported as [`CloudError::ResponseTooLarge`] with its size.
pub const RECOMMENDED_CSR_BUFFER: usize = 4096;

/// Buffer that [`FleetProvisioning::provision_with_new_keys`] should get: as
/// [`RECOMMENDED_CSR_BUFFER`] plus AWS's 2048-bit RSA private key in PEM (about 1.7 KB).
pub const RECOMMENDED_KEYS_BUFFER: usize = 6144;

/// A fleet provisioning request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Operation {
    /// `CreateCertificateFromCsr`: AWS signs a CSR made on the device.
    CreateCertificateFromCsr,
    /// `CreateKeysAndCertificate`: AWS makes the key pair (RSA 2048) and the certificate.
    CreateKeysAndCertificate,
    /// `RegisterThing`: runs the provisioning template, activates the certificate.
    RegisterThing,
}

impl Operation {
    /// The MQTT receive buffer (`rx_size` of [`Mqtt::new`](crate::mqtt::Mqtt::new)) the
    /// answer to this request should fit in: the whole PUBLISH packet (topic, properties and
    /// the JSON payload, in which every line break of a PEM takes two bytes).
    ///
    /// minimq announces its receive buffer to the broker as the MQTT 5 *Maximum Packet Size*,
    /// and a broker does not send a packet larger than that to the client: it **drops** it. A
    /// response that does not fit the receive buffer therefore never arrives, and the request
    /// ends in [`CloudError::NoResponse`]. These sizes are estimates with headroom (AWS does
    /// not document the sizes of its answers); see [`FleetProvisioning::with_rx_size`].
    pub const fn recommended_rx_size(self) -> usize {
        match self {
            Operation::CreateCertificateFromCsr => 4096,
            Operation::CreateKeysAndCertificate => 6144,
            Operation::RegisterThing => 2048,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Operation::CreateCertificateFromCsr => "CreateCertificateFromCsr",
            Operation::CreateKeysAndCertificate => "CreateKeysAndCertificate",
            Operation::RegisterThing => "RegisterThing",
        }
    }
}

/// What AWS said on a `/rejected` topic (`{"statusCode", "errorCode", "errorMessage"}`), kept
/// by [`FleetProvisioning::last_rejection`]. The request itself ends in
/// [`CloudError::Rejected`] with the status code.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rejection {
    /// The request that was rejected.
    pub operation: Operation,
    /// `statusCode` (e.g. 400), 0 if absent.
    pub status: u16,
    /// `errorCode`, if present and at most [`MAX_ERROR_CODE`] bytes (empty otherwise).
    pub error_code: heapless::String<MAX_ERROR_CODE>,
    /// `errorMessage`, cut to [`MAX_ERROR_MESSAGE`] bytes.
    pub error_message: heapless::String<MAX_ERROR_MESSAGE>,
    /// Whether `error_message` was cut (or `errorCode` was too long to keep).
    pub message_truncated: bool,
}

/// A certificate AWS issued (`CreateCertificateFromCsr` or `CreateKeysAndCertificate`), in the
/// caller's buffer. `Debug` never shows the ownership token or the private key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IssuedCertificate<'b> {
    /// `certificateId`.
    pub certificate_id: &'b str,
    /// `certificatePem`, unescaped (real line breaks).
    pub certificate_pem: &'b str,
    /// `certificateOwnershipToken`: proves the certificate is this device's to `RegisterThing`
    /// (valid for one hour). Secret.
    pub ownership_token: &'b str,
    /// `privateKey` (`CreateKeysAndCertificate` only), unescaped PEM. Secret.
    pub private_key_pem: Option<&'b str>,
}

impl fmt::Debug for IssuedCertificate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("certificate_id", &self.certificate_id)
            .field("certificate_pem", &self.certificate_pem.len())
            .field("ownership_token", &"***")
            .field("private_key_pem", &self.private_key_pem.map(|_| "***"))
            .finish()
    }
}

/// The `deviceConfiguration` of a `RegisterThing` answer: the string pairs of the template's
/// `DeviceConfiguration` section, in the caller's buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceConfiguration<'b> {
    entries: heapless::Vec<(&'b str, &'b str), MAX_DEVICE_CONFIGURATION>,
}

impl<'b> DeviceConfiguration<'b> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'b str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// All (key, value) pairs, in the order AWS sent them.
    pub fn iter(&self) -> impl Iterator<Item = (&'b str, &'b str)> + '_ {
        self.entries.iter().copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The answer to `RegisterThing`, in the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredThing<'b> {
    /// `thingName`: the client id to connect with from now on.
    pub thing_name: &'b str,
    /// `deviceConfiguration`.
    pub device_configuration: DeviceConfiguration<'b>,
}

/// The result of a whole provisioning run: the identity (already saved to the
/// [`IdentityStore`]) and the template's device configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned<'b> {
    /// The new identity; reconnect with [`DeviceIdentity::mqtt_config`].
    pub identity: DeviceIdentity<'b>,
    /// `deviceConfiguration` of the `RegisterThing` answer.
    pub device_configuration: DeviceConfiguration<'b>,
}

/// Fleet provisioning by claim: over an MQTT connection made with the **claim** certificate,
/// obtain the device's own certificate and register its thing.
///
/// Each request subscribes to its `/accepted` and `/rejected` topics, publishes (QoS 1), then
/// waits at most [`with_timeout`](Self::with_timeout) for the answer; messages on other topics
/// that arrive meanwhile are dropped. Answers are copied into a buffer of the caller, and one
/// that does not fit is [`CloudError::ResponseTooLarge`], never cut.
///
/// Errors: [`CloudError::Rejected`] (details in [`last_rejection`](Self::last_rejection)),
/// [`CloudError::InvalidResponse`], [`CloudError::NoResponse`] — **most often the answer was
/// larger than the MQTT receive buffer**, which the broker then drops (see
/// [`Operation::recommended_rx_size`]); otherwise the claim policy does not allow the topics,
/// or the template name is wrong — and [`CloudError::Mqtt`] or [`CloudError::Modem`] if the connection failed.
#[derive(Debug)]
pub struct FleetProvisioning<'t> {
    template: &'t str,
    timeout: Duration,
    rx_size: Option<usize>,
    rejection: Option<Rejection>,
}

fn valid_template(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TEMPLATE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_THING_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
}

type Topic = heapless::String<96>;

fn topic(parts: &[&str]) -> Result<Topic, CloudError> {
    let mut t = Topic::new();
    for p in parts {
        t.push_str(p).map_err(|_| CloudError::RequestTooLarge)?;
    }
    Ok(t)
}

impl<'t> FleetProvisioning<'t> {
    /// Provisioning with the template `template_name` (as created in AWS IoT:
    /// 1–36 characters of `[0-9A-Za-z_-]`, else [`CloudError::InvalidInput`]).
    pub fn new(template_name: &'t str) -> Result<Self, CloudError> {
        if !valid_template(template_name) {
            return Err(CloudError::InvalidInput);
        }
        Ok(Self {
            template: template_name,
            timeout: DEFAULT_TIMEOUT,
            rx_size: None,
            rejection: None,
        })
    }

    /// Sets how long each wait may take (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Tells the receive buffer size the connection was made with (`rx_size` of
    /// [`Mqtt::new`](crate::mqtt::Mqtt::new)). Each request then first checks it against
    /// [`Operation::recommended_rx_size`] and fails at once with
    /// [`CloudError::ResponseTooLarge`] (`needed` = the recommended size, `capacity` =
    /// `rx_size`) instead of waiting for an answer the broker would drop. Off by default.
    pub fn with_rx_size(mut self, rx_size: usize) -> Self {
        self.rx_size = Some(rx_size);
        self
    }

    /// The template name.
    pub fn template(&self) -> &'t str {
        self.template
    }

    /// What AWS said about the last request it rejected.
    pub fn last_rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }

    /// `CreateCertificateFromCsr`: sends a CSR for `key` (subject `CN=<common_name>`, which AWS
    /// ignores) and returns the certificate AWS signed, copied into `buf` (which also holds the
    /// request while it is sent). The private key never leaves the device.
    pub async fn create_certificate_from_csr<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        key: &DeviceKey,
        common_name: &str,
        buf: &'b mut [u8],
    ) -> Result<IssuedCertificate<'b>, CloudError> {
        self.csr_inner(conn, key, common_name, buf)
            .await
            .map(|(c, _)| c)
    }

    async fn csr_inner<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        key: &DeviceKey,
        common_name: &str,
        buf: &'b mut [u8],
    ) -> Result<(IssuedCertificate<'b>, &'b mut [u8]), CloudError> {
        let mut pem = [0u8; MAX_CSR_PEM_LEN];
        let n = key.csr_pem(common_name, &mut pem)?;
        let pem = pem.get(..n).ok_or(CloudError::InvalidInput)?;
        let pem = core::str::from_utf8(pem).map_err(|_| CloudError::InvalidInput)?;
        let len = csr_request(pem, buf)?;
        let op = Operation::CreateCertificateFromCsr;
        let base = "$aws/certificates/create-from-csr/json";
        self.exchange(conn, op, base, len, buf, |p, b| {
            parse_certificate(p, b, false)
        })
        .await
    }

    /// `CreateKeysAndCertificate`: AWS makes a key pair (RSA 2048) and a certificate and sends
    /// both; copied into `buf`. The private key crosses the network (inside TLS): prefer
    /// [`create_certificate_from_csr`](Self::create_certificate_from_csr) where the module
    /// accepts P-256 keys.
    pub async fn create_keys_and_certificate<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        buf: &'b mut [u8],
    ) -> Result<IssuedCertificate<'b>, CloudError> {
        self.keys_inner(conn, buf).await.map(|(c, _)| c)
    }

    async fn keys_inner<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        buf: &'b mut [u8],
    ) -> Result<(IssuedCertificate<'b>, &'b mut [u8]), CloudError> {
        let op = Operation::CreateKeysAndCertificate;
        self.exchange(conn, op, "$aws/certificates/create/json", 0, buf, |p, b| {
            parse_certificate(p, b, true)
        })
        .await
    }

    /// `RegisterThing` with the template: `ownership_token` from the issued certificate and
    /// the template `parameters` (e.g. `[("SerialNumber", "SN0001")]`). Returns the thing name
    /// and the device configuration, copied into `buf` (which also holds the request).
    pub async fn register_thing<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        ownership_token: &str,
        parameters: &[(&str, &str)],
        buf: &'b mut [u8],
    ) -> Result<RegisteredThing<'b>, CloudError> {
        self.register_inner(conn, ownership_token, parameters, buf)
            .await
            .map(|(t, _)| t)
    }

    async fn register_inner<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        ownership_token: &str,
        parameters: &[(&str, &str)],
        buf: &'b mut [u8],
    ) -> Result<(RegisteredThing<'b>, &'b mut [u8]), CloudError> {
        let len = register_request(ownership_token, parameters, buf)?;
        let base = topic(&[
            "$aws/provisioning-templates/",
            self.template,
            "/provision/json",
        ])?;
        self.exchange(conn, Operation::RegisterThing, &base, len, buf, parse_thing)
            .await
    }

    /// The whole claim flow with a key made here: generate a P-256 key from `rng`,
    /// `CreateCertificateFromCsr`, `RegisterThing` with `parameters`, then save the identity
    /// (certificate, SEC1 key PEM, thing name) to `store` in one call. Everything returned
    /// lives in `buf` ([`RECOMMENDED_CSR_BUFFER`]).
    ///
    /// Nothing is saved unless `RegisterThing` succeeded. If it fails, run the whole flow again
    /// (a new key and certificate; AWS deletes certificates whose token was not used within an
    /// hour).
    pub async fn provision_with_csr<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        rng: &mut impl rand_core::CryptoRngCore,
        csr_common_name: &str,
        parameters: &[(&str, &str)],
        store: &mut impl IdentityStore,
        buf: &'b mut [u8],
    ) -> Result<Provisioned<'b>, CloudError> {
        let key = DeviceKey::generate(rng);
        let (cert, rest) = self.csr_inner(conn, &key, csr_common_name, buf).await?;
        if rest.len() < SEC1_PEM_LEN {
            return Err(CloudError::ResponseTooLarge {
                needed: SEC1_PEM_LEN,
                capacity: rest.len(),
            });
        }
        let (key_buf, rest) = rest.split_at_mut(SEC1_PEM_LEN);
        let n = key.to_sec1_pem(key_buf)?;
        let key_pem = key_buf.get(..n).ok_or(CloudError::InvalidInput)?;
        let key_pem = core::str::from_utf8(key_pem).map_err(|_| CloudError::InvalidInput)?;
        self.finish(conn, cert, key_pem, parameters, store, rest)
            .await
    }

    /// The whole claim flow with `CreateKeysAndCertificate` (AWS makes the RSA key), then
    /// `RegisterThing` and one [`IdentityStore::save`]. Everything returned lives in `buf`
    /// ([`RECOMMENDED_KEYS_BUFFER`]).
    pub async fn provision_with_new_keys<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        parameters: &[(&str, &str)],
        store: &mut impl IdentityStore,
        buf: &'b mut [u8],
    ) -> Result<Provisioned<'b>, CloudError> {
        let (cert, rest) = self.keys_inner(conn, buf).await?;
        let key_pem = cert.private_key_pem.ok_or(CloudError::InvalidResponse)?;
        self.finish(conn, cert, key_pem, parameters, store, rest)
            .await
    }

    async fn finish<'b, IO: MqttIo>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        cert: IssuedCertificate<'b>,
        key_pem: &'b str,
        parameters: &[(&str, &str)],
        store: &mut impl IdentityStore,
        rest: &'b mut [u8],
    ) -> Result<Provisioned<'b>, CloudError> {
        let (thing, _) = self
            .register_inner(conn, cert.ownership_token, parameters, rest)
            .await?;
        let identity = DeviceIdentity {
            thing_name: thing.thing_name,
            certificate_id: cert.certificate_id,
            certificate_pem: cert.certificate_pem,
            private_key_pem: key_pem,
        };
        store.save(&identity)?;
        info!("provisioned as thing {}", thing.thing_name);
        Ok(Provisioned {
            identity,
            device_configuration: thing.device_configuration,
        })
    }

    /// Subscribe to `<base>/accepted` and `<base>/rejected`, publish `buf[..len]` to `base`,
    /// wait for the answer and parse an accepted one into `buf`.
    async fn exchange<'b, IO, T, F>(
        &mut self,
        conn: &mut MqttConnection<'_, '_, IO>,
        op: Operation,
        base: &str,
        len: usize,
        buf: &'b mut [u8],
        parse: F,
    ) -> Result<(T, &'b mut [u8]), CloudError>
    where
        IO: MqttIo,
        F: FnOnce(&[u8], &'b mut [u8]) -> Result<(T, &'b mut [u8]), CloudError>,
    {
        if let Some(rx) = self.rx_size
            && rx < op.recommended_rx_size()
        {
            return Err(CloudError::ResponseTooLarge {
                needed: op.recommended_rx_size(),
                capacity: rx,
            });
        }
        let accepted = topic(&[base, "/accepted"])?;
        let rejected = topic(&[base, "/rejected"])?;
        let deadline = Instant::now().saturating_add(self.timeout);
        for t in [&accepted, &rejected] {
            loop {
                match bounded(deadline, conn.subscribe(t, QoS::AtLeastOnce)).await? {
                    Err(e) if busy(&e) => make_progress(conn, deadline).await?,
                    r => break r?,
                }
            }
        }
        debug!("{}: publishing {} bytes", op.name(), len);
        loop {
            let request = buf.get(..len).ok_or(CloudError::RequestTooLarge)?;
            match bounded(deadline, conn.publish(base, request, QoS::AtLeastOnce)).await? {
                Err(e) if busy(&e) => make_progress(conn, deadline).await?,
                r => break r?,
            }
        }
        // The answer gets its own full timeout.
        let deadline = Instant::now().saturating_add(self.timeout);
        let mut pending = Some((buf, parse));
        loop {
            let Some(msg) = bounded(deadline, conn.poll()).await?? else {
                continue;
            };
            if msg.topic() == accepted.as_str() {
                let (buf, parse) = pending.take().ok_or(Error::InvalidState)?;
                return parse(msg.payload(), buf);
            }
            if msg.topic() == rejected.as_str() {
                let rejection = parse_rejection(op, msg.payload())?;
                let status = rejection.status;
                warn!("{} rejected with status {}", op.name(), status);
                self.rejection = Some(rejection);
                return Err(CloudError::Rejected { status });
            }
            debug!("dropping a message on another topic while waiting");
        }
    }
}

fn busy(e: &MqttError) -> bool {
    matches!(
        e,
        MqttError::NotReady | MqttError::InflightExhausted | MqttError::BufferTooSmall
    )
}

/// `fut`, unless `deadline` passes first ([`CloudError::NoResponse`]).
async fn bounded<F: core::future::Future>(
    deadline: Instant,
    fut: F,
) -> Result<F::Output, CloudError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(CloudError::NoResponse);
    }
    with_timeout(deadline.saturating_duration_since(now), fut)
        .await
        .map_err(|_| CloudError::NoResponse)
}

/// Lets acknowledgements come in so that minimq has room to send again.
async fn make_progress<IO: MqttIo>(
    conn: &mut MqttConnection<'_, '_, IO>,
    deadline: Instant,
) -> Result<(), CloudError> {
    bounded(deadline, conn.poll()).await??;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// JSON
// ------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct CsrRequest<'a> {
    #[serde(rename = "certificateSigningRequest")]
    csr: &'a str,
}

/// `{"certificateSigningRequest": "<pem>"}` into `out` (line breaks escaped).
fn csr_request(csr_pem: &str, out: &mut [u8]) -> Result<usize, CloudError> {
    serde_json_core::to_slice(&CsrRequest { csr: csr_pem }, out)
        .map_err(|_| CloudError::RequestTooLarge)
}

struct Parameters<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for Parameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct RegisterRequest<'a> {
    #[serde(rename = "certificateOwnershipToken")]
    token: &'a str,
    #[serde(rename = "parameters", skip_serializing_if = "Parameters::is_empty")]
    parameters: Parameters<'a>,
}

impl Parameters<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `{"certificateOwnershipToken": "...", "parameters": {...}}` into `out`.
fn register_request(
    token: &str,
    parameters: &[(&str, &str)],
    out: &mut [u8],
) -> Result<usize, CloudError> {
    if token.is_empty() || parameters.iter().any(|(k, _)| k.is_empty()) {
        return Err(CloudError::InvalidInput);
    }
    let req = RegisterRequest {
        token,
        parameters: Parameters(parameters),
    };
    serde_json_core::to_slice(&req, out).map_err(|_| CloudError::RequestTooLarge)
}

#[derive(Deserialize)]
struct CertificateResponse<'a> {
    #[serde(rename = "certificateId", borrow)]
    certificate_id: EscapedStr<'a>,
    #[serde(rename = "certificatePem", borrow)]
    certificate_pem: EscapedStr<'a>,
    #[serde(rename = "privateKey", borrow, default)]
    private_key: Option<EscapedStr<'a>>,
    #[serde(rename = "certificateOwnershipToken", borrow)]
    ownership_token: EscapedStr<'a>,
}

/// (key, value) pairs of a JSON object of strings; counts entries beyond the capacity.
#[derive(Default)]
struct Pairs<'a> {
    pairs: heapless::Vec<(EscapedStr<'a>, EscapedStr<'a>), MAX_DEVICE_CONFIGURATION>,
    total: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Pairs<'a>, M::Error> {
                let mut out = Pairs::default();
                // serde-json-core hands map keys out only as (raw, still escaped) `&str`.
                while let Some(k) = map.next_key::<&'de str>()? {
                    let k = EscapedStr(k);
                    let v = map.next_value::<EscapedStr<'de>>()?;
                    out.total = out.total.saturating_add(1);
                    let _ = out.pairs.push((k, v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(core::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RegisterResponse<'a> {
    #[serde(rename = "thingName", borrow)]
    thing_name: EscapedStr<'a>,
    #[serde(rename = "deviceConfiguration", borrow, default)]
    device_configuration: Pairs<'a>,
}

#[derive(Deserialize)]
struct ErrorResponse<'a> {
    #[serde(rename = "statusCode", default)]
    status: u16,
    #[serde(rename = "errorCode", borrow, default)]
    code: Option<EscapedStr<'a>>,
    #[serde(rename = "errorMessage", borrow, default)]
    message: Option<EscapedStr<'a>>,
}

/// Length of a JSON string once unescaped.
fn unescaped_len(s: EscapedStr<'_>) -> Result<usize, CloudError> {
    let mut n = 0usize;
    for f in s.fragments() {
        let len = match f.map_err(|_| CloudError::InvalidResponse)? {
            EscapedStringFragment::NotEscaped(t) => t.len(),
            EscapedStringFragment::Escaped(c) => c.len_utf8(),
        };
        n = n.checked_add(len).ok_or(CloudError::InvalidResponse)?;
    }
    Ok(n)
}

/// Unescapes `s` into the front of `*rest` (which must have room: sizes are checked first)
/// and advances `*rest` past it.
fn take_str<'b>(rest: &mut &'b mut [u8], s: EscapedStr<'_>) -> Result<&'b str, CloudError> {
    let n = unescaped_len(s)?;
    let buf = core::mem::take(rest);
    if buf.len() < n {
        return Err(CloudError::ResponseTooLarge {
            needed: n,
            capacity: buf.len(),
        });
    }
    let (head, tail) = buf.split_at_mut(n);
    *rest = tail;
    // The fragments add up to `n` bytes (measured above): each fits the rest of `head`.
    let mut free = &mut *head;
    for f in s.fragments() {
        let mut utf8 = [0u8; 4];
        let bytes = match f.map_err(|_| CloudError::InvalidResponse)? {
            EscapedStringFragment::NotEscaped(t) => t.as_bytes(),
            EscapedStringFragment::Escaped(c) => c.encode_utf8(&mut utf8).as_bytes(),
        };
        let (dst, after) = core::mem::take(&mut free)
            .split_at_mut_checked(bytes.len())
            .ok_or(CloudError::InvalidResponse)?;
        dst.copy_from_slice(bytes);
        free = after;
    }
    core::str::from_utf8(head).map_err(|_| CloudError::InvalidResponse)
}

/// Checks that strings of these unescaped lengths fit `capacity` together.
fn check_fits(lens: &[usize], capacity: usize) -> Result<(), CloudError> {
    let needed = lens
        .iter()
        .try_fold(0usize, |a, &l| a.checked_add(l))
        .unwrap_or(usize::MAX);
    if needed > capacity {
        return Err(CloudError::ResponseTooLarge { needed, capacity });
    }
    Ok(())
}

fn parse_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, CloudError> {
    serde_json_core::from_slice::<T>(payload)
        .map(|(v, _)| v)
        .map_err(|_| CloudError::InvalidResponse)
}

/// Parses a `create`/`create-from-csr` `accepted` answer into `buf`; returns it and the unused
/// rest of `buf`.
pub(crate) fn parse_certificate<'b>(
    payload: &[u8],
    buf: &'b mut [u8],
    with_key: bool,
) -> Result<(IssuedCertificate<'b>, &'b mut [u8]), CloudError> {
    let r: CertificateResponse<'_> = parse_json(payload)?;
    let key = match (with_key, r.private_key) {
        (true, None) => return Err(CloudError::InvalidResponse),
        (true, Some(k)) => Some(k),
        (false, _) => None,
    };
    let lens = [
        unescaped_len(r.certificate_id)?,
        unescaped_len(r.certificate_pem)?,
        unescaped_len(r.ownership_token)?,
        key.map(unescaped_len).transpose()?.unwrap_or(0),
    ];
    if lens[0] == 0 || lens[2] == 0 {
        return Err(CloudError::InvalidResponse);
    }
    check_fits(&lens, buf.len())?;
    let mut rest = buf;
    let certificate_id = take_str(&mut rest, r.certificate_id)?;
    let certificate_pem = take_str(&mut rest, r.certificate_pem)?;
    let ownership_token = take_str(&mut rest, r.ownership_token)?;
    let private_key_pem = key.map(|k| take_str(&mut rest, k)).transpose()?;
    if !certificate_pem.starts_with("-----BEGIN CERTIFICATE-----")
        || private_key_pem.is_some_and(|k| !k.starts_with("-----BEGIN "))
    {
        return Err(CloudError::InvalidResponse);
    }
    Ok((
        IssuedCertificate {
            certificate_id,
            certificate_pem,
            ownership_token,
            private_key_pem,
        },
        rest,
    ))
}

/// Parses a `RegisterThing` `accepted` answer into `buf`.
pub(crate) fn parse_thing<'b>(
    payload: &[u8],
    buf: &'b mut [u8],
) -> Result<(RegisteredThing<'b>, &'b mut [u8]), CloudError> {
    let r: RegisterResponse<'_> = parse_json(payload)?;
    let pairs = &r.device_configuration;
    if pairs.total > MAX_DEVICE_CONFIGURATION {
        return Err(CloudError::ResponseTooLarge {
            needed: pairs.total,
            capacity: MAX_DEVICE_CONFIGURATION,
        });
    }
    let mut needed = unescaped_len(r.thing_name)?;
    for (k, v) in &pairs.pairs {
        needed = needed
            .saturating_add(unescaped_len(*k)?)
            .saturating_add(unescaped_len(*v)?);
    }
    check_fits(&[needed], buf.len())?;
    let mut rest = buf;
    let thing_name = take_str(&mut rest, r.thing_name)?;
    if !valid_thing_name(thing_name) {
        return Err(CloudError::InvalidResponse);
    }
    let mut device_configuration = DeviceConfiguration::default();
    for (k, v) in &pairs.pairs {
        let k = take_str(&mut rest, *k)?;
        let v = take_str(&mut rest, *v)?;
        // Cannot fail: at most MAX_DEVICE_CONFIGURATION pairs were kept.
        let _ = device_configuration.entries.push((k, v));
    }
    Ok((
        RegisteredThing {
            thing_name,
            device_configuration,
        },
        rest,
    ))
}

/// Copies `s` unescaped into a bounded string, cutting at a character boundary; returns whether
/// it was cut.
fn bounded_copy<const N: usize>(
    s: EscapedStr<'_>,
    out: &mut heapless::String<N>,
) -> Result<bool, CloudError> {
    let mut cut = false;
    for f in s.fragments() {
        let mut utf8 = [0u8; 4];
        let text = match f.map_err(|_| CloudError::InvalidResponse)? {
            EscapedStringFragment::NotEscaped(t) => t,
            EscapedStringFragment::Escaped(c) => &*c.encode_utf8(&mut utf8),
        };
        for c in text.chars() {
            if out.push(c).is_err() {
                cut = true;
                break;
            }
        }
        if cut {
            break;
        }
    }
    Ok(cut)
}

/// Parses a `/rejected` answer.
pub(crate) fn parse_rejection(op: Operation, payload: &[u8]) -> Result<Rejection, CloudError> {
    let r: ErrorResponse<'_> = parse_json(payload)?;
    let mut rejection = Rejection {
        operation: op,
        status: r.status,
        error_code: heapless::String::new(),
        error_message: heapless::String::new(),
        message_truncated: false,
    };
    if let Some(code) = r.code
        && bounded_copy(code, &mut rejection.error_code)?
    {
        // A cut error code would be misleading: keep none.
        rejection.error_code.clear();
        rejection.message_truncated = true;
    }
    if let Some(message) = r.message
        && bounded_copy(message, &mut rejection.error_message)?
    {
        rejection.message_truncated = true;
    }
    Ok(rejection)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIU\\n-----END CERTIFICATE-----\\n";
    const CERT_UNESCAPED: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

    fn cert_json(extra: &str) -> heapless::String<512> {
        let mut s = heapless::String::new();
        fmt::write(
            &mut s,
            format_args!(
                "{{\"certificateId\":\"c0ffee\",\"certificatePem\":\"{CERT}\",\
                 \"certificateOwnershipToken\":\"tok\\/en\"{extra}}}"
            ),
        )
        .unwrap();
        s
    }

    #[test]
    fn certificate_answer_is_unescaped_into_the_buffer() {
        let json = cert_json("");
        let mut buf = [0u8; 256];
        let (c, rest) = parse_certificate(json.as_bytes(), &mut buf, false).unwrap();
        assert_eq!(c.certificate_id, "c0ffee");
        assert_eq!(c.certificate_pem, CERT_UNESCAPED);
        assert_eq!(c.ownership_token, "tok/en");
        assert_eq!(c.private_key_pem, None);
        let used = 6 + CERT_UNESCAPED.len() + 6;
        assert_eq!(rest.len(), 256 - used);
    }

    #[test]
    fn certificate_answer_with_key() {
        let json = cert_json(
            ",\"privateKey\":\"-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\n-----END RSA PRIVATE KEY-----\\n\"",
        );
        let mut buf = [0u8; 256];
        let (c, _) = parse_certificate(json.as_bytes(), &mut buf, true).unwrap();
        assert_eq!(
            c.private_key_pem,
            Some("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
        );
        let mut s = heapless::String::<256>::new();
        fmt::write(&mut s, format_args!("{c:?}")).unwrap();
        assert!(!s.contains("AAAA") && !s.contains("tok/en"), "{s}");
        // CreateKeysAndCertificate without a key is not a valid answer.
        let json = cert_json("");
        assert_eq!(
            parse_certificate(json.as_bytes(), &mut buf, true).err(),
            Some(CloudError::InvalidResponse)
        );
    }

    #[test]
    fn too_small_buffer_is_a_typed_error() {
        let json = cert_json("");
        let needed = 6 + CERT_UNESCAPED.len() + 6;
        for cap in [0, 10, needed - 1] {
            let mut buf = [0u8; 256];
            assert_eq!(
                parse_certificate(json.as_bytes(), &mut buf[..cap], false).err(),
                Some(CloudError::ResponseTooLarge {
                    needed,
                    capacity: cap
                })
            );
        }
        let mut buf = [0u8; 256];
        assert!(parse_certificate(json.as_bytes(), &mut buf[..needed], false).is_ok());
    }

    #[test]
    fn wrong_json_is_invalid_response() {
        let mut buf = [0u8; 256];
        for bad in [
            &b"not json"[..],
            b"{}",
            b"{\"certificateId\":1,\"certificatePem\":\"x\",\"certificateOwnershipToken\":\"t\"}",
            b"{\"certificateId\":\"c\",\"certificatePem\":\"not a pem\",\"certificateOwnershipToken\":\"t\"}",
            b"{\"certificateId\":\"c\",\"certificatePem\":\"-----BEGIN CERTIFICATE-----\\q\",\"certificateOwnershipToken\":\"t\"}",
            b"{\"certificateId\":\"\",\"certificatePem\":\"-----BEGIN CERTIFICATE-----\",\"certificateOwnershipToken\":\"t\"}",
        ] {
            assert_eq!(
                parse_certificate(bad, &mut buf, false).err(),
                Some(CloudError::InvalidResponse),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn thing_answer() {
        let json = br#"{"deviceConfiguration":{"telemetryTopic":"dt\/thing-SN1\/telemetry","f\u0077":"1.2"},"thingName":"thing-SN1"}"#;
        let mut buf = [0u8; 128];
        let mut buf2 = [0u8; 128];
        let (t, _) = parse_thing(json, &mut buf2).unwrap();
        assert_eq!(t.thing_name, "thing-SN1");
        assert_eq!(t.device_configuration.len(), 2);
        assert_eq!(
            t.device_configuration.get("telemetryTopic"),
            Some("dt/thing-SN1/telemetry")
        );
        assert_eq!(t.device_configuration.get("fw"), Some("1.2"));
        assert_eq!(t.device_configuration.get("nope"), None);
        // No deviceConfiguration at all.
        {
            let (t, _) = parse_thing(br#"{"thingName":"a"}"#, &mut buf).unwrap();
            assert!(t.device_configuration.is_empty());
        }
        // Too small.
        assert_eq!(
            parse_thing(json, &mut buf[..20]).err(),
            Some(CloudError::ResponseTooLarge {
                needed: 9 + 14 + 22 + 2 + 3,
                capacity: 20
            })
        );
        // A thing name that cannot be a client id.
        assert_eq!(
            parse_thing(br#"{"thingName":"a b"}"#, &mut buf).err(),
            Some(CloudError::InvalidResponse)
        );
        assert_eq!(
            parse_thing(
                br#"{"thingName":"a","deviceConfiguration":{"k":1}}"#,
                &mut buf
            )
            .err(),
            Some(CloudError::InvalidResponse)
        );
    }

    #[test]
    fn too_many_configuration_entries() {
        let mut json = heapless::String::<1024>::new();
        json.push_str("{\"thingName\":\"t\",\"deviceConfiguration\":{")
            .unwrap();
        for i in 0..=MAX_DEVICE_CONFIGURATION {
            if i > 0 {
                json.push(',').unwrap();
            }
            fmt::write(&mut json, format_args!("\"k{i}\":\"v\"")).unwrap();
        }
        json.push_str("}}").unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(
            parse_thing(json.as_bytes(), &mut buf).err(),
            Some(CloudError::ResponseTooLarge {
                needed: MAX_DEVICE_CONFIGURATION + 1,
                capacity: MAX_DEVICE_CONFIGURATION
            })
        );
    }

    #[test]
    fn rejection() {
        let r = parse_rejection(
            Operation::RegisterThing,
            br#"{"statusCode":400,"errorCode":"InvalidParameters","errorMessage":"bad \"token\""}"#,
        )
        .unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.error_code, "InvalidParameters");
        assert_eq!(r.error_message, "bad \"token\"");
        assert!(!r.message_truncated);
        let mut long = heapless::String::<512>::new();
        long.push_str("{\"statusCode\":403,\"errorMessage\":\"")
            .unwrap();
        for _ in 0..200 {
            long.push('é').unwrap();
        }
        long.push_str("\"}").unwrap();
        let r = parse_rejection(Operation::RegisterThing, long.as_bytes()).unwrap();
        assert_eq!(r.status, 403);
        assert!(r.message_truncated);
        assert_eq!(r.error_message.len(), MAX_ERROR_MESSAGE);
        assert_eq!(
            parse_rejection(Operation::RegisterThing, b"[]"),
            Err(CloudError::InvalidResponse)
        );
    }

    #[test]
    fn requests() {
        let mut out = [0u8; 256];
        let n = csr_request("-----BEGIN X-----\nAB\n-----END X-----\n", &mut out).unwrap();
        assert_eq!(
            &out[..n],
            br#"{"certificateSigningRequest":"-----BEGIN X-----\nAB\n-----END X-----\n"}"#
        );
        assert_eq!(
            csr_request("-----BEGIN X-----\n", &mut out[..20]),
            Err(CloudError::RequestTooLarge)
        );
        let n = register_request(
            "t\"k",
            &[("SerialNumber", "SN1"), ("Model", "BG96")],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..n],
            br#"{"certificateOwnershipToken":"t\"k","parameters":{"SerialNumber":"SN1","Model":"BG96"}}"#
        );
        let n = register_request("tok", &[], &mut out).unwrap();
        assert_eq!(&out[..n], br#"{"certificateOwnershipToken":"tok"}"#);
        assert_eq!(
            register_request("", &[], &mut out),
            Err(CloudError::InvalidInput)
        );
        assert_eq!(
            register_request("tok", &[("", "v")], &mut out),
            Err(CloudError::InvalidInput)
        );
        assert_eq!(
            register_request("tok", &[("k", "v")], &mut out[..10]),
            Err(CloudError::RequestTooLarge)
        );
    }

    #[test]
    fn template_names() {
        assert!(FleetProvisioning::new("FleetTemplate_1-a").is_ok());
        assert!(FleetProvisioning::new("").is_err());
        assert!(FleetProvisioning::new("with space").is_err());
        assert!(FleetProvisioning::new("a/b").is_err());
        assert!(FleetProvisioning::new(&"x".repeat(37)).is_err());
    }
}
