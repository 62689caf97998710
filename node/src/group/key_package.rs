//! KeyPackages: a member makes them (one fresh MLS signature key each, vouched for by its identity) and an
//! admin checks the ones it receives before adding them (§18.2, §18.4).

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Capabilities, CredentialWithKey, ExtensionType, KeyPackage, Lifetime,
    MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, ProtocolVersion, SignatureScheme,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use tern_protocol::codec::{Reader, Writer};
use tern_protocol::{Identity, IdentityKey};
use zeroize::Zeroizing;

use super::credential::MemberCredential;
use super::provider::{Provider, Snapshot, decode_snapshot, encode_snapshot};
use super::{
    CIPHERSUITE, GROUP_INFO_EXTENSION, GroupError, KEY_PACKAGE_LIFETIME_S, MAX_KEY_PACKAGE_LEN,
    MAX_WELCOME_LEN,
};

const PENDING_VERSION: u8 = 1;

/// The capabilities every Tern leaf advertises: the `tern_group_info` extension.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities::builder()
        .extensions(vec![ExtensionType::Unknown(GROUP_INFO_EXTENSION)])
        .build()
}

/// The private half of a KeyPackage this node handed out, kept (sealed) until a Welcome uses it.
pub struct PendingKeyPackage {
    pub(crate) hash_ref: Vec<u8>,
    pub(crate) signature_key: Vec<u8>,
    pub(crate) entries: Snapshot,
}

impl std::fmt::Debug for PendingKeyPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKeyPackage").finish_non_exhaustive()
    }
}

impl PendingKeyPackage {
    /// The KeyPackage's hash reference (the store's row key for it).
    pub fn hash_ref(&self) -> &[u8] {
        &self.hash_ref
    }

    /// `u8 version || vec16 hash_ref || vec16 signature_key || snapshot`; the store seals it.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(PENDING_VERSION)
            .bytes_u16(&self.hash_ref)
            .bytes_u16(&self.signature_key);
        encode_snapshot(&mut w, &self.entries);
        Zeroizing::new(w.into_vec())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let bad = |_| GroupError::Corrupt("pending key package");
        let mut r = Reader::new(bytes);
        if r.u8("version").map_err(bad)? != PENDING_VERSION {
            return Err(GroupError::Corrupt("pending key package version"));
        }
        let hash_ref = r.bytes_u16("hash ref", 64).map_err(bad)?.to_vec();
        let signature_key = r.bytes_u16("signature key", 64).map_err(bad)?.to_vec();
        let entries = decode_snapshot(&mut r)?;
        r.finish().map_err(bad)?;
        Ok(Self {
            hash_ref,
            signature_key,
            entries,
        })
    }
}

/// Makes a fresh KeyPackage for `identity`: its `MLSMessage` bytes (to send) and its private half (to keep).
pub fn new_key_package(identity: &Identity) -> Result<(Vec<u8>, PendingKeyPackage), GroupError> {
    let provider = Provider::default();
    let signer = SignatureKeyPair::new(SignatureScheme::ED25519).map_err(GroupError::mls)?;
    signer.store(provider.storage()).map_err(GroupError::mls)?;
    let public: [u8; 32] = signer
        .public()
        .try_into()
        .map_err(|_| GroupError::Mls("Ed25519 key of unexpected length".into()))?;
    let credential = BasicCredential::new(MemberCredential::issue(identity, &public));
    let with_key = CredentialWithKey {
        credential: credential.into(),
        signature_key: signer.public().into(),
    };
    let bundle = KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .key_package_lifetime(Lifetime::new(KEY_PACKAGE_LIFETIME_S))
        .build(CIPHERSUITE, &provider, &signer, with_key)
        .map_err(GroupError::mls)?;
    let key_package = bundle.key_package().clone();
    let hash_ref = key_package
        .hash_ref(provider.crypto())
        .map_err(GroupError::mls)?
        .as_slice()
        .to_vec();
    let bytes = MlsMessageOut::from(key_package)
        .tls_serialize_detached()
        .map_err(GroupError::mls)?;
    Ok((
        bytes,
        PendingKeyPackage {
            hash_ref,
            signature_key: public.to_vec(),
            entries: provider.snapshot(),
        },
    ))
}

/// A received KeyPackage whose signature, suite and member credential verified.
#[derive(Debug, Clone)]
pub struct KeyPackageIn {
    pub(crate) key_package: KeyPackage,
    pub(crate) member: MemberCredential,
}

impl KeyPackageIn {
    /// Parses and checks KeyPackage bytes; `from` is the identity the 1:1 session says sent it.
    pub fn parse(bytes: &[u8], from: Option<&IdentityKey>) -> Result<Self, GroupError> {
        if bytes.len() > MAX_KEY_PACKAGE_LEN {
            return Err(GroupError::TooLarge {
                what: "key package",
                len: bytes.len(),
                max: MAX_KEY_PACKAGE_LEN,
            });
        }
        let message = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(|_| GroupError::Malformed("key package"))?;
        let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
            return Err(GroupError::Malformed("not a key package"));
        };
        let provider = Provider::default();
        let key_package = key_package
            .validate(provider.crypto(), ProtocolVersion::Mls10)
            .map_err(GroupError::mls)?;
        if key_package.ciphersuite() != CIPHERSUITE {
            return Err(GroupError::Suite);
        }
        let member = MemberCredential::verify_leaf(key_package.leaf_node())?;
        if from.is_some_and(|from| *from != member.identity) {
            return Err(GroupError::Credential(
                "names another identity than its sender",
            ));
        }
        if !key_package
            .leaf_node()
            .capabilities()
            .extensions()
            .contains(&ExtensionType::Unknown(GROUP_INFO_EXTENSION))
        {
            return Err(GroupError::Credential(
                "lacks the tern_group_info capability",
            ));
        }
        Ok(Self {
            key_package,
            member,
        })
    }

    pub fn identity(&self) -> IdentityKey {
        self.member.identity
    }
}

/// The KeyPackage references a Welcome is addressed to, so the node finds the private half that opens it.
pub(crate) fn welcome_refs(
    bytes: &[u8],
) -> Result<(openmls::prelude::Welcome, Vec<Vec<u8>>), GroupError> {
    if bytes.len() > MAX_WELCOME_LEN {
        return Err(GroupError::TooLarge {
            what: "welcome",
            len: bytes.len(),
            max: MAX_WELCOME_LEN,
        });
    }
    let message =
        MlsMessageIn::tls_deserialize_exact(bytes).map_err(|_| GroupError::Malformed("welcome"))?;
    let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
        return Err(GroupError::Malformed("not a welcome"));
    };
    if welcome.ciphersuite() != CIPHERSUITE {
        return Err(GroupError::Suite);
    }
    let refs = welcome
        .secrets()
        .iter()
        .map(|s| s.new_member().as_slice().to_vec())
        .collect();
    Ok((welcome, refs))
}
