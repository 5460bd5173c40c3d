//! `game-server`: the example game's server. Run `game-server --help` for
//! the flags; `game-server --demo` plays a short game with bots and prints
//! what each saw.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use legume_game_client::bot::{verify, BotReport};
use legume_game_protocol::cli::{init_logging, run_main, Args, NetFlags, NET_FLAGS, NET_USAGE};
use legume_game_protocol::DEFAULT_PORT;
use legume_game_server::{join_bots, spawn_bots, BotSpec, GameServer, ServerOptions};

fn usage() -> String {
    format!(
        "usage: game-server [--host HOST] [--port PORT] [--seconds S] [--bots N] [--stats] [--full-snapshots] [conditioner flags]\n       \
         game-server --demo [--bots N] [--seconds S] [--stats] [conditioner flags]\n\n  \
         --host HOST       address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)\n  \
         --port PORT       UDP port (default {DEFAULT_PORT}; with --demo, any free port)\n  \
         --seconds S       stop after S seconds (default: run until killed; with --demo, 6)\n  \
         --bots N          start N bot players in this process (with --demo, default 4)\n  \
         --demo            play a short game with bots, print what each saw, exit 0 if all is well\n  \
         --stats           print a table of the peers every second (legume's live stats)\n  \
         --full-snapshots  send every snapshot whole, not as a delta against the client's last acknowledged one\n  \
         --seed N          seed of the spawn points, the bots and the conditioner (default 1)\n\
         {NET_USAGE}\n  \
         (the conditioner impairs the server's socket, so every client's traffic)\n\n\
         Logs: RUST_LOG=legume_net=debug (default warn) on stderr."
    )
}

fn main() -> ExitCode {
    init_logging(Some("warn"));
    let args = Args::from_env();
    run_main("game-server", &args, usage, run)
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let mut with_value = vec!["--host", "--port", "--seconds", "--bots", "--seed"];
    with_value.extend(NET_FLAGS);
    args.check(&with_value, &["--demo", "--stats", "--full-snapshots"])?;
    let demo = args.flag("--demo");
    let host: String = args.value("--host")?.unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args
        .value("--port")?
        .unwrap_or(if demo { 0 } else { DEFAULT_PORT });
    let listen: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let seconds: Option<f64> = args.value("--seconds")?;
    if seconds.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err("--seconds must be positive".into());
    }
    let bots: usize = args.value("--bots")?.unwrap_or(if demo { 4 } else { 0 });
    if bots > legume_game_protocol::MAX_PLAYERS {
        return Err(format!(
            "--bots: at most {} players",
            legume_game_protocol::MAX_PLAYERS
        ));
    }
    let seed: u64 = args.value("--seed")?.unwrap_or(1);
    let net = NetFlags::from_args(args)?;

    let options = ServerOptions {
        listen,
        net: net.config(seed),
        log: true,
        stats_every: args.flag("--stats").then_some(Duration::from_secs(1)),
        seed,
        delta_snapshots: !args.flag("--full-snapshots"),
    };
    let mut game = GameServer::start(options).map_err(|e| format!("{listen}: {e}"))?;
    let addr = game.local_addr();
    println!(
        "game server on {addr}, {} Hz{}",
        legume_game_protocol::TICK_RATE,
        if net.is_active() {
            format!(", conditioner: {}", net.describe())
        } else {
            String::new()
        }
    );

    if demo {
        let seconds = seconds.unwrap_or(6.0);
        println!("demo: {bots} bots play for {seconds} s, then each says what it saw\n");
        return Ok(play_with_bots(&mut game, bots, seconds, seed, true));
    }
    if bots > 0 {
        // Without --seconds the bots play for a day; the server runs until killed.
        let life = seconds.map_or(86_400.0, |s| (s - 0.5).max(0.5));
        println!("{bots} bots join for {life} s; connect clients to {addr}");
        play_with_bots(&mut game, bots, life, seed, false);
        if let Some(s) = seconds {
            let end = Instant::now() + Duration::from_secs_f64((s - life).max(0.0));
            game.run_until(|_| Instant::now() >= end);
        } else {
            game.run_until(|_| false);
        }
    } else {
        println!(
            "connect with: cargo run -p legume-game-client -- --host {} --port {}",
            addr.ip(),
            addr.port()
        );
        match seconds {
            Some(s) => game.run_for(Duration::from_secs_f64(s)),
            None => game.run_until(|_| false),
        }
    }
    game.shutdown("server stopped", Duration::from_millis(300));
    let c = game.counters();
    println!(
        "server stopped after {} ticks: {} joined, {} left, {} chat lines",
        c.ticks, c.joined, c.left, c.chats
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the server while `count` bots play for `seconds`, prints their
/// reports, and with `check` verifies them: the exit code says whether every
/// bot saw every other and got every chat line exactly once.
fn play_with_bots(
    game: &mut GameServer,
    count: usize,
    seconds: f64,
    seed: u64,
    check: bool,
) -> ExitCode {
    let mut spec = BotSpec::new(count, Duration::from_secs_f64(seconds));
    spec.seed = seed * 100;
    let handles = spawn_bots(game.local_addr(), &spec);
    game.run_until(|_| handles.iter().all(|h| h.is_finished()));
    // Their goodbyes may still be on the way (a conditioner delays them).
    let end = Instant::now() + Duration::from_secs(1);
    game.run_until(|g| g.world().is_empty() || Instant::now() >= end);
    let reports: Vec<BotReport> = join_bots(handles);
    println!("\nwhat each bot saw:");
    for r in &reports {
        println!("{r}");
    }
    if !check {
        return ExitCode::SUCCESS;
    }
    let c = game.counters();
    println!(
        "\nserver: {} ticks, {} joined, {} left, {} chat lines relayed, {} input messages",
        c.ticks, c.joined, c.left, c.chats, c.inputs
    );
    match verify(&reports) {
        Ok(()) => {
            println!(
                "ok: all {count} bots saw each other, and every chat line reached every bot exactly once"
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            println!("PROBLEMS:");
            for p in problems {
                println!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}
