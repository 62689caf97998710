//! The system tray icon: a StatusNotifierItem on the D-Bus session bus (through `ksni`, pure Rust), for
//! desktops whose panel hosts such items (KDE Plasma, GNOME with the AppIndicator extension, Xfce,
//! Cinnamon, MATE, most Wayland bars). It shows the application icon with the unread count on it
//! ([`badge`]), says the count in its title and tooltip ("Tern — 3 unread"), and has a menu: "Show Tern",
//! "Quit". Activating it (a left click) shows the window.
//!
//! The app holds a [`Tray`]: it hands it the unread count when that changes ([`Tray::set_unread`]) and
//! takes the tray's [`TrayRequest`]s at the top of each frame ([`Tray::requests`]). The item itself runs
//! on a thread of its own, so the window never waits for D-Bus. Where there is no session bus or nothing
//! hosts tray items, that thread logs one debug line and ends: the app runs as it would without it.
//! The tray knows nothing of the node; the count comes from the model.

pub mod badge;
#[cfg(test)]
mod bus_test;

use std::sync::mpsc;

use ksni::TrayMethods;
use ksni::menu::{MenuItem, StandardItem};
use tokio::sync::watch;

/// The item's id: the app's id, as in its desktop entry.
pub const ID: &str = "org.tern.Tern";

/// Requests from the tray that wait for the app's next frame; more are dropped (clicks in a burst).
pub const MAX_PENDING_REQUESTS: usize = 8;

/// What the tray asks of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayRequest {
    /// Show the window (unhide, unminimise, raise): "Show Tern" or a click on the icon.
    Show,
    /// Quit the app: "Quit".
    Quit,
}

/// The item's title and tooltip: "Tern", or "Tern — 3 unread".
pub fn title(unread: u64) -> String {
    match unread {
        0 => "Tern".to_owned(),
        n => format!("Tern — {n} unread"),
    }
}

/// The app's side of the tray.
#[derive(Debug)]
pub struct Tray {
    unread: watch::Sender<u64>,
    requests: mpsc::Receiver<TrayRequest>,
}

impl Tray {
    /// Starts the tray item, showing `unread`, on a thread of its own and returns at once. `ctx` is
    /// asked to repaint when the tray has a request for the app.
    pub fn start(ctx: egui::Context, unread: u64) -> Self {
        let (tray, service) = Self::channels(ctx);
        tray.set_unread(unread);
        let spawned = std::thread::Builder::new()
            .name("tern-tray".to_owned())
            .spawn(move || service.run());
        if let Err(e) = spawned {
            tracing::debug!("no tray icon: its thread did not start: {e}");
        }
        tray
    }

    /// The app's side and the item's side, not yet running.
    fn channels(ctx: egui::Context) -> (Self, Service) {
        let (unread_tx, unread_rx) = watch::channel(0);
        let (requests_tx, requests_rx) = mpsc::sync_channel(MAX_PENDING_REQUESTS);
        let tray = Self {
            unread: unread_tx,
            requests: requests_rx,
        };
        let service = Service {
            unread: unread_rx,
            requests: requests_tx,
            ctx,
        };
        (tray, service)
    }

    /// Shows `unread` as the count; a count equal to the one shown is not sent again. Returns whether
    /// it was sent.
    pub fn set_unread(&self, unread: u64) -> bool {
        self.unread.send_if_modified(|shown| {
            let changed = *shown != unread;
            *shown = unread;
            changed
        })
    }

    /// The requests that came since the last call.
    pub fn requests(&self) -> Vec<TrayRequest> {
        self.requests.try_iter().collect()
    }
}

/// The item's side: runs the StatusNotifierItem until the app's [`Tray`] is dropped.
struct Service {
    unread: watch::Receiver<u64>,
    requests: mpsc::SyncSender<TrayRequest>,
    ctx: egui::Context,
}

impl Service {
    /// Runs on the tray's thread, on a runtime of its own.
    fn run(self) {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(self.serve()),
            Err(e) => tracing::debug!("no tray icon: no runtime for it: {e}"),
        }
    }

    async fn serve(mut self) {
        let item = Item::new(*self.unread.borrow_and_update(), self.requests, self.ctx);
        let handle = match item.spawn().await {
            Ok(handle) => handle,
            Err(e) => {
                tracing::debug!("no tray icon: {e}");
                return;
            }
        };
        // Until the app drops its side.
        while self.unread.changed().await.is_ok() {
            let unread = *self.unread.borrow_and_update();
            if handle
                .update(|item| item.set_unread(unread))
                .await
                .is_none()
            {
                break;
            }
        }
        handle.shutdown().await;
    }
}

/// The StatusNotifierItem as `ksni` serves it.
struct Item {
    unread: u64,
    pixmap: ksni::Icon,
    requests: mpsc::SyncSender<TrayRequest>,
    ctx: egui::Context,
}

impl Item {
    fn new(unread: u64, requests: mpsc::SyncSender<TrayRequest>, ctx: egui::Context) -> Self {
        let mut item = Self {
            unread,
            pixmap: ksni::Icon {
                width: 0,
                height: 0,
                data: Vec::new(),
            },
            requests,
            ctx,
        };
        item.set_unread(unread);
        item
    }

