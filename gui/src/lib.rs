//! tern-gui: the Tern desktop app (egui/eframe) over the `tern-node` Node handle.
//!
//! - [`model`]: the app's state, apart from drawing; node events and command results change it.
//! - [`screens`] and [`dialogs`]: drawing, one file per screen or dialog; each reads the model and
//!   returns [`action::Action`]s. [`chat`]: the virtualised message list, with [`bubble`] for one
//!   message (its menu, [`links`] in it) and [`file_card`] for a file message's card ([`picture`]: one opened
//!   at full size). [`widgets`]: shared pieces;
//!   [`timer_menu`]: the disappearing-message timer's badge and menu.
//! - [`views`]: what drawing keeps between frames (the text being typed, the list's layout).
//! - [`execute`]: performs the actions at the end of the frame, the only caller of the [`backend`]:
//!   the node on its own tokio runtime; work goes out, [`backend::Update`]s come back.
//! - [`app`]: the eframe app that ties a frame together.
//! - [`profiles`], [`qr`], [`timefmt`]: profiles on disk, QR codes, how times read; [`words`]: errors
//!   in plain words and counts. [`keys`]: the keyboard shortcuts; [`theme`]: focus ring and contrast;
//!   [`icon`]: the application icon; [`tray`]: the system tray icon with the unread count.
//! - [`fonts`]: the system's fonts behind egui's, so every script displays; [`bidi`]: right-to-left
//!   text put in visual order for display.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod action;
pub mod app;
pub mod avatar;
pub mod backend;
pub mod bidi;
pub mod bubble;
pub mod chat;
pub mod dialogs;
pub mod emoji;
pub mod execute;
pub mod file_card;
pub mod fonts;
pub mod icon;
pub mod keys;
pub mod links;
pub mod model;
pub mod picture;
pub mod profiles;
pub mod qr;
pub mod screens;
pub mod theme;
pub mod timefmt;
pub mod timer_menu;
pub mod tray;
pub mod views;
pub mod widgets;
pub mod words;

pub use app::TernApp;
pub use backend::Options;

/// Logs to stderr, filtered by `TERN_LOG` (default: warnings). For the binaries; the library only emits.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}
