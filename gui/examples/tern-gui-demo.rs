//! `tern-gui-demo`: a populated demo profile, the real app opened on a chosen screen (for the README's
//! screenshots, taken by `scripts/screenshots.sh` under Xvfb), and the frame-time benchmark.
//!
//! ```text
//! tern-gui-demo populate --root DIR            # Alice's profile with conversations, contacts, receipts
//! tern-gui-demo show --root DIR --view VIEW    # the real window on conversation | verify | settings | network
//! tern-gui-demo bench [--messages N] [--emoji]  # CPU time per frame, scrolling an N-message conversation
//! ```
//!
//! An example, not a binary of the app: the demo profiles are written by the test kit
//! (`tern_testkit::demo`), which reaches into the engine and the store as no part of the app does.
//! `cargo run --release -p tern-gui --example tern-gui-demo -- bench`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tern_gui::action::Action;
use tern_gui::model::{Dialog, Screen};
use tern_gui::{Options, TernApp};
use tern_node::profile::{KdfParams, Password};
use tern_node::settings::NetworkSettings;
use tern_testkit::demo::{self, DEMO_PASSWORD};

/// When the process started, for the launch-to-main-window figure.
static LAUNCHED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[derive(Parser, Debug)]
#[command(name = "tern-gui-demo")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes Alice's populated profile under ROOT (others' profiles under ROOT/../demo-peers).
    Populate {
        #[arg(long)]
        root: PathBuf,
    },
    /// Opens the app on Alice's profile and goes to VIEW.
    Show {
        #[arg(long)]
        root: PathBuf,
        #[arg(long, value_enum)]
        view: View,
        #[arg(long)]
        light: bool,
    },
    /// Measures CPU time per frame while scrolling a long conversation, beside a short one.
    Bench {
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        #[arg(long, default_value_t = 400)]
        frames: usize,
        /// Messages with emoji (drawn as pictures) in a third of their words.
        #[arg(long)]
        emoji: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Conversation,
    Verify,
    Settings,
    Network,
}

fn password() -> Password {
    Password::new(DEMO_PASSWORD.to_owned())
}

/// The real app, unlocking Alice's profile and going to one screen, then printing "ready".
struct Show {
    app: TernApp,
    view: View,
    ready_frames: Option<u32>,
}

impl eframe::App for Show {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.app.logic(ctx, frame);
        if self.app.model.screen != Screen::Main || self.ready_frames.is_some() {
            return;
        }
        let bob = self
            .app
            .model
            .contacts
            .iter()
            .find(|c| c.name() == "Bob")
            .map(|c| c.key());
        if let Some(bob) = bob {
            self.app.open_conversation(bob, None);
        }
        self.app.model.dialog = match self.view {
            View::Conversation => None,
            View::Verify => Some(Dialog::Verify),
            View::Settings => Some(Dialog::Settings),
            View::Network => Some(Dialog::Network),
        };
        self.ready_frames = Some(0);
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
        if let Some(n) = &mut self.ready_frames {
            *n += 1;
            if *n == 1
                && let Some(launched) = LAUNCHED.get()
            {
                // The main window with the conversation has just been laid out for the first time.
                println!(
                    "main window drawn {:.0} ms after launch (Argon2id 64 MiB, t = 3 included)",
                    launched.elapsed().as_secs_f64() * 1000.0
                );
            }
            if *n == 30 {
                println!("ready");
            }
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        }
    }

    fn on_exit(&mut self, gl: Option<&eframe::glow::Context>) {
        self.app.on_exit(gl);
    }
}

fn show(root: &Path, view: View, light: bool) -> Result<()> {
    let options = Options {
        root: root.to_path_buf(),
        kdf: KdfParams::RFC9106_SECOND,
        network_override: Some(NetworkSettings {
            lan_only: true,
            mdns: false,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            ..NetworkSettings::default()
        }),
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tern")
            .with_inner_size([1100.0, 720.0])
            .with_position([0.0, 0.0]),
        persist_window: false,
        ..Default::default()
    };
    eframe::run_native(
        "Tern demo",
        native,
        Box::new(move |cc| {
            let mut app = TernApp::new(&cc.egui_ctx, options)?;
            app.model.dark = !light;
            let dir = root.join("Alice");
            app.perform(vec![Action::Unlock {
                dir,
                password: password(),
                create: None,
            }]);
            Ok(Box::new(Show {
                app,
                view,
                ready_frames: None,
            }))
        }),
    )
    .map_err(|e| anyhow!("{e}"))
}

