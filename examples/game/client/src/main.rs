//! `game-client`: the terminal client of the example game, or a headless
//! bot with `--bot`. Run `game-client --help` for the flags.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use legume_game_client::bot::{run_bot, BotConfig};
use legume_game_client::ui::{self, UiConfig};
use legume_game_protocol::cli::{init_logging, run_main, Args, NetFlags, NET_FLAGS, NET_USAGE};
use legume_game_protocol::DEFAULT_PORT;

fn usage() -> String {
    format!(
        "usage: game-client [--host HOST] [--port PORT] [--name NAME] [conditioner flags]\n       \
         game-client --bot [--seconds S] [--chats N] [--expect N] [--seed N] ...\n\n  \
         --host HOST       server host (default 127.0.0.1)\n  \
         --port PORT       server port (default {DEFAULT_PORT})\n  \
         --name NAME       player name (default player-PID)\n  \
         --bot             play headless: random moves and a chat line or two, then a summary\n  \
         --seconds S       bot: play for S seconds (default 10)\n  \
         --chats N         bot: chat lines to send (default 2)\n  \
         --expect N        bot: chat only once N players are in the game\n  \
         --seed N          seed of the bot's moves and of the conditioner (default: the PID)\n\
         {NET_USAGE}\n\n\
         Keys: arrows/WASD move, Enter opens the chat line, Esc or q quits.\n\
         Logs: RUST_LOG=legume_net=debug on stderr (a bot: warnings by default; \
         the game: redirect stderr, e.g. 2>client.log)."
    )
}

fn main() -> ExitCode {
    let args = Args::from_env();
    // A bot logs warnings by default; the terminal game logs only when
    // `RUST_LOG` is set (redirect stderr then, say `2>client.log`, or the
    // lines land on the game's screen).
    init_logging(args.flag("--bot").then_some("warn"));
    run_main("game-client", &args, usage, run)
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let mut with_value = vec![
        "--host",
        "--port",
        "--name",
        "--seconds",
        "--chats",
        "--expect",
        "--seed",
    ];
    with_value.extend(NET_FLAGS);
    args.check(&with_value, &["--bot"])?;
    let host: String = args.value("--host")?.unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.value("--port")?.unwrap_or(DEFAULT_PORT);
    let server: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let pid = std::process::id();
    let name: String = args
        .value("--name")?
        .unwrap_or_else(|| format!("player-{}", pid % 1000));
    let seed: u64 = args.value("--seed")?.unwrap_or(u64::from(pid));
    let net = NetFlags::from_args(args)?;

    if args.flag("--bot") {
        let seconds: f64 = args.value("--seconds")?.unwrap_or(10.0);
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err("--seconds must be positive".into());
        }
        let mut config = BotConfig::new(server, name, Duration::from_secs_f64(seconds));
        config.chats = args.value("--chats")?.unwrap_or(2);
        config.expect_players = args.value("--expect")?;
        config.seed = seed;
        config.net = net.config(seed);
        println!("bot {} playing on {server} for {seconds} s", config.name);
        let report = run_bot(config);
        println!("{report}");
        if report.id.is_none() {
            eprintln!(
                "game-client: bot {} did not join the game on {server}: {}",
                report.name, report.end
            );
        }
        let ok = report.end == "finished" && report.id.is_some();
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err("the interactive client needs a terminal; use --bot to play headless".into());
    }
    let config = UiConfig {
        server,
        name,
        net: net.config(seed),
        conditions: net.is_active().then(|| net.describe()),
    };
    match ui::run(config) {
        Ok(bye) => {
            println!("{bye}");
            Ok(ExitCode::SUCCESS)
        }
        // Not a usage error: say what happened, without the usage.
        Err(e) => {
            eprintln!("game-client: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
