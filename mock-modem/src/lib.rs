//! mock modem (placeholder)
