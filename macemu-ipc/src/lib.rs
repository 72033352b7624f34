//! The macemu v4 IPC protocol: shared-memory frames and audio, eventfd signalling and binary input
//! messages over a Unix socket, for both the emulator (publisher) and the server (subscriber).
