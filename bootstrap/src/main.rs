//! The Tern community bootstrap node. The server arrives with the bootstrap issue.

fn main() {
    println!(
        "tern-bootstrap {}: the community node is not built yet; see README.md.",
        env!("CARGO_PKG_VERSION")
    );
}
