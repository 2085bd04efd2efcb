//! AWS IoT Core: the endpoint and its TLS settings, the device's X.509 identity (one device,
//! one secret), and **fleet provisioning by claim** (one product, one secret).
//!
//! # Connecting
//!
//! AWS IoT Core takes MQTT with a client certificate on port **8883** (plain mutual TLS) or on
//! port **443** with the ALPN protocol `x-amzn-mqtt-ca`. The TLS server name (SNI) must be the
//! account's ATS endpoint (`<prefix>-ats.iot.<region>.amazonaws.com`). [`Endpoint`] holds
//! these and produces the [`MqttConfig`] / [`TlsConfig`] pieces; the module's own TLS
//! (`Transport::ModemTls`) sets no ALPN, so port 443 needs TLS on the MCU (feature
//! `mcu-tls`).
//!
//! # Fleet provisioning by claim
//!
//! Every unit ships with the same claim certificate, whose AWS IoT policy only allows the
//! provisioning topics. On first boot the device connects with it and
//! [`FleetProvisioning`] obtains the device's own certificate — from a CSR made here
//! ([`DeviceKey`]; the private key never leaves the device) or from
//! `CreateKeysAndCertificate` — then calls `RegisterThing`, which creates the thing, attaches
//! the policy and activates the certificate. The new identity goes to the application's
//! [`IdentityStore`] in one call; the device then reconnects with it
//! ([`DeviceIdentity::mqtt_config`]).
//!
//! ```rust,no_run
//! use quectel::asynch::{Apn, Modem, TlsConfig};
//! use quectel::cloud::aws::{Endpoint, FleetProvisioning, IdentityStore, RamIdentityStore};
//! use quectel::mqtt::Mqtt;
//!
//! async fn first_boot(
//!     modem: &Modem<'_>,
//!     (ca, claim_cert, claim_key): (&[u8], &[u8], &[u8]),
//!     serial: &str,
//!     rng: &mut impl rand_core::CryptoRngCore,
//! ) -> Result<(), quectel::cloud::CloudError> {
//!     let endpoint = Endpoint::new("a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com")?;
//!     let mut store = RamIdentityStore::<4096>::new();
//!     // Claim connection: TLS context 1, any client id the claim policy allows.
//!     let tls = TlsConfig::new(ca).with_client_identity(claim_cert, claim_key);
//!     let config = endpoint.mqtt_config(serial, endpoint.modem_transport(1, tls)?, Apn::new("internet"))?;
//!     let mut mqtt_buf = [0u8; 8192];
//!     let rx = 4096; // fits the CreateCertificateFromCsr answer
//!     let mut mqtt = Mqtt::new(config, &mut mqtt_buf, rx)?;
//!     let mut conn = mqtt.connect(modem).await?;
//!     let mut fleet = FleetProvisioning::new("MyFleetTemplate")?.with_rx_size(rx);
//!     let mut buf = [0u8; 4096];
//!     let done = fleet
//!         .provision_with_csr(&mut conn, rng, serial, &[("SerialNumber", serial)], &mut store, &mut buf)
//!         .await?;
//!     drop(conn);
//!     // Reconnect as the thing, with the new certificate on TLS context 2.
//!     let config = done.identity.mqtt_config(&endpoint, ca, 2, Apn::new("internet"))?;
//!     let mut buf2 = [0u8; 4096];
//!     let mut mqtt = Mqtt::new(config, &mut buf2, 2048)?;
//!     let _conn = mqtt.connect(modem).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Buffer sizes
//!
//! Two buffers matter, and a too-small one of each fails differently:
//!
//! * **The MQTT receive buffer** (`rx_size` of [`Mqtt::new`](crate::mqtt::Mqtt::new)) must
//!   hold the whole answer packet. minimq announces it to the broker as the MQTT 5 *Maximum
//!   Packet Size*, and the broker **drops** a larger packet instead of sending it: the request
//!   then ends in [`CloudError::NoResponse`]. See [`Operation::recommended_rx_size`] and
//!   [`FleetProvisioning::with_rx_size`] (an up-front check).
//! * **The answer buffer** you pass to each request receives the unescaped fields. An answer
//!   that does not fit is [`CloudError::ResponseTooLarge`] with the size it needs; nothing is
//!   cut. See [`RECOMMENDED_CSR_BUFFER`] and [`RECOMMENDED_KEYS_BUFFER`].