    fn set_unread(&mut self, unread: u64) {
        self.unread = unread;
        let icon = badge::draw(unread);
        self.pixmap = ksni::Icon {
            width: i32::try_from(icon.width).unwrap_or(0),
            height: i32::try_from(icon.height).unwrap_or(0),
            data: badge::argb(&icon),
        };
    }

    /// Hands `request` to the app and wakes it; dropped if the app has [`MAX_PENDING_REQUESTS`] waiting.
    fn request(&self, request: TrayRequest) {
        if self.requests.try_send(request).is_ok() {
            self.ctx.request_repaint();
        }
    }
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        ID.to_owned()
    }

    fn title(&self) -> String {
        title(self.unread)
    }

    fn icon_name(&self) -> String {
        // The installed icon's name, for hosts that prefer a themed icon; the pixmap carries the count.
        if self.unread == 0 {
            ID.to_owned()
        } else {
            String::new()
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        vec![self.pixmap.clone()]
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: title(self.unread),
            ..Default::default()
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.request(TrayRequest::Show);
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        vec![
            StandardItem {
                label: "Show Tern".to_owned(),
                activate: Box::new(|item: &mut Self| item.request(TrayRequest::Show)),
                ..Default::default()
            }
            .into(),
            MenuItem::Separator,
            StandardItem {
                label: "Quit".to_owned(),
                activate: Box::new(|item: &mut Self| item.request(TrayRequest::Quit)),
                ..Default::default()
            }
            .into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_says_the_unread_count() {
        assert_eq!(title(0), "Tern");
        assert_eq!(title(1), "Tern — 1 unread");
        assert_eq!(title(3), "Tern — 3 unread");
        assert_eq!(title(1234), "Tern — 1234 unread");
    }

    #[test]
    fn an_unchanged_count_is_not_sent_again() {
        let (tray, mut service) = Tray::channels(egui::Context::default());
        // The item starts at 0: telling it 0 sends nothing.
        assert!(!tray.set_unread(0));
        assert!(!service.unread.has_changed().unwrap());
        assert!(tray.set_unread(3));
        assert!(service.unread.has_changed().unwrap());
        assert_eq!(*service.unread.borrow_and_update(), 3);
        assert!(!tray.set_unread(3));
        assert!(!service.unread.has_changed().unwrap());
        assert!(tray.set_unread(0));
        assert_eq!(*service.unread.borrow_and_update(), 0);
    }

    #[test]
    fn the_items_title_tooltip_and_picture_follow_the_count() {
        let (_tray, service) = Tray::channels(egui::Context::default());
        let mut item = Item::new(0, service.requests, service.ctx);
        assert_eq!(ksni::Tray::title(&item), "Tern");
        assert_eq!(ksni::Tray::icon_name(&item), ID);
        let plain = item.pixmap.data.clone();
        item.set_unread(5);
        assert_eq!(ksni::Tray::title(&item), "Tern — 5 unread");
        assert_eq!(ksni::Tray::tool_tip(&item).title, "Tern — 5 unread");
        // With a count the badge must show: no themed icon in its place.
        assert_eq!(ksni::Tray::icon_name(&item), "");
        let pixmaps = ksni::Tray::icon_pixmap(&item);
        assert_eq!(pixmaps.len(), 1);
        assert_eq!((pixmaps[0].width, pixmaps[0].height), (64, 64));
        assert_eq!(pixmaps[0].data, badge::argb(&badge::draw(5)));
        assert_ne!(pixmaps[0].data, plain);
    }

    #[test]
    fn clicks_and_the_menu_reach_the_app_in_order_and_a_burst_is_bounded() {
        let (tray, service) = Tray::channels(egui::Context::default());
        let mut item = Item::new(0, service.requests, service.ctx);
        ksni::Tray::activate(&mut item, 0, 0);
        let menu = ksni::Tray::menu(&item);
        let labels: Vec<_> = menu
            .iter()
            .filter_map(|entry| match entry {
                MenuItem::Standard(s) => Some(s.label.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(labels, ["Show Tern", "Quit"]);
        for entry in menu {
            if let MenuItem::Standard(s) = entry {
                (s.activate)(&mut item);
            }
        }
        assert_eq!(
            tray.requests(),
            [TrayRequest::Show, TrayRequest::Show, TrayRequest::Quit]
        );
        assert!(tray.requests().is_empty());
        for _ in 0..MAX_PENDING_REQUESTS + 5 {
            ksni::Tray::activate(&mut item, 0, 0);
        }
        assert_eq!(tray.requests().len(), MAX_PENDING_REQUESTS);
    }

    #[test]
    fn the_apps_side_keeps_working_after_the_trays_thread_ended() {
        // What the app sees where no tray host exists: the item's side is gone.
        let (tray, service) = Tray::channels(egui::Context::default());
        drop(service);
        assert!(tray.set_unread(2));
        assert!(tray.requests().is_empty());
    }
}
