//! The app's screens, each drawn from the [`Model`](crate::model::Model) (plus the text its fields hold)
//! and returning the [`Action`](crate::action::Action)s the person asked for:
//!
//! - [`start`]: the first screen, with [`unlock`] (choose a profile, enter its password) or
//!   [`create_profile`] (first run, or a new profile), or [`restore`] (a profile from a backup);
//! - [`main_window`]: the top bar, notices and layout of the unlocked app, around
//!   [`conversation_list`], [`conversation`] (the open conversation and its composer) and
//!   [`search_results`];
//! - [`toasts`]: short-lived notes and background errors over the corner of the window.

pub mod conversation;
pub mod conversation_list;
pub mod create_profile;
pub mod main_window;
pub mod restore;
pub mod search_results;
pub mod start;
pub mod toasts;
pub mod unlock;
