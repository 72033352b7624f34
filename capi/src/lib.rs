//! C ABI over `macemu-ipc`.
