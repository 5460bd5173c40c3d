//! A headless Bevy client on legume-rs: connects, renames itself, says a
//! few lines (one a second), sends its position ten times a second, prints
//! what everyone says, and leaves once its own lines came back.
//!
//!     cargo run -p bevy_legume --example client -- --connect 127.0.0.1:40200 --name ann [--loss 0.05]
//!
//! `--loss` puts the network conditioner between it and the server: that
//! share of datagrams is dropped each way, and every line still arrives
//! once, in order.

mod protocol;

use std::time::Duration;

use bevy_app::prelude::*;
use bevy_app::{AppExit, ScheduleRunnerPlugin};
use bevy_ecs::prelude::*;
use bevy_legume::prelude::*;

use protocol::{Position, Said, Say};

const FRAME: Duration = Duration::from_micros(16_667);
/// Lines the client says before leaving.
const LINES: usize = 5;

#[derive(Resource)]
struct Player {
    name: String,
    said: usize,
    echoed: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = protocol::arg("--connect").unwrap_or_else(|| "127.0.0.1:40200".into());
    let name = protocol::arg("--name").unwrap_or_else(|| "player".into());
    let loss: f64 = protocol::arg("--loss").map_or(Ok(0.0), |s| s.parse())?;

    let mut config = Config::default();
    if loss > 0.0 {
        config.driver.conditioner = Some(Conditioner::symmetric(LinkConditions::lossy(loss), 1));
    }
    let mut app = App::new();
    app.add_plugins((
        ScheduleRunnerPlugin::run_loop(FRAME),
        LegumeClientPlugin::new(protocol::factory(), config),
    ))
    .add_legume_message::<Said>()
    .insert_resource(Player {
        name,
        said: 0,
        echoed: 0,
    })
    .add_systems(
        Update,
        (
            on_connect,
            // After on_connect: the rename goes out before the first line.
            (say_a_line, send_position).run_if(client_connected),
            show_chat,
            leave_when_done,
        )
            .chain(),
    );

    app.world_mut()
        .resource_mut::<LegumeClient>()
        .connect(&*server)?;
    println!("connecting to {server}");
    if app.run().is_error() {
        return Err("the connection failed".into());
    }
    Ok(())
}

fn on_connect(
    mut connected: MessageReader<ConnectedToServer>,
    mut client: ResMut<LegumeClient>,
    player: Res<Player>,
) -> Result {
    for _ in connected.read() {
        println!("connected as {}", player.name);
        let rename = Say {
            text: format!("/name {}", player.name),
        };
        client.send(&rename, Delivery::ReliableOrdered)?;
    }
    Ok(())
}

fn say_a_line(
    mut client: ResMut<LegumeClient>,
    mut player: ResMut<Player>,
    mut frame: Local<u64>,
) -> Result {
    *frame += 1;
    if *frame % 60 == 1 && player.said < LINES {
        player.said += 1;
        let line = Say {
            text: format!("line {} of {LINES}", player.said),
        };
        client.send(&line, Delivery::ReliableOrdered)?;
    }
    Ok(())
}

fn send_position(mut client: ResMut<LegumeClient>, mut frame: Local<u64>) -> Result {
    *frame += 1;
    if frame.is_multiple_of(6) {
        let t = *frame as f32 / 60.0;
        let at = Position {
            x: t,
            y: t.sin() * 10.0,
        };
        client.send(&at, Delivery::Unreliable)?;
    }
    Ok(())
}

fn show_chat(mut said: MessageReader<FromServer<Said>>, mut player: ResMut<Player>) {
    for line in said.read() {
        println!("{}: {}", line.message.from, line.message.text);
        if line.message.from == player.name {
            player.echoed += 1;
        }
    }
}

fn leave_when_done(
    player: Res<Player>,
    client: Res<LegumeClient>,
    mut rejected: MessageReader<ConnectRejected>,
    mut gone: MessageReader<DisconnectedFromServer>,
    mut exit: MessageWriter<AppExit>,
) {
    for r in rejected.read() {
        println!("refused: {}", r.reason);
        exit.write(AppExit::error());
    }
    for d in gone.read() {
        println!("disconnected: {}", d.reason);
        exit.write(AppExit::error());
    }
    if player.echoed >= LINES {
        let stats = client.stats();
        println!(
            "done: {} packets out, {} in, {} resends, rtt {:.1} ms",
            stats.out_packets, stats.in_packets, stats.resends, stats.latency_ms
        );
        exit.write(AppExit::Success);
    }
}
