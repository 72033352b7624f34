//! The streaming server: finds an emulator by pid, encodes its frames and audio, and serves browsers.

pub mod audio;
pub mod codec;
pub mod datachannel;
pub mod http;
pub mod input;
pub mod keymap;
pub mod limits;
pub mod origin;
pub mod peer;
pub mod server;
pub mod signaling;
pub mod supervisor;
pub mod video;
pub mod whep;
