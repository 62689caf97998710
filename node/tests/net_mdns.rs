//! mDNS discovery between two LAN-only nodes in one process, then an envelope over the discovered address.
//!
//! libp2p-mdns ignores loopback interfaces (and advertises only addresses on the interface it answers on), so
//! two in-process swarms cannot find each other over 127.0.0.1, and multicasting on the machine's real
//! interfaces would leave the machine. The test is therefore ignored by default; run it inside a network
//! namespace whose only LAN is a dummy interface:
//!
//! ```sh
//! ip netns add tern-mdns
//! ip netns exec tern-mdns sh -c 'ip link set lo up; ip link add d0 type dummy;
//!     ip link set d0 multicast on up; ip addr add 10.77.0.1/24 dev d0'
//! ip netns exec tern-mdns cargo test -p tern-node --test net_mdns -- --ignored
//! ip netns del tern-mdns
//! ```

use std::time::Duration;

use futures::StreamExt;
use libp2p::{Swarm, mdns, request_response, swarm::SwarmEvent};
use tern_node::net::{
    ClientBehaviour, ClientBehaviourEvent, EnvelopeAck, EnvelopeRequest, NetConfig, build_swarm,
};
use tokio::time::timeout;

fn lan_node(seed: u8) -> Swarm<ClientBehaviour> {
    let config = NetConfig {
        listen: vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()],
        lan_only: true,
        mdns: true,
        mdns_query_interval: Duration::from_secs(1),
        ..NetConfig::default()
    };
    build_swarm(&[seed; 32], &config).unwrap()
}

#[tokio::test]
#[ignore = "needs a multicast-capable non-loopback interface: run inside the network namespace described above"]
async fn lan_only_nodes_discover_each_other_with_mdns_and_exchange_an_envelope() {
    let mut alice = lan_node(1);
    let mut bob = lan_node(2);
    let bob_id = *bob.local_peer_id();

    let outcome = timeout(Duration::from_secs(20), async {
        let mut dialled = false;
        loop {
            tokio::select! {
                event = alice.select_next_some() => match event {
                    SwarmEvent::Behaviour(ClientBehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                        for (peer, addr) in list {
                            if peer == bob_id && !dialled {
                                dialled = true;
                                alice.dial(addr).unwrap();
                            }
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == bob_id => {
                        let request = EnvelopeRequest::new(vec![5; 512]).unwrap();
                        alice.behaviour_mut().envelope.send_request(&bob_id, request);
                    }
                    SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(event)) => match event {
                        request_response::Event::Message {
                            message: request_response::Message::Response { response, .. },
                            ..
                        } => return Ok(response),
                        request_response::Event::OutboundFailure { error, .. } => return Err(error),
                        _ => {}
                    },
                    _ => {}
                },
                event = bob.select_next_some() => {
                    if let SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(
                        request_response::Event::Message {
                            message: request_response::Message::Request { channel, .. },
                            ..
                        },
                    )) = event
                    {
                        let _ = bob.behaviour_mut().envelope.send_response(channel, EnvelopeAck::Accepted);
                    }
                }
            }
        }
    })
    .await;
    let ack = outcome.expect("alice did not discover and reach bob over mDNS");
    assert_eq!(ack.unwrap(), EnvelopeAck::Accepted);
}
