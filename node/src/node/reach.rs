//! Reaching contacts across the internet: this node's address record (published when its addresses change
//! and well before it expires), contacts' records (looked up when a contact must be reached, cached until
//! they expire), presence (contacts looked up and dialled at start and when added, so they show online with
//! no message sent), relay reservations (kept while AutoNAT does not say public, renewed with backoff) and
//! how each connected contact is reached (directly or through a relay).

use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use tern_protocol::AddressRecord;
use tern_protocol::address_record::{
    DEFAULT_ADDRESS_TTL_SECS, MAX_RECORD_ADDRESS_LEN, MAX_RECORD_ADDRESSES,
};

use super::*;
use crate::api::ContactState;
use crate::api::{ContactReach, Reach};
use crate::net::addrs::{self, Scope};
use crate::net::dht::{address_record, address_record_key, unix_ms};

/// This node's address record is published again after this long even if its addresses did not change
/// (well within its one-hour lifetime).
pub const ADDRESS_REPUBLISH: Duration = Duration::from_secs(20 * 60);
/// A failed publication is tried again after this long (or as soon as the routing table changes).
pub const ADDRESS_PUBLISH_RETRY: Duration = Duration::from_secs(5);
/// Contacts' address records remembered.
pub const MAX_ADDRESS_CACHE: usize = 256;
/// Address record lookups under way at once.
pub const MAX_ADDRESS_LOOKUPS: usize = 32;
/// Contacts looked up for presence.
pub const MAX_PRESENCE: usize = 1024;
/// The first wait before a contact not found online is looked up again; it doubles up to
/// [`PRESENCE_RETRY_MAX`], and starts over when the contact disconnects.
pub const PRESENCE_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two presence lookups of a contact that is not online.
pub const PRESENCE_RETRY_MAX: Duration = Duration::from_secs(5 * 60);
/// Relays (bootstrap nodes) a node keeps a reservation with while it may be unreachable.
pub const MAX_RELAYS: usize = 2;
/// The first wait before a failed or ended reservation is asked for again; it doubles up to
/// [`RELAY_RETRY_MAX`] and starts over once a reservation is accepted.
pub const RELAY_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two reservation attempts at one relay.
pub const RELAY_RETRY_MAX: Duration = Duration::from_secs(5 * 60);

struct Cached {
    addrs: Vec<Multiaddr>,
    issued_ms: u64,
    expires: Instant,
}

struct Relay {
    addr: Multiaddr,
    listener: Option<ListenerId>,
    /// Circuit addresses the reservation gave.
    circuits: Vec<Multiaddr>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// The state behind reaching contacts; the event loop's methods below drive it.
pub(super) struct ReachState {
    scope: Scope,
    relay_only: bool,
    /// Addresses of the last record put in the DHT.
    published: Vec<Multiaddr>,
    /// When this node's record is due again (set after each put; `None` until a first one).
    republish_at: Option<Instant>,
    publish_query: Option<kad::QueryId>,
    /// Whether the routing table has had a peer since start (a DHT query before that finds nothing).
    routing: bool,
    cache: HashMap<PeerId, Cached>,
    queries: HashMap<kad::QueryId, PeerId>,
    presence: HashMap<PeerId, (Instant, Duration)>,
    /// Reservations are wanted (not LAN mode, and AutoNAT does not say public, or relay-only).
    want_relays: bool,
    relays: Vec<Relay>,
    connections: HashMap<PeerId, HashMap<ConnectionId, bool>>,
}

impl ReachState {
    pub(super) fn new(config: &crate::net::NetConfig, relays: Vec<Multiaddr>) -> Self {
        let scope = if config.lan_only || config.local_addresses {
            Scope::Local
        } else {
            Scope::Global
        };
        Self {
            scope,
            relay_only: config.relay_only,
            published: Vec::new(),
            republish_at: None,
            publish_query: None,
            routing: false,
            cache: HashMap::new(),
            queries: HashMap::new(),
            presence: HashMap::new(),
            want_relays: !config.lan_only,
            relays: relays
                .into_iter()
                .take(MAX_RELAYS)
                .map(|addr| Relay {
                    addr,
                    listener: None,
                    circuits: Vec::new(),
                    retry_at: None,
                    backoff: RELAY_RETRY_FIRST,
                })
                .collect(),
            connections: HashMap::new(),
        }
    }

