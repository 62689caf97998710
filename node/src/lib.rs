//! tern-node: placeholder until the node issue lands.
