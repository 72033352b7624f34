//! `macemu-cli`: thin command-line front end over the macemu crates.

use clap::{Parser, Subcommand};

mod cmd_cpu;
mod cmd_disk;
mod cmd_emulate;
mod cmd_ipc;
mod cmd_serve;
mod cmd_trace;

#[derive(Parser)]
#[command(
    name = "macemu-cli",
    version,
    about = "Classic-Macintosh emulator streamed to a web browser"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run 68000 single-step test vectors (files or directories); prints one line per file.
    CpuTest(cmd_cpu::CpuTestArgs),
    /// Run a bare-68000 memory image (cpu68k.bin) to STOP and report D0, instructions, MIPS.
    CpuBench(cmd_cpu::CpuBenchArgs),
    /// Inspect v4 IPC resources: list emulators, clean leftovers of dead ones.
    Ipc(cmd_ipc::IpcArgs),
    /// Show the first instructions of a Mac Plus ROM run (demo ROM unless --rom), disassembled.
    Trace(cmd_trace::TraceArgs),
    /// Run the Mac Plus emulator (built-in demo ROM unless --rom) and publish it over v4 IPC.
    Emulate(cmd_emulate::EmulateArgs),
    /// Create blank SCSI disk images and describe existing ones.
    Disk(cmd_disk::DiskArgs),
    /// Stream an emulator to web browsers: WebRTC H.264 + Opus (or PNG), HTTP API, browser client.
    Serve(cmd_serve::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The DTLS handshake warns about every ClientHello extension it does not implement,
                // which modern browsers send on each connection.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,dtls::handshake=error")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::CpuTest(args) => cmd_cpu::run_test(args),
        Command::CpuBench(args) => cmd_cpu::run_bench(args),
        Command::Ipc(args) => cmd_ipc::run(args),
        Command::Trace(args) => cmd_trace::run(args),
        Command::Emulate(args) => cmd_emulate::run(args),
        Command::Serve(args) => cmd_serve::run(args),
        Command::Disk(args) => cmd_disk::run(args),
    }
}
