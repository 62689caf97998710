//! Swarm events: connections, mDNS, AutoNAT, identify and Kademlia, turned into node work.

use super::*;

impl EventLoop {
    pub(super) fn handle_swarm_event(&mut self, event: SwarmEvent<ClientBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.emit(Event::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.remember_addr(peer_id, endpoint.get_remote_address().clone());
                }
                self.emit(Event::Peers {
                    connected: self.swarm.connected_peers().count(),
                });
                if num_established.get() == 1 && self.is_my_mailbox(&peer_id) {
                    self.mailbox_client.handle_connected(peer_id);
                    self.run_client();
                }
                if num_established.get() == 1
                    && let Some(contact) = self.contact_of(&peer_id)
                {
                    self.emit(Event::ContactOnline {
                        contact,
                        online: true,
                    });
                }
                if num_established.get() == 1 {
                    // What waits for this peer goes out now (and deposits with it, if it is a server).
                    self.delivery.handle_connected(peer_id);
                    self.run_delivery();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.emit(Event::Peers {
                    connected: self.swarm.connected_peers().count(),
                });
                if num_established == 0 {
                    if let Some(host) = self.mailbox_host.as_mut() {
                        host.peer_disconnected(&peer_id);
                    }
                    self.delivery.handle_disconnected(peer_id);
                    self.mailbox_client
                        .handle_disconnected(peer_id, std::time::Instant::now());
                    if self.lan_mailboxes.contains(&peer_id) {
                        self.lan_mailboxes.retain(|p| *p != peer_id);
                        self.update_shared_servers();
                    }
                }
                if num_established == 0
                    && let Some(contact) = self.contact_of(&peer_id)
                {
                    self.emit(Event::ContactOnline {
                        contact,
                        online: false,
                    });
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                self.count_refusal(match error {
                    libp2p::swarm::ListenError::Denied { .. } => "connection_limit".to_owned(),
                    _ => "connection_handshake".to_owned(),
                });
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                let mut contacts = HashSet::new();
                for (peer, addr) in found {
                    if self.mdns_peers.len() < MAX_KNOWN_PEERS {
                        self.mdns_peers.insert(peer);
                    }
                    self.remember_addr(peer, addr);
                    if !self.swarm.is_connected(&peer) && self.contact_of(&peer).is_some() {
                        contacts.insert(peer);
                    }
                }
                for peer in contacts {
                    self.dial_contact(peer);
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(event)) => {
                self.handle_envelope_event(event);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(event)) => {
                self.handle_mailbox_event(event);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Autonat(
                autonat::Event::StatusChanged { new, .. },
            )) => {
                let status = match new {
                    autonat::NatStatus::Public(addr) => NatStatus::Public(addr),
                    autonat::NatStatus::Private => NatStatus::Private,
                    autonat::NatStatus::Unknown => NatStatus::Unknown,
                };
                info!(?status, "reachability changed");
                if status == NatStatus::Private {
                    self.reserve_relays();
                }
                self.nat = status.clone();
                self.emit(Event::Nat { status });
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Only a LAN neighbour is taken as a mailbox unasked; elsewhere mailboxes are configured or
                // published by their owners.
                let on_lan = self.lan_only || self.mdns_peers.contains(&peer_id);
                let serves = on_lan && info.protocols.contains(&MAILBOX_PROTOCOL);
                if serves
                    && !self.lan_mailboxes.contains(&peer_id)
                    && self.lan_mailboxes.len() < MAX_LAN_MAILBOXES
                {
                    debug!(peer = %short(&peer_id), "found a mailbox on the LAN");
                    self.lan_mailboxes.push(peer_id);
                    self.start_fetch(peer_id);
                    self.update_shared_servers();
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(kad::Event::RoutingUpdated {
                ..
            })) => {
                self.publish_record();
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        record: Some(record),
                        ..
                    },
            })) => {
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    crate::net::dht::store_if_valid(kad.store_mut(), record);
                }
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::PutRecord(Ok(_)),
                    ..
                },
            )) if !self.published => {
                debug!("mailbox record published");
                self.published = true;
                self.emit(Event::MailboxRecordPublished);
            }
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::GetRecord(result),
                    step,
                    ..
                },
            )) => self.lookup_progress(id, result, step.last),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    result: kad::QueryResult::GetClosestPeers(Ok(found)),
                    ..
                },
            )) => {
                // A lookup for a contact we hold mail for found a route to it: deliver now.
                let Ok(target) = PeerId::from_bytes(&found.key) else {
                    return;
                };
                if let Some(info) = found.peers.into_iter().find(|p| p.peer_id == target) {
                    for addr in info.addrs {
                        self.remember_addr(target, addr);
                    }
                    if !self.swarm.is_connected(&target) {
                        let addrs = self.known_addrs.get(&target).cloned().unwrap_or_default();
                        let opts = DialOpts::peer_id(target).addresses(addrs).build();
                        if let Err(e) = self.swarm.dial(opts) {
                            debug!(peer = %short(&target), error = %e, "dial after lookup failed");
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Behind NAT: listen through each configured server's circuit relay, so contacts can reach this node
    /// (and DCUtR can upgrade the relayed connection to a direct one).
    pub(super) fn reserve_relays(&mut self) {
        if self.lan_only || self.relays_reserved {
            return;
        }
        self.relays_reserved = true;
        let servers: Vec<Multiaddr> = self.my_mailboxes.iter().map(|(_, a)| a.clone()).collect();
        for addr in servers {
            let circuit = addr.with(libp2p::multiaddr::Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(_) => info!(%circuit, "listening through a relay"),
                Err(e) => debug!(%circuit, error = %e, "cannot reserve a relay slot"),
            }
        }
    }
}