/// Frame times of `frames` frames scrolling through a conversation of `messages` messages (with emoji
/// in them if `emoji`).
fn frame_times(messages: usize, frames: usize, emoji: bool) -> Result<Vec<Duration>> {
    let root = tempfile::tempdir()?;
    let (dir, peer_key) =
        demo::long_conversation(root.path(), messages, KdfParams::INSECURE_FOR_TESTS, emoji)?;
    let ctx = egui::Context::default();
    let mut app = TernApp::new(
        &ctx,
        Options {
            root: root.path().to_path_buf(),
            kdf: KdfParams::INSECURE_FOR_TESTS,
            network_override: Some(NetworkSettings {
                lan_only: true,
                mdns: false,
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
                ..NetworkSettings::default()
            }),
        },
    )?;
    app.perform(vec![Action::Unlock {
        dir,
        password: password(),
        create: None,
    }]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.model.screen != Screen::Main {
        if Instant::now() > deadline {
            bail!("the bench profile did not open");
        }
        app.backend.wait(&mut app.model, Duration::from_millis(200));
    }
    app.open_conversation(peer_key, None);
    // Load every page into the view, as scrolling to the top would.
    loop {
        while app.model.open.as_ref().is_some_and(|o| o.loading) {
            app.backend.wait(&mut app.model, Duration::from_millis(200));
        }
        let Some(cursor) = app.model.open.as_ref().and_then(|o| o.older) else {
            break;
        };
        app.perform(vec![Action::LoadOlder {
            conversation: peer_key.into(),
            before: cursor,
        }]);
    }
    let loaded = app.model.open.as_ref().map_or(0, |o| o.messages.len());
    if loaded != messages {
        bail!("loaded {loaded} of {messages} messages");
    }
    let frame = |ctx: &egui::Context, input: egui::RawInput, app: &mut TernApp| {
        let out = ctx.run_ui(input, |ui| {
            app.pump(ui.ctx());
            app.draw(ui);
        });
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
    };
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1100.0, 720.0));
    let input = |events: Vec<egui::Event>| egui::RawInput {
        screen_rect: Some(screen),
        events,
        ..Default::default()
    };
    for _ in 0..5 {
        frame(&ctx, input(Vec::new()), &mut app);
    }
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        // Scroll up in steps of a few screens, as a reader flicking back through history.
        let events = vec![
            egui::Event::PointerMoved(egui::pos2(500.0, 400.0)),
            egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, if i % 50 == 49 { -4000.0 } else { 600.0 }),
                modifiers: egui::Modifiers::NONE,
                phase: egui::TouchPhase::Move,
            },
        ];
        let t = Instant::now();
        frame(&ctx, input(events), &mut app);
        times.push(t.elapsed());
    }
    let node = app.model.node.take();
    app.backend.shutdown(node);
    Ok(times)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn bench(messages: usize, frames: usize, emoji: bool) -> Result<()> {
    // The baseline scrolls the same distance through a conversation a tenth as long (long enough that
    // every frame still brings new rows into view): per-frame cost that grew with the length would show
    // as a ratio near 10.
    let base_n = (messages / 10).max(5_000);
    println!(
        "tern-gui frame benchmark: {frames} frames scrolling (600 px up a frame, 4000 px down every 50th), \
         the app's whole frame: layout + tessellation, no GPU"
    );
    let mut long = frame_times(messages, frames, emoji)?;
    let mut short = frame_times(base_n, frames, emoji)?;
    long.sort();
    short.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| figure | {messages} messages | baseline: {base_n} messages | ratio |");
    println!("| --- | --- | --- | --- |");
    for (name, p) in [("median", 0.5), ("p99", 0.99)] {
        let (a, b) = (percentile(&long, p), percentile(&short, p));
        println!(
            "| CPU per frame, {name} | {:.3} ms | {:.3} ms | {:.2}x |",
            ms(a),
            ms(b),
            ms(a) / ms(b).max(1e-9)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    LAUNCHED.get_or_init(Instant::now);
    tern_gui::init_logging();
    match Args::parse().command {
        Command::Populate { root } => {
            demo::populate(&root)?;
            println!(
                "populated {} (password: {DEMO_PASSWORD:?})",
                root.join("Alice").display()
            );
            Ok(())
        }
        Command::Show { root, view, light } => show(&root, view, light),
        Command::Bench {
            messages,
            frames,
            emoji,
        } => bench(messages, frames, emoji),
    }
}
