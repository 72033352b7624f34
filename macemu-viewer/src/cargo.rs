//! A `cargo` command for builds that tests start themselves. No dependencies, so a crate's tests
//! that must not depend on the viewer crate include this file by path.

use std::process::Command;

/// `cargo`, without the variables cargo set for this test process. Build scripts that watch them
/// (ring's `rerun-if-env-changed=CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...) would see them change,
/// run again and rebuild everything above them: here, and again at the next build from a shell.
pub fn cargo_command() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| k.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&&*k)
        {
            cmd.env_remove(&*k);
        }
    }
    cmd
}
