//! The guides' code blocks, compiled (and, where they need no real modem, run) as doctests:
//! `cargo test --doc` checks every ` ```rust ` block of `docs/` against the current API.
//! Only built by rustdoc's doctest pass (`#[cfg(doctest)]` in `lib.rs`). `docs/zh/firmware.md`
//! shows `examples/app`'s API: that crate compiles its block (`examples/app/src/lib.rs`).

/// `docs/getting-started.md`
#[doc = include_str!("../docs/getting-started.md")]
pub struct GettingStarted;

/// `docs/zh/getting-started.md`
#[doc = include_str!("../docs/zh/getting-started.md")]
pub struct GettingStartedZh;

/// `docs/power-saving.md`
#[doc = include_str!("../docs/power-saving.md")]
pub struct PowerSaving;

/// `docs/zh/power-saving.md`
#[doc = include_str!("../docs/zh/power-saving.md")]
pub struct PowerSavingZh;

/// `docs/power-wiring.md`
#[doc = include_str!("../docs/power-wiring.md")]
pub struct PowerWiring;

/// `docs/zh/power-wiring.md`
#[doc = include_str!("../docs/zh/power-wiring.md")]
pub struct PowerWiringZh;

/// `docs/aws-iot.md`
#[cfg(all(feature = "mqtt", feature = "mcu-tls"))]
#[doc = include_str!("../docs/aws-iot.md")]
pub struct AwsIot;

/// `docs/zh/aws-iot.md`
#[cfg(all(feature = "mqtt", feature = "mcu-tls"))]
#[doc = include_str!("../docs/zh/aws-iot.md")]
pub struct AwsIotZh;

/// `docs/aws-fleet-provisioning.md`
#[cfg(feature = "aws")]
#[doc = include_str!("../docs/aws-fleet-provisioning.md")]
pub struct AwsFleetProvisioning;

/// `docs/zh/aws-fleet-provisioning.md`
#[cfg(feature = "aws")]
#[doc = include_str!("../docs/zh/aws-fleet-provisioning.md")]
pub struct AwsFleetProvisioningZh;

/// `docs/aliyun.md`
#[cfg(feature = "aliyun")]
#[doc = include_str!("../docs/aliyun.md")]
pub struct Aliyun;

/// `docs/zh/aliyun.md`
#[cfg(feature = "aliyun")]
#[doc = include_str!("../docs/zh/aliyun.md")]
pub struct AliyunZh;
