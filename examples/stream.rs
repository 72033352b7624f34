//! The whole system in one command: the Mac Plus emulator (demo ROM) and the streaming server,
//! then open the printed URL in a browser.
//!
//! ```sh
//! cargo run --release --example stream                 # http://127.0.0.1:8080/
//! cargo run --release --example stream -- --codec png --http-port 9080 --signaling-port 9090
//! ```
//!
//! The emulator runs on threads of this process and publishes `/macemu-video-<pid>`; the server
//! attaches to it by pid exactly as it would to a separate `macemu-cli emulate`.

use macemu::emulator::{Emulator, EmulatorConfig};
use macemu::stream::peer::PeerOptions;
use macemu::stream::server::{self, Codec, ServeConfig};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: stream [--codec h264|png] [--http-port N] [--signaling-port N]");
        return Ok(());
    }
    let codec: Codec = arg(&args, "--codec")
        .unwrap_or_else(|| "h264".into())
        .parse()
        .map_err(anyhow::Error::msg)?;
    let http_port = arg(&args, "--http-port").map_or(Ok(8080), |p| p.parse())?;
    let signaling_port = arg(&args, "--signaling-port").map_or(Ok(8090), |p| p.parse())?;

    let emu = Emulator::start(EmulatorConfig::demo())?;
    println!(
        "emulator: pid {} ({}, {})",
        emu.pid(),
        emu.shm_name(),
        emu.socket_path().display()
    );

    let cfg = ServeConfig {
        http_port,
        signaling_port,
        codec,
        target_pid: Some(emu.pid()),
        peer: PeerOptions {
            stun: None,
            include_loopback: true,
            loopback_only: false,
            ..PeerOptions::default()
        },
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // SIGTERM (a service manager, `kill`) stops as cleanly as Ctrl-C: the emulator below then
        // unlinks its shared memory and socket, as `macemu-cli emulate` does. Both handlers are in
        // place before the URL is printed, so a signal sent as soon as it appears is caught.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let server = server::start(cfg).await?;
        println!(
            "open http://127.0.0.1:{}/  (Ctrl-C stops)",
            server.http_addr.port()
        );
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    emu.stop();
    Ok(())
}
