//! The streaming server: finds an emulator by pid, encodes its frames and audio, and serves browsers.
