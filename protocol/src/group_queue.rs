//! Group mail (docs/protocol.md §18.6): the names and keys a group's members use with the group queue on
//! a mailbox server, and the signatures over them.
//!
//! Both come from MLS exporter outputs that the caller computes with its group state (this crate knows no
//! MLS): the queue id is `MLS-Exporter(`[`QUEUE_ID_LABEL`]`, "", 16)` of the group's creation epoch, and
//! each epoch's auth key is the Ed25519 key whose seed is `MLS-Exporter(`[`QUEUE_AUTH_LABEL`]`, "", 32)`
//! of that epoch. Every member derives the same key, so a signature shows that *a* member of that epoch
//! signed, never which one.
//!
//! Signatures use the labelled form of §3 (`u8 len(label) ‖ label ‖ data`), strict Ed25519 on verification.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Writer};
use crate::crypto::sha256;
use crate::identity::signed_bytes;

/// The MLS exporter label of the queue id (16 bytes, creation epoch).
pub const QUEUE_ID_LABEL: &str = "tern/group/queue/v1";
/// The MLS exporter label of an epoch's auth key seed (32 bytes).
pub const QUEUE_AUTH_LABEL: &str = "tern/group/queue-auth/v1";
/// Queue ids are this long.
pub const QUEUE_ID_LEN: usize = 16;
/// A server peer id in signed bytes is at most this long (as for the owner proof of personal mail).
pub const MAX_SERVER_ID_BYTES: usize = 64;

/// Signature label: the first key of a queue, signed by itself (proof of possession).
pub const LABEL_QUEUE_OPEN: &[u8] = b"tern/group/queue/open/v1";
/// Signature label: the next epoch's key, signed by a key of the epoch before.
pub const LABEL_QUEUE_ROTATE: &[u8] = b"tern/group/queue/rotate/v1";
/// Signature label: a fetch, signed by a key of a registered epoch.
pub const LABEL_QUEUE_FETCH: &[u8] = b"tern/group/queue/fetch/v1";

/// A group queue's id: an exporter output known only to members (and the servers that hold the queue).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub [u8; QUEUE_ID_LEN]);

