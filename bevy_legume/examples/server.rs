//! A headless Bevy server on legume-rs: relays every client's chat lines
//! to everyone, logs positions, joins and leaves, and prints each peer's
//! live statistics every two seconds.
//!
//!     cargo run -p bevy_legume --example server -- --listen 127.0.0.1:40200 [--seconds 30]
//!
//! Then run `cargo run -p bevy_legume --example client` in other
//! terminals. Ctrl-C (or `--seconds`) stops it, telling the clients.

mod protocol;

use std::collections::HashMap;
use std::time::Duration;

use bevy_app::prelude::*;
use bevy_app::{AppExit, ScheduleRunnerPlugin, TerminalCtrlCHandlerPlugin};
use bevy_ecs::prelude::*;
use bevy_legume::prelude::*;

use protocol::{Position, Said, Say};

/// 60 frames a second.
const FRAME: Duration = Duration::from_micros(16_667);

/// Players by peer: the name a peer is known by.
#[derive(Default, Resource)]
struct Names(HashMap<PeerId, String>);

/// How many frames to run before exiting, if `--seconds` was given.
#[derive(Resource)]
struct FramesLeft(Option<u64>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = protocol::arg("--listen").unwrap_or_else(|| "127.0.0.1:40200".into());
    let seconds: Option<u64> = protocol::arg("--seconds").map(|s| s.parse()).transpose()?;

    let mut app = App::new();
    app.add_plugins((
        ScheduleRunnerPlugin::run_loop(FRAME),
        TerminalCtrlCHandlerPlugin,
        LegumeServerPlugin::new(protocol::factory(), Config::default()),
    ))
    .add_legume_message::<Say>()
    .add_legume_message::<Position>()
    .init_resource::<Names>()
    .insert_resource(FramesLeft(seconds.map(|s| s * 60)))
    .add_systems(
        Update,
        (joins_and_leaves, relay_chat, log_positions).chain(),
    )
    .add_systems(Update, print_stats.run_if(server_has_peers))
    .add_systems(Update, stop_after);

    app.world_mut()
        .resource_mut::<LegumeServer>()
        .listen(&*listen)?;
    println!("listening on {listen}");
    app.run();
    println!("server stopped");
    Ok(())
}

fn joins_and_leaves(
    mut names: ResMut<Names>,
    mut joined: MessageReader<ClientConnected>,
    mut left: MessageReader<ClientDisconnected>,
) {
    for c in joined.read() {
        println!("{} joined", c.client);
        names.0.insert(c.client, c.client.to_string());
    }
    for c in left.read() {
        println!("{} left: {}", c.client, c.reason);
        names.0.remove(&c.client);
    }
}

/// Every line goes to every client, the sender included (its echo tells it
/// the line made the round trip). A line starting with `/name ` renames
/// its sender instead.
fn relay_chat(
    mut lines: MessageReader<FromClient<Say>>,
    mut names: ResMut<Names>,
    mut server: ResMut<LegumeServer>,
) {
    for line in lines.read() {
        if let Some(name) = line.message.text.strip_prefix("/name ") {
            names.0.insert(line.client, name.to_owned());
            continue;
        }
        let from = names.0.get(&line.client).cloned().unwrap_or_default();
        println!("{from}: {}", line.message.text);
        let said = Said {
            from,
            text: line.message.text.clone(),
        };
        // A peer whose queue is full misses this line; the others get it.
        let _ = server.send_to_all(&said, Delivery::ReliableOrdered);
    }
}

fn log_positions(
    mut moves: MessageReader<FromClient<Position>>,
    names: Res<Names>,
    mut seen: Local<u64>,
) {
    // Positions come ten times a second per client: print one in fifty.
    for m in moves.read() {
        *seen += 1;
        if *seen % 50 == 1 {
            let who = names.0.get(&m.client).map_or("?", String::as_str);
            println!("{who} at ({:.1}, {:.1})", m.message.x, m.message.y);
        }
    }
}

fn print_stats(server: Res<LegumeServer>, mut frame: Local<u64>) {
    *frame += 1;
    if !frame.is_multiple_of(120) {
        return;
    }
    for (peer, live) in server.live_stats() {
        println!(
            "{peer}: rtt {:.1} ms, loss {:.1}%, {:.0} B/s in, {:.0} B/s out",
            live.rtt_ms,
            live.packet_loss * 100.0,
            live.in_bytes_per_s,
            live.out_bytes_per_s
        );
    }
}

fn stop_after(mut left: ResMut<FramesLeft>, mut exit: MessageWriter<AppExit>) {
    if let Some(n) = &mut left.0 {
        *n = n.saturating_sub(1);
        if *n == 0 {
            exit.write(AppExit::Success);
        }
    }
}
