//! `macemu-cli ipc`: inspect and tidy v4 IPC resources (`/dev/shm/macemu-video-<pid>`,
//! `/tmp/macemu-<pid>.sock`).

use clap::{Args, Subcommand};
use macemu_ipc::{clean_stale, list_emulators, EmulatorState};

#[derive(Args)]
pub struct IpcArgs {
    #[command(subcommand)]
    command: IpcCommand,
}

#[derive(Subcommand)]
enum IpcCommand {
    /// List emulators publishing v4 shared memory (live ones; --all adds leftovers of dead pids).
    List {
        /// Also show leftovers of processes that no longer exist.
        #[arg(long)]
        all: bool,
    },
    /// Remove shared memory and control sockets left behind by dead emulators (live ones are
    /// never touched).
    Clean,
}

pub fn run(args: IpcArgs) -> anyhow::Result<()> {
    match args.command {
        IpcCommand::List { all } => {
            let emulators: Vec<_> = list_emulators()
                .into_iter()
                .filter(|e| all || e.alive)
                .collect();
            if emulators.is_empty() {
                println!("no {}emulators found", if all { "" } else { "live " });
                return Ok(());
            }
            println!(
                "{:>8}  {:>9}  {:<8}  {:<5}  {:<5}  {:<6}",
                "PID", "SIZE", "STATE", "ALIVE", "VALID", "SOCKET"
            );
            for e in emulators {
                let state = match e.state {
                    Some(EmulatorState::Running) => "running",
                    Some(EmulatorState::Paused) => "paused",
                    Some(EmulatorState::Stopped) => "stopped",
                    None => "?",
                };
                println!(
                    "{:>8}  {:>9}  {:<8}  {:<5}  {:<5}  {:<6}",
                    e.pid,
                    format!("{}x{}", e.width, e.height),
                    state,
                    if e.alive { "yes" } else { "no" },
                    if e.valid { "yes" } else { "no" },
                    if e.socket { "yes" } else { "no" }
                );
            }
        }
        IpcCommand::Clean => {
            let removed = clean_stale();
            if removed.is_empty() {
                println!("nothing to clean");
            }
            for r in removed {
                for p in r.paths {
                    println!("removed {} (pid {} is gone)", p.display(), r.pid);
                }
            }
        }
    }
    Ok(())
}
