//! The streaming server: finds an emulator by pid, encodes its frames and audio, and serves browsers.

pub mod audio;
pub mod datachannel;
pub mod http;
pub mod keymap;
pub mod signaling;
pub mod video;
