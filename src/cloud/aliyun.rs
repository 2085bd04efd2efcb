//! Aliyun IoT helpers (work in progress).
