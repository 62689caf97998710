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
    /// Use only this profile directory (unlock it, or create it), as `tern-node --profile` does.
    #[arg(long, env = "TERN_PROFILE", conflicts_with = "profiles")]
    profile: Option<std::path::PathBuf>,
    /// Where profiles live, one directory each (default: the platform data directory, e.g.
    /// ~/.local/share/tern, where tern-node's default profile `default` lives too).
    #[arg(long, env = "TERN_PROFILES")]
    profiles: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    tern_gui::init_logging();
    let args = Args::parse();
    let root = match (&args.profile, args.profiles) {
        (Some(dir), _) => dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            ),
        (None, Some(root)) => root,
        (None, None) => tern_gui::profiles::default_root()
            .ok_or_else(|| anyhow!("no home directory: pass --profiles DIR or --profile DIR"))?,
    };
    let pinned = args.profile;
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
            .with_app_id("org.tern.Tern")
            .with_icon(tern_gui::icon::window_icon()),
        ..Default::default()
    };
    eframe::run_native(
        "Tern",
        native,
        Box::new(move |cc| {
            let mut app = TernApp::from_creation_context(cc, options)?;
            if let Some(dir) = pinned {
                app.pin_profile(dir);
            }
            app.offer_tray();
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow!("{e}"))
    .context("the window could not be opened")
}