impl std::fmt::Debug for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Short: enough to tell queues apart in a log, not to name one to a server.
        write!(f, "QueueId({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// The SHA-256 of a group message as deposited: its id in a queue (duplicates are refused by it).
pub fn message_hash(message: &[u8]) -> [u8; 32] {
    sha256(&[message])
}

/// An epoch's public auth key, as registered with a queue.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EpochPublicKey([u8; 32]);

impl std::fmt::Debug for EpochPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochPublicKey({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A key rotation: the new epoch's key and whether it revokes earlier epochs' keys (a commit that removes
/// members), as the signed bytes carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The epoch the new key is for.
    pub epoch: u64,
    /// The new epoch's public key.
    pub new_key: EpochPublicKey,
    /// Keys of earlier epochs may fetch only what was deposited up to this rotation.
    pub revoke: bool,
}

fn open_data(queue: &QueueId, epoch: u64, key: &EpochPublicKey) -> Vec<u8> {
    let mut w = Writer::with_capacity(QUEUE_ID_LEN + 8 + 32);
    w.raw(&queue.0).u64(epoch).raw(&key.0);
    w.into_vec()
}

fn rotate_data(queue: &QueueId, rotation: &Rotation, message: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(QUEUE_ID_LEN + 8 + 32 + 1 + 32);
    w.raw(&queue.0)
        .u64(rotation.epoch)
        .raw(&rotation.new_key.0)
        .u8(u8::from(rotation.revoke))
        .raw(&message_hash(message));
    w.into_vec()
}

fn fetch_data(server: &[u8], nonce: &[u8; 32], queue: &QueueId, cursor: u64) -> Vec<u8> {
    let server = &server[..server.len().min(MAX_SERVER_ID_BYTES)];
    let mut w = Writer::with_capacity(1 + server.len() + 32 + QUEUE_ID_LEN + 8);
    w.bytes_u8(server).raw(nonce).raw(&queue.0).u64(cursor);
    w.into_vec()
}

impl EpochPublicKey {
    /// Accepts only a valid Ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
        VerifyingKey::from_bytes(&bytes).map_err(|_| DecodeError::Invalid {
            field: "epoch key",
            reason: "not an Ed25519 public key",
        })?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn verify(&self, label: &[u8], data: &[u8], signature: &[u8; 64]) -> Result<(), DecodeError> {
        let what = "group queue signature";
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| DecodeError::BadSignature(what))?;
        key.verify_strict(
            &signed_bytes(label, data),
            &Signature::from_bytes(signature),
        )
        .map_err(|_| DecodeError::BadSignature(what))
    }

    /// Checks a queue's first key's self-signature ([`EpochKey::sign_open`]).
    pub fn verify_open(
        &self,
        queue: &QueueId,
        epoch: u64,
        signature: &[u8; 64],
    ) -> Result<(), DecodeError> {
        self.verify(LABEL_QUEUE_OPEN, &open_data(queue, epoch, self), signature)
    }

    /// Checks that this (previous epoch's) key signed `rotation` together with `message`.
    pub fn verify_rotation(
        &self,
        queue: &QueueId,
        rotation: &Rotation,
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), DecodeError> {
        self.verify(
            LABEL_QUEUE_ROTATE,
            &rotate_data(queue, rotation, message),
            signature,
        )
    }

    /// Checks a fetch signature for this server (binary PeerId), nonce, queue and cursor.
    pub fn verify_fetch(
        &self,
        server: &[u8],
        nonce: &[u8; 32],
        queue: &QueueId,
        cursor: u64,
        signature: &[u8; 64],
    ) -> Result<(), DecodeError> {
        self.verify(
            LABEL_QUEUE_FETCH,
            &fetch_data(server, nonce, queue, cursor),
            signature,
        )
    }
}

/// An epoch's secret auth key. Zeroized when dropped; no `Debug`, no `Clone`.
pub struct EpochKey {
    signing: Box<SigningKey>,
}

impl EpochKey {
    /// The key whose Ed25519 seed is `MLS-Exporter(`[`QUEUE_AUTH_LABEL`]`, "", 32)` of the epoch.
    pub fn from_exporter(seed: &Zeroizing<[u8; 32]>) -> Self {
        Self {
            signing: Box::new(SigningKey::from_bytes(seed)),
        }
    }

    pub fn public(&self) -> EpochPublicKey {
        EpochPublicKey(self.signing.verifying_key().to_bytes())
    }

    fn sign(&self, label: &[u8], data: &[u8]) -> [u8; 64] {
        self.signing.sign(&signed_bytes(label, data)).to_bytes()
    }

    /// The self-signature that opens a queue with this (creation epoch's) key.
    pub fn sign_open(&self, queue: &QueueId, epoch: u64) -> [u8; 64] {
        self.sign(LABEL_QUEUE_OPEN, &open_data(queue, epoch, &self.public()))
    }

    /// Signs the next epoch's key (and the commit deposited with it) with this epoch's key.
    pub fn sign_rotation(&self, queue: &QueueId, rotation: &Rotation, message: &[u8]) -> [u8; 64] {
        self.sign(LABEL_QUEUE_ROTATE, &rotate_data(queue, rotation, message))
    }

    /// Signs a fetch from `cursor` for this server and nonce.
    pub fn sign_fetch(
        &self,
        server: &[u8],
        nonce: &[u8; 32],
        queue: &QueueId,
        cursor: u64,
    ) -> [u8; 64] {
        self.sign(LABEL_QUEUE_FETCH, &fetch_data(server, nonce, queue, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> EpochKey {
        EpochKey::from_exporter(&Zeroizing::new([byte; 32]))
    }

    #[test]
    fn signatures_bind_every_field() {
        let queue = QueueId([1; 16]);
        let k = key(2);
        let public = k.public();
        let open = k.sign_open(&queue, 0);
        assert!(public.verify_open(&queue, 0, &open).is_ok());
        assert!(public.verify_open(&queue, 1, &open).is_err());
        assert!(public.verify_open(&QueueId([9; 16]), 0, &open).is_err());

        let rotation = Rotation {
            epoch: 1,
            new_key: key(3).public(),
            revoke: true,
        };
        let sig = k.sign_rotation(&queue, &rotation, b"commit");
        assert!(
            public
                .verify_rotation(&queue, &rotation, b"commit", &sig)
                .is_ok()
        );
        assert!(
            public
                .verify_rotation(&queue, &rotation, b"other", &sig)
                .is_err()
        );
        let kept = Rotation {
            revoke: false,
            ..rotation
        };
        assert!(
            public
                .verify_rotation(&queue, &kept, b"commit", &sig)
                .is_err()
        );
        assert!(
            key(3)
                .public()
                .verify_rotation(&queue, &rotation, b"commit", &sig)
                .is_err()
        );

        let nonce = [4; 32];
        let fetch = k.sign_fetch(b"server-a", &nonce, &queue, 7);
        assert!(
            public
                .verify_fetch(b"server-a", &nonce, &queue, 7, &fetch)
                .is_ok()
        );
        assert!(
            public
                .verify_fetch(b"server-b", &nonce, &queue, 7, &fetch)
                .is_err()
        );
        assert!(
            public
                .verify_fetch(b"server-a", &nonce, &queue, 8, &fetch)
                .is_err()
        );
        assert!(
            public
                .verify_fetch(b"server-a", &[5; 32], &queue, 7, &fetch)
                .is_err()
        );
    }

    #[test]
    fn a_key_that_is_not_a_point_is_refused() {
        // y = 2 is not on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert!(EpochPublicKey::from_bytes(bytes).is_err());
        assert!(EpochPublicKey::from_bytes(*key(1).public().as_bytes()).is_ok());
    }
}