    /// When [`EventLoop::reach_timeout`] is due next.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        let presence = self.presence.values().map(|(at, _)| *at);
        let relays = self
            .relays
            .iter()
            .filter(|_| self.want_relays)
            .filter_map(|r| r.retry_at);
        presence
            .chain(relays)
            .chain(self.republish_at.filter(|_| self.routing))
            .min()
    }

    /// Whether the node is listening through at least one relay.
    pub(super) fn relayed(&self) -> bool {
        self.relays.iter().any(|r| !r.circuits.is_empty())
    }

    /// The addresses of this node's current record.
    pub(super) fn published(&self) -> &[Multiaddr] {
        &self.published
    }

    /// How `peer` is reached, if connected.
    fn reach_of(&self, peer: &PeerId) -> Option<Reach> {
        let connections = self.connections.get(peer)?;
        if connections.values().any(|relayed| !relayed) {
            Some(Reach::Direct)
        } else if connections.is_empty() {
            None
        } else {
            Some(Reach::Relayed)
        }
    }
}

impl EventLoop {
    /// At start: contacts are kept alive when connected and looked up for presence, and reservations are
    /// asked for while it is not known whether this node is reachable.
    pub(super) fn reach_start(&mut self) {
        let now = Instant::now();
        if let Ok(contacts) = self.engine.store().contacts() {
            for contact in contacts {
                if contact.state != ContactState::Accepted {
                    continue;
                }
                if let Some(peer) = peer_id_of(&contact.key) {
                    self.watch_contact(peer, now);
                }
            }
        }
        self.reserve_relays(now);
    }

    /// A contact to keep connected to: its connections are kept open, and it is looked up for presence.
    pub(super) fn watch_contact(&mut self, peer: PeerId, now: Instant) {
        self.swarm.behaviour_mut().keep_alive.keep(peer, true);
        self.swarm.behaviour_mut().gossip.set_contact(peer, true);
        if self.lan_only || self.reach.presence.len() >= MAX_PRESENCE {
            return;
        }
        self.reach
            .presence
            .insert(peer, (now, PRESENCE_RETRY_FIRST));
    }

    /// A contact removed or blocked: no longer kept or looked up.
    pub(super) fn unwatch_contact(&mut self, peer: PeerId) {
        self.swarm.behaviour_mut().keep_alive.keep(peer, false);
        self.swarm.behaviour_mut().gossip.set_contact(peer, false);
        self.reach.presence.remove(&peer);
        self.reach.cache.remove(&peer);
    }