pub(crate) mod fleet;
mod identity;
mod keys;
#[cfg(feature = "ota")]
pub mod ota;

pub use fleet::{
    DEFAULT_TIMEOUT, DeviceConfiguration, FleetProvisioning, IssuedCertificate,
    MAX_DEVICE_CONFIGURATION, MAX_ERROR_CODE, MAX_ERROR_MESSAGE, MAX_TEMPLATE_NAME, MAX_THING_NAME,
    Operation, Provisioned, RECOMMENDED_CSR_BUFFER, RECOMMENDED_KEYS_BUFFER, RegisteredThing,
    Rejection,
};
pub use identity::{DeviceIdentity, IdentityStore, RamIdentityStore};
pub use keys::{
    DeviceKey, MAX_COMMON_NAME, MAX_CSR_DER_LEN, MAX_CSR_PEM_LEN, SEC1_DER_LEN, SEC1_PEM_LEN,
    pem_encode, pem_len,
};
/// The P-256 crate, at the version [`DeviceKey::verifying_key`] returns a type of.
pub use p256;

use crate::asynch::{Apn, TlsConfig};
use crate::cloud::CloudError;
use crate::mqtt::{MqttConfig, Transport};

/// MQTT over TLS with a client certificate, no ALPN.
pub const MQTT_TLS_PORT: u16 = 8883;

/// MQTT over TLS with a client certificate on the HTTPS port; needs [`ALPN_MQTT_CA`].
pub const ALPN_PORT: u16 = 443;

/// The ALPN protocol name AWS IoT wants for MQTT with a client certificate on port 443
/// (on the wire: length byte 14, then these bytes).
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// [`ALPN_MQTT_CA`] as the protocol list TLS stacks take (e.g. `McuTlsConfig::with_alpn`).
pub const ALPN_PROTOCOLS: &[&[u8]] = &[ALPN_MQTT_CA];

/// Longest MQTT client id AWS IoT accepts (bytes).
pub const MAX_CLIENT_ID: usize = 128;

/// Longest DNS host name.
const MAX_HOST: usize = 253;

/// An AWS IoT Core data endpoint: host (the ATS endpoint; it is also the SNI), port, and
/// whether ALPN `x-amzn-mqtt-ca` is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Endpoint<'a> {
    host: &'a str,
    port: u16,
    alpn: bool,
}

impl<'a> Endpoint<'a> {
    /// The endpoint `host` (from `aws iot describe-endpoint --endpoint-type iot:Data-ATS`,
    /// e.g. `a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com`) on port 8883.
    /// [`CloudError::InvalidInput`] unless `host` is a DNS name or address (letters, digits,
    /// `.`, `-`, `:`; at most 253 bytes).
    pub fn new(host: &'a str) -> Result<Self, CloudError> {
        let ok = !host.is_empty()
            && host.len() <= MAX_HOST
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !ok {
            return Err(CloudError::InvalidInput);
        }
        Ok(Self {
            host,
            port: MQTT_TLS_PORT,
            alpn: false,
        })
    }

    /// Port 443 with ALPN `x-amzn-mqtt-ca` (for networks that block 8883). Needs TLS on the
    /// MCU: [`modem_transport`](Self::modem_transport) refuses it.
    pub fn via_port_443(mut self) -> Self {
        self.port = ALPN_PORT;
        self.alpn = true;
        self
    }

