//! Swarm events: connections, mDNS, AutoNAT, identify and Kademlia, turned into node work.

use super::*;

impl EventLoop {
    pub(super) fn handle_swarm_event(&mut self, event: SwarmEvent<ClientBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                info!(%address, "listening");
                self.reach_new_listen_addr(listener_id, &address);
                self.emit(Event::Listening { address });
            }
            SwarmEvent::ExpiredListenAddr { .. }
            | SwarmEvent::ExternalAddrConfirmed { .. }
            | SwarmEvent::ExternalAddrExpired { .. } => self.addresses_changed(),
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.reach_listener_closed(listener_id);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                self.reach_connected(peer_id, connection_id, endpoint.is_relayed());
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
                    // A group server: its queues are fetched now.
                    self.group_mail.handle_connected(peer_id);
                    self.run_group_mail();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.reach_disconnected(peer_id, connection_id);
                self.emit(Event::Peers {
                    connected: self.swarm.connected_peers().count(),
                });
                if num_established == 0 {
                    if let Some(host) = self.mailbox_host.as_mut() {
                        host.peer_disconnected(&peer_id);
                    }
                    self.delivery.handle_disconnected(peer_id);
                    self.gossip_peer_gone(peer_id);
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
            SwarmEvent::Behaviour(ClientBehaviourEvent::Gossip(event)) => {
                self.handle_gossip_event(event);
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
                self.reach_nat(&status);
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
                self.reach_routing_updated();
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
                    id,
                    result: kad::QueryResult::PutRecord(result),
                    ..
                },
            )) => self.put_finished(id, result.is_ok()),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::GetRecord(result),
                    step,
                    ..
                },
            )) => self.get_progress(id, result, step.last),
            _ => {}
        }
    }
}
