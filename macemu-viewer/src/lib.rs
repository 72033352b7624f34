//! Dev-only client side of `macemu-stream`, shared by its tests and benches: the headless viewer
//! ([`viewer`]), the in-process streaming harness ([`harness`]: a test emulator and a server on free
//! loopback ports) and the browser end-to-end harness ([`e2e`]: network namespace, `macemu-cli`,
//! headless Chromium). It is not published: the server library does not carry its client.

pub mod cargo;
pub mod e2e;
pub mod harness;
pub mod viewer;
