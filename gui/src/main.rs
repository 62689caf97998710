//! The Tern desktop app. The egui app arrives with the GUI issue; until then this binary says so.

fn main() {
    println!(
        "tern-gui {}: the desktop app is not built yet. The protocol crate is complete; \
         see README.md for what runs today.",
        env!("CARGO_PKG_VERSION")
    );
}