    /// Runs what is due: presence lookups, reservation retries, the record's republication.
    pub(super) fn reach_timeout(&mut self) {
        let now = Instant::now();
        if self.reach.routing {
            let due: Vec<PeerId> = self
                .reach
                .presence
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(peer, _)| *peer)
                .collect();
            for peer in due {
                if let Some((at, backoff)) = self.reach.presence.get_mut(&peer) {
                    *at = now + *backoff;
                    *backoff = (*backoff * 2).min(PRESENCE_RETRY_MAX);
                }
                if !self.swarm.is_connected(&peer) {
                    self.find_contact(peer);
                }
            }
            if self.reach.republish_at.is_some_and(|at| at <= now) {
                self.publish_addresses(true);
            }
        } else {
            // Nothing can be found before the routing table has a peer: presence waits for it.
            for (at, _) in self.reach.presence.values_mut() {
                if *at <= now {
                    *at = now + PRESENCE_RETRY_FIRST;
                }
            }
        }
        self.reserve_relays(now);
    }

    /// The routing table changed: the first time, presence lookups start; a record not yet stored is put.
    pub(super) fn reach_routing_updated(&mut self) {
        if !self.reach.routing {
            self.reach.routing = true;
            let now = Instant::now();
            for (at, _) in self.reach.presence.values_mut() {
                *at = now;
            }
            self.publish_addresses(true);
        }
    }

    /// The addresses this node may be reached at now: confirmed external addresses, its own listen
    /// addresses when local addresses are allowed, and its relay circuits (the circuits only, in relay-only
    /// mode); acceptable ones only, at most [`MAX_RECORD_ADDRESSES`].
    fn own_reachable(&self) -> Vec<Multiaddr> {
        let scope = self.reach.scope;
        let mut direct: Vec<Multiaddr> = Vec::new();
        if !self.reach.relay_only {
            direct.extend(self.swarm.external_addresses().cloned());
            if scope == Scope::Local {
                direct.extend(
                    self.swarm
                        .listeners()
                        .filter(|a| !addrs::is_circuit(a))
                        .cloned(),
                );
            }
        }
        let circuits = self
            .reach
            .relays
            .iter()
            .flat_map(|r| r.circuits.iter().cloned());
        let mut out: Vec<Multiaddr> = Vec::new();
        // Circuits first in the budget, so a node behind NAT always publishes a way to reach it.
        for addr in circuits.chain(direct) {
            let bare = addrs::without_peer(&addr);
            if addrs::acceptable(&bare, scope)
                && bare.to_vec().len() <= MAX_RECORD_ADDRESS_LEN
                && !out.contains(&bare)
                && out.len() < MAX_RECORD_ADDRESSES
            {
                out.push(bare);
            }
        }
        out.sort_by_key(|a| a.to_vec());
        out
    }

    /// This node's own addresses, which are never dialled for a contact.
    fn own_addrs(&self) -> Vec<Multiaddr> {
        self.swarm
            .listeners()
            .chain(self.swarm.external_addresses())
            .cloned()
            .collect()
    }

    /// Listen or external addresses changed: the record is published again if what it would say changed.
    pub(super) fn addresses_changed(&mut self) {
        if self.lan_only || !self.reach.routing {
            // Put once the routing table has a peer (`reach_routing_updated`).
            return;
        }
        if self.own_reachable() != self.reach.published {
            self.publish_addresses(true);
        }
    }

    /// Puts this node's address record in the DHT (if it has any address to give and, unless `force`, its
    /// addresses changed since the last put).
    fn publish_addresses(&mut self, force: bool) {
        if self.lan_only {
            return;
        }
        let addresses = self.own_reachable();
        if addresses.is_empty() || (!force && addresses == self.reach.published) {
            return;
        }
        let now_ms = unix_ms();
        let record = match AddressRecord::issue(
            self.engine.identity(),
            now_ms,
            DEFAULT_ADDRESS_TTL_SECS,
            addresses.iter().map(|a| a.to_vec()).collect(),
        ) {
            Ok(record) => record,
            Err(e) => {
                warn!(error = %e, "cannot issue an address record");
                return;
            }
        };
        let key = address_record_key(&record.identity().mailbox_id());
        let mut kad_record = kad::Record::new(key, record.encode().to_vec());
        kad_record.expires =
            Instant::now().checked_add(Duration::from_secs(u64::from(DEFAULT_ADDRESS_TTL_SECS)));
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
            return;
        };
        match kad.put_record(kad_record, kad::Quorum::One) {
            Ok(query) => {
                debug!(count = addresses.len(), "publishing the address record");
                self.reach.publish_query = Some(query);
                self.reach.published = addresses;
                self.reach.republish_at = Some(Instant::now() + ADDRESS_REPUBLISH);
            }
            Err(e) => debug!(error = %e, "cannot store the address record locally"),
        }
    }

    /// Whether `id` is the put of this node's address record; if so, its result is taken.
    pub(super) fn address_put_finished(&mut self, id: kad::QueryId, stored: bool) -> bool {
        if self.reach.publish_query != Some(id) {
            return false;
        }
        self.reach.publish_query = None;
        if stored {
            self.emit(Event::AddressesPublished {
                addresses: self.reach.published.clone(),
            });
        } else {
            debug!("address record not stored; trying again");
            self.reach.republish_at = Some(Instant::now() + ADDRESS_PUBLISH_RETRY);
        }
        true
    }

    /// Reaches a contact that is not connected: dials what is known of it and looks its record up unless a
    /// live one is cached. Addresses this node learned itself (mDNS, configured peers, earlier dials) are
    /// trusted; those from the contact's card and record are filtered by the address scope.
    pub(super) fn find_contact(&mut self, peer: PeerId) {
        let now = Instant::now();
        let trusted = self.known_addrs.get(&peer).cloned().unwrap_or_default();
        let mut published = self.card_addrs(&peer);
        let cached = self.reach.cache.get(&peer).filter(|c| c.expires > now);
        let fresh = cached.is_some();
        if let Some(c) = cached {
            published.extend(c.addrs.iter().cloned());
        }
        if !fresh && !self.lan_only {
            self.lookup_addresses(peer);
        }
        self.dial_at(peer, trusted, published);
    }

    /// Dials `peer` at `trusted` and the acceptable ones of `published` (never at this node's own).
    fn dial_at(&mut self, peer: PeerId, trusted: Vec<Multiaddr>, published: Vec<Multiaddr>) {
        if self.swarm.is_connected(&peer) {
            return;
        }
        let own = self.own_addrs();
        let relay_only = self.reach.relay_only;
        let mut addrs = addrs::dialable(trusted, &own, Scope::Local, relay_only);
        for addr in addrs::dialable(published, &own, self.reach.scope, relay_only) {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return;
        }
        // A fresh local port, not the listen port: two contacts that find each other at the same moment
        // (mDNS answers both ways at once) dial each other together, and two dials between the same two
        // listen ports are one TCP simultaneous open, which libp2p cannot negotiate (both sides start Noise
        // as initiator and both dials fail, and delivery then waited for its 4 s retry). Fresh ports make
        // them two connections that both succeed.
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(peer = %short(&peer), error = %e, "dial failed");
        }
    }

    fn lookup_addresses(&mut self, peer: PeerId) {
        if self.reach.queries.values().any(|p| *p == peer)
            || self.reach.queries.len() >= MAX_ADDRESS_LOOKUPS
        {
            return;
        }
        let Ok(key) = IdentityKey::from_peer_id(&peer.to_base58()) else {
            return;
        };
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            let query = kad.get_record(address_record_key(&key.mailbox_id()));
            self.reach.queries.insert(query, peer);
        }
    }

    /// A step of an address record lookup (false if `id` is not one): a live record of the contact, newer
    /// than the cached one, is cached and dialled.
    pub(super) fn address_lookup_progress(
        &mut self,
        id: kad::QueryId,
        result: &kad::GetRecordResult,
        last: bool,
    ) -> bool {
        let Some(peer) = self.reach.queries.get(&id).copied() else {
            return false;
        };
        if last {
            self.reach.queries.remove(&id);
        }
        let Ok(kad::GetRecordOk::FoundRecord(found)) = result else {
            return true;
        };
        let Some(record) = address_record(&found.record) else {
            return true;
        };
        let now_ms = unix_ms();
        if record.identity().peer_id() != peer.to_base58() || !record.is_live(now_ms) {
            return true;
        }
        if self
            .reach
            .cache
            .get(&peer)
            .is_some_and(|c| c.issued_ms >= record.issued_ms())
        {
            return true;
        }
        let addrs: Vec<Multiaddr> = record
            .addresses()
            .iter()
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .collect();
        let left = Duration::from_millis(record.expires_ms().saturating_sub(now_ms));
        if !self.reach.cache.contains_key(&peer) && self.reach.cache.len() >= MAX_ADDRESS_CACHE {
            let now = Instant::now();
            self.reach.cache.retain(|_, c| c.expires > now);
            if self.reach.cache.len() >= MAX_ADDRESS_CACHE {
                self.reach.cache.clear();
            }
        }
        debug!(peer = %short(&peer), count = addrs.len(), "found an address record");
        self.reach.cache.insert(
            peer,
            Cached {
                addrs: addrs.clone(),
                issued_ms: record.issued_ms(),
                expires: Instant::now() + left,
            },
        );
        self.dial_at(peer, Vec::new(), addrs);
        true
    }

    /// Asks for reservations at the relays that have none and whose retry is due (while wanted).
    pub(super) fn reserve_relays(&mut self, now: Instant) {
        if !self.reach.want_relays {
            return;
        }
        for i in 0..self.reach.relays.len() {
            let relay = &self.reach.relays[i];
            if relay.listener.is_some() || relay.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let circuit = relay.addr.clone().with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    debug!(%circuit, "asking a relay for a reservation");
                    let relay = &mut self.reach.relays[i];
                    relay.listener = Some(listener);
                    relay.retry_at = None;
                }
                Err(e) => {
                    debug!(%circuit, error = %e, "cannot ask a relay for a reservation");
                    let relay = &mut self.reach.relays[i];
                    relay.retry_at = Some(now + relay.backoff);
                    relay.backoff = (relay.backoff * 2).min(RELAY_RETRY_MAX);
                }
            }
        }
    }

    /// AutoNAT's verdict: reservations are dropped while public (unless relay-only) and asked for otherwise.
    pub(super) fn reach_nat(&mut self, status: &NatStatus) {
        if self.lan_only {
            return;
        }
        let want = self.reach.relay_only || !matches!(status, NatStatus::Public(_));
        if want == self.reach.want_relays {
            return;
        }
        self.reach.want_relays = want;
        if want {
            self.reserve_relays(Instant::now());
        } else {
            for i in 0..self.reach.relays.len() {
                if let Some(listener) = self.reach.relays[i].listener.take() {
                    self.swarm.remove_listener(listener);
                }
                self.reach.relays[i].circuits.clear();
                self.reach.relays[i].retry_at = None;
            }
            self.addresses_changed();
        }
    }

    /// A listener got an address: a relay's circuit means its reservation was accepted.
    pub(super) fn reach_new_listen_addr(&mut self, listener: ListenerId, address: &Multiaddr) {
        if let Some(relay) = self
            .reach
            .relays
            .iter_mut()
            .find(|r| r.listener == Some(listener))
        {
            info!(%address, "listening through a relay");
            relay.backoff = RELAY_RETRY_FIRST;
            if !relay.circuits.contains(address) {
                relay.circuits.push(address.clone());
            }
        }
        self.addresses_changed();
    }

    /// A listener closed: a relay's reservation ended or failed, and is asked for again after a backoff.
    pub(super) fn reach_listener_closed(&mut self, listener: ListenerId) {
        let now = Instant::now();
        if let Some(relay) = self
            .reach
            .relays
            .iter_mut()
            .find(|r| r.listener == Some(listener))
        {
            debug!(relay = %relay.addr, "relay reservation ended");
            relay.listener = None;
            relay.circuits.clear();
            relay.retry_at = Some(now + relay.backoff);
            relay.backoff = (relay.backoff * 2).min(RELAY_RETRY_MAX);
        }
        self.addresses_changed();
    }

    /// A connection opened: remembered as relayed or direct; a contact's reach may have changed.
    pub(super) fn reach_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        relayed: bool,
    ) {
        let before = self.reach.reach_of(&peer);
        let is_new = !self.reach.connections.contains_key(&peer);
        if is_new && self.reach.connections.len() >= MAX_KNOWN_PEERS {
            return;
        }
        self.reach
            .connections
            .entry(peer)
            .or_default()
            .insert(connection, relayed);
        if let Some(contact) = self.contact_of(&peer) {
            if self.is_accepted(&contact) {
                self.swarm.behaviour_mut().keep_alive.keep(peer, true);
            }
            self.reach_changed(contact, &peer, before);
        }
    }

    /// Whether `contact` is one the user added or accepted (not a request, not blocked).
    fn is_accepted(&self, contact: &IdentityKey) -> bool {
        matches!(
            self.engine.store().contact(contact),
            Ok(Some(record)) if record.state == ContactState::Accepted
        )
    }

    /// A connection closed.
    pub(super) fn reach_disconnected(&mut self, peer: PeerId, connection: ConnectionId) {
        let before = self.reach.reach_of(&peer);
        if let Some(connections) = self.reach.connections.get_mut(&peer) {
            connections.remove(&connection);
            if connections.is_empty() {
                self.reach.connections.remove(&peer);
            }
        }
        if let Some(contact) = self.contact_of(&peer) {
            self.reach_changed(contact, &peer, before);
            if !self.swarm.is_connected(&peer)
                && let Some(entry) = self.reach.presence.get_mut(&peer)
            {
                // It may be back soon (a restart, a new address): looked for again from the first wait.
                *entry = (Instant::now() + PRESENCE_RETRY_FIRST, PRESENCE_RETRY_FIRST);
                self.reach.cache.remove(&peer);
            }
        }
    }

    fn reach_changed(&mut self, contact: IdentityKey, peer: &PeerId, before: Option<Reach>) {
        let after = self.reach.reach_of(peer);
        if let Some(reach) = after
            && after != before
        {
            self.emit(Event::ContactReach { contact, reach });
        }
    }

    /// Connected contacts and how each is reached.
    pub(super) fn contacts_reach(&self) -> Vec<ContactReach> {
        let mut out = Vec::new();
        for peer in self.reach.connections.keys() {
            if let (Some(contact), Some(reach)) = (self.contact_of(peer), self.reach.reach_of(peer))
            {
                out.push(ContactReach {
                    name: self.name_of(&contact),
                    contact,
                    reach,
                });
            }
        }
        out
    }
}
