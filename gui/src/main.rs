//! `tern-gui`: the desktop app.

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use tern_gui::{Options, TernApp};
use tern_node::profile::KdfParams;

#[derive(Parser, Debug)]
#[command(
    name = "tern-gui",
    version,
    about = "Tern: private messages, person to person"
)]
struct Args {
    /// Where profiles live (default: the platform data directory, shared with tern-node).
    #[arg(long, env = "TERN_PROFILES")]
    profiles: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    tern_gui::init_logging();
    let args = Args::parse();
    let root = match args.profiles {
        Some(root) => root,
        None => tern_gui::profiles::default_root()
            .ok_or_else(|| anyhow!("no home directory: pass --profiles DIR"))?,
    };
    let options = Options {
        root,
        kdf: KdfParams::RFC9106_SECOND,
        network_override: None,
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tern")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([640.0, 420.0])
            .with_app_id("org.tern.Tern"),
        ..Default::default()
    };
    eframe::run_native(
        "Tern",
        native,
        Box::new(move |cc| Ok(Box::new(TernApp::from_creation_context(cc, options)?))),
    )
    .map_err(|e| anyhow!("{e}"))
    .context("the window could not be opened")
}
