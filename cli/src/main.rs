//! `macemu-cli`: thin command-line front end over the macemu crates.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "macemu-cli", version, about = "Classic-Macintosh emulator streamed to a web browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {}
}