    /// Another port, keeping the ALPN choice (a local stand-in broker, a proxy).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The host name.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS server name to send (SNI): the endpoint host.
    pub fn server_name(&self) -> &'a str {
        self.host
    }

    /// The ALPN protocols to offer: `Some(ALPN_PROTOCOLS)` on port 443, else `None`.
    pub fn alpn(&self) -> Option<&'static [&'static [u8]]> {
        self.alpn.then_some(ALPN_PROTOCOLS)
    }

    /// Whether the host looks like an ATS data endpoint (`…-ats.iot.<region>.amazonaws.com`,
    /// or `.amazonaws.com.cn`). The legacy `iot:Data` endpoints use certificates AWS no longer
    /// supports.
    pub fn is_ats(&self) -> bool {
        let h = self.host;
        h.contains("-ats.iot.")
            && (h.ends_with(".amazonaws.com") || h.ends_with(".amazonaws.com.cn"))
    }

    /// TLS in the modem on SSL context `ssl_ctx` with `tls`, SNI on. The module sets no ALPN,
    /// so an endpoint on port 443 ([`via_port_443`](Self::via_port_443)) is
    /// [`CloudError::InvalidInput`]: use `Transport::Tcp` and TLS on the MCU there.
    pub fn modem_transport<'c>(
        &self,
        ssl_ctx: u8,
        mut tls: TlsConfig<'c>,
    ) -> Result<Transport<'c>, CloudError> {
        if self.alpn || ssl_ctx > 5 {
            return Err(CloudError::InvalidInput);
        }
        tls.sni = true;
        Ok(Transport::ModemTls { ssl_ctx, tls })
    }

    /// An [`MqttConfig`] for this endpoint (keep-alive 60 s, within AWS's 30–1200 s; session
    /// expiry 1 h, AWS's default maximum). `client_id` is the thing name once provisioned:
    /// 1–128 bytes, not starting with `$` (AWS reserves those), else
    /// [`CloudError::InvalidInput`].
    pub fn mqtt_config(
        &self,
        client_id: &'a str,
        transport: Transport<'a>,
        apn: Apn<'a>,
    ) -> Result<MqttConfig<'a>, CloudError> {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID || client_id.starts_with('$') {
            return Err(CloudError::InvalidInput);
        }
        Ok(MqttConfig::new(
            self.host, self.port, client_id, transport, apn,
        ))
    }

    /// TLS on the MCU for this endpoint: server name = the host, the ALPN of port 443 if
    /// chosen; `ca_der` is the trust anchor (Amazon Root CA 3 for P-256 chains).
    #[cfg(feature = "mcu-tls")]
    pub fn mcu_tls_config(&self, ca_der: &'a [u8]) -> crate::tls::McuTlsConfig<'a> {
        let config = crate::tls::McuTlsConfig::new(self.host, ca_der);
        match self.alpn() {
            Some(alpn) => config.with_alpn(alpn),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ports_and_alpn() {
        let e = Endpoint::new("a1b2c3-ats.iot.eu-west-1.amazonaws.com").unwrap();
        assert_eq!((e.port(), e.alpn()), (8883, None));
        assert!(e.is_ats());
        assert_eq!(e.server_name(), e.host());
        let tls = TlsConfig::new(b"ca");
        let Ok(Transport::ModemTls { ssl_ctx: 1, tls }) = e.modem_transport(1, tls) else {
            panic!("modem TLS on 8883")
        };
        assert!(tls.sni);
        let e443 = e.via_port_443();
        assert_eq!(e443.port(), 443);
        assert_eq!(e443.alpn(), Some(&[b"x-amzn-mqtt-ca".as_slice()][..]));
        assert_eq!(ALPN_MQTT_CA.len(), 14);
        assert!(matches!(
            e443.modem_transport(1, TlsConfig::new(b"ca")),
            Err(CloudError::InvalidInput)
        ));
        assert!(!Endpoint::new("iot.example.com").unwrap().is_ats());
        assert!(Endpoint::new("").is_err());
        assert!(Endpoint::new("bad\"host").is_err());
        assert!(Endpoint::new("a b").is_err());
    }

    #[test]
    fn client_ids() {
        let e = Endpoint::new("localhost").unwrap().with_port(1234);
        let apn = Apn::new("internet");
        let c = e.mqtt_config("thing-1", Transport::Tcp, apn).unwrap();
        assert_eq!(
            (c.host, c.port, c.client_id),
            ("localhost", 1234, "thing-1")
        );
        let long = [b'x'; 129];
        let long = core::str::from_utf8(&long).unwrap();
        assert!(e.mqtt_config(long, Transport::Tcp, apn).is_err());
        assert!(e.mqtt_config(&long[..128], Transport::Tcp, apn).is_ok());
        assert!(e.mqtt_config("", Transport::Tcp, apn).is_err());
        assert!(e.mqtt_config("$aws", Transport::Tcp, apn).is_err());
    }
}
