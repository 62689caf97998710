//! The tray item on a private D-Bus session bus (`dbus-daemon --session`), read back over D-Bus as a
//! panel would read it. ksni finds the bus through `DBUS_SESSION_BUS_ADDRESS`, which a test must not
//! change in its own process (other tests read the environment), so the item runs in a child process:
//! this test binary again, running only [`tray_in_a_child_process`] with the private bus's address.
//! The test plays the panel's StatusNotifierWatcher. Skipped, with the reason printed, where there is no
//! `dbus-daemon`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use zbus::proxy::CacheProperties;

use super::{Tray, TrayRequest, badge};

/// Which side the child plays: "host" (a watcher is on the bus) or "no-host".
const CHILD_ENV: &str = "TERN_TRAY_TEST_CHILD";
/// What the child prints before each answer, to tell it from the test harness's own lines.
const ANSWER: &str = "tray-child: ";
/// How long a signal may take to come.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole test's bound (a cold start of two processes on a loaded machine).
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A panel's StatusNotifierWatcher: hands on the name of each item that registers.
struct Watcher {
    registered: mpsc::Sender<String>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(&self, service: String) {
        let _ = self.registered.send(service).await;
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// Starts `dbus-daemon --session` (ended when dropped) and returns it with its address; `None`, with
/// the reason printed, where it cannot run.
async fn private_bus() -> Option<(Child, String)> {
    let mut daemon = match Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(daemon) => daemon,
        Err(e) => {
            eprintln!(
                "SKIPPED: dbus-daemon does not run here ({e}); install dbus-daemon, as .ci/apt-packages does"
            );
            return None;
        }
    };
    let stdout = daemon.stdout.take()?;
    match BufReader::new(stdout).lines().next_line().await {
        Ok(Some(address)) => Some((daemon, address)),
        other => {
            eprintln!("SKIPPED: dbus-daemon --session printed no address ({other:?})");
            None
        }
    }
}

/// This test binary again, running only the child's side as `mode` against the bus at `address`.
fn child(mode: &str, address: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "tray::bus_test::tray_in_a_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The child's next answer: what follows [`ANSWER`] on its line (the harness may have begun the line
/// with "test … ... ").
async fn answer(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some((_, answer)) = line.split_once(ANSWER) {
            return answer.to_owned();
        }
    }
    panic!("the child ended without answering");
}

type Pixmaps = Vec<(i32, i32, Vec<u8>)>;
type ToolTip = (String, Pixmaps, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_answers_on_a_private_bus_with_the_unread_count() {
    tokio::time::timeout(TEST_TIMEOUT, run()).await.unwrap();
}

async fn run() {
    let Some((_daemon, address)) = private_bus().await else {
        return;
    };

    // No watcher on the bus: the item's thread gives up and ends, no panic, no hang.
    let status = child("no-host", &address)
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{status}");

    // A panel's watcher, then the item with 3 unread.
    let (registered_tx, mut registered) = mpsc::channel(4);
    let watcher = Watcher {
        registered: registered_tx,
    };
    let bus = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher)
        .unwrap()
        .build()
        .await
        .unwrap();
    let mut tray = child("host", &address).spawn().unwrap();
    let mut to_child = tray.stdin.take().unwrap();
    let mut from_child = BufReader::new(tray.stdout.take().unwrap()).lines();

    // Waits for the item to register, as a panel does.
    let name = registered.recv().await.unwrap();
    assert!(name.starts_with("org.kde.StatusNotifierItem-"), "{name}");
    let item = zbus::proxy::Builder::<zbus::Proxy<'_>>::new(&bus)
        .destination(name.as_str())
        .unwrap()
        .path("/StatusNotifierItem")
        .unwrap()
        .interface("org.kde.StatusNotifierItem")
        .unwrap()
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .unwrap();
    let title: String = item.get_property("Title").await.unwrap();
    assert_eq!(title, "Tern — 3 unread");
    let tool_tip: ToolTip = item.get_property("ToolTip").await.unwrap();
    assert_eq!(tool_tip.2, "Tern — 3 unread");
    let id: String = item.get_property("Id").await.unwrap();
    assert_eq!(id, super::ID);
    let pixmaps: Pixmaps = item.get_property("IconPixmap").await.unwrap();
    assert_eq!(pixmaps.len(), 1);
    assert_eq!((pixmaps[0].0, pixmaps[0].1), (64, 64));
    assert_eq!(pixmaps[0].2, badge::argb(&badge::draw(3)));

    // A new count: the item says its title changed, and the title carries it.
    let mut new_title = item.receive_signal("NewTitle").await.unwrap();
    to_child.write_all(b"12\n").await.unwrap();
    tokio::time::timeout(SIGNAL_TIMEOUT, new_title.next())
        .await
        .expect("the item never said its title changed")
        .unwrap();
    let title: String = item.get_property("Title").await.unwrap();
    assert_eq!(title, "Tern — 12 unread");
    let pixmaps: Pixmaps = item.get_property("IconPixmap").await.unwrap();
    assert_eq!(pixmaps[0].2, badge::argb(&badge::draw(12)));

    // A click on the icon reaches the app as "show the window".
    let () = item.call("Activate", &(0i32, 0i32)).await.unwrap();
    to_child.write_all(b"request\n").await.unwrap();
    assert_eq!(answer(&mut from_child).await, "Show");

    // Its input closing, the child drops its side of the tray and ends.
    drop(to_child);
    assert!(tray.wait().await.unwrap().success());
}

/// The item's side, in the child process that [`the_tray_answers_on_a_private_bus_with_the_unread_count`]
/// starts: reads counts (a number a line) and "request" (print the next request) from stdin until it
/// closes.
#[test]
#[ignore = "the child process of the_tray_answers_on_a_private_bus_with_the_unread_count"]
fn tray_in_a_child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    if mode == "no-host" {
        // Returns once the item has found no watcher.
        let (_tray, service) = Tray::channels(egui::Context::default());
        service.run();
        return;
    }
    let tray = Tray::start(egui::Context::default(), 3);
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        if line == "request" {
            let request: TrayRequest = tray.requests.recv_timeout(TEST_TIMEOUT).unwrap();
            let mut out = std::io::stdout();
            writeln!(out, "{ANSWER}{request:?}").unwrap();
            out.flush().unwrap();
        } else {
            tray.set_unread(line.parse().unwrap());
        }
    }
}
