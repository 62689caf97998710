//! Two swarms in one process on 127.0.0.1 exchange envelopes over `/tern/envelope/1`, and a misbehaving peer
//! writing raw bytes on that protocol gets typed errors without hurting the receiver.

use std::time::Duration;

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    request_response::{self, InboundFailure, OutboundFailure},
    swarm::SwarmEvent,
};
use tern_node::net::{
    ClientBehaviour, ClientBehaviourEvent, ENVELOPE_PROTOCOL, EnvelopeAck, EnvelopeRequest,
    FrameError, MessageError, build_swarm,
    codec::{encode_frame, frame_error, read_frame},
};
use tern_protocol::envelope::MAX_ENVELOPE_LEN;
use tern_testkit::client::outcome;
use tern_testkit::net::{connect_swarm, first_listen_addr, net_config, tcp_swarm};
use tern_testkit::raw::{Framed, RawCodec, raw_behaviour};
use tokio::{sync::mpsc, time::timeout};
use tracing::{Instrument, info_span};

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the receiver saw.
#[derive(Debug)]
enum Seen {
    /// A decoded request; acked with `Accepted`.
    Request { from: PeerId, len: usize },
    /// Any other inbound failure (timeouts, dropped responses); no test expects one.
    #[expect(dead_code, reason = "read only through Debug, when a test fails")]
    InboundFailure { from: PeerId, error: InboundFailure },
}

/// Starts a receiving node that acks every envelope with `Accepted` and reports what it saw.
async fn spawn_receiver(
    seed: u8,
    listen: &str,
    lan_only: bool,
) -> (PeerId, Multiaddr, mpsc::Receiver<Seen>) {
    let mut swarm = build_swarm(&[seed; 32], &net_config(listen, lan_only)).unwrap();
    let peer_id = *swarm.local_peer_id();
    let addr = first_listen_addr(&mut swarm).await;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(
        async move {
            loop {
                let event = swarm.select_next_some().await;
                let ClientBehaviourEvent::Envelope(event) = (match event {
                    SwarmEvent::Behaviour(event) => event,
                    _ => continue,
                }) else {
                    continue;
                };
                let seen = match event {
                    request_response::Event::Message {
                        peer,
                        message:
                            request_response::Message::Request {
                                request, channel, ..
                            },
                        ..
                    } => {
                        let len = request.as_bytes().len();
                        let _ = swarm
                            .behaviour_mut()
                            .envelope
                            .send_response(channel, EnvelopeAck::Accepted);
                        Seen::Request { from: peer, len }
                    }
                    request_response::Event::InboundFailure { peer, error, .. } => {
                        Seen::InboundFailure { from: peer, error }
                    }
                    _ => continue,
                };
                if tx.send(seen).await.is_err() {
                    return;
                }
            }
        }
        .instrument(info_span!("receiver")),
    );
    (peer_id, addr, rx)
}

/// Sends one envelope from a full client node and returns the ack.
async fn send_envelope(
    sender: &mut Swarm<ClientBehaviour>,
    peer: PeerId,
    request: EnvelopeRequest,
) -> Result<EnvelopeAck, OutboundFailure> {
    let id = sender.behaviour_mut().envelope.send_request(&peer, request);
    loop {
        if let SwarmEvent::Behaviour(ClientBehaviourEvent::Envelope(event)) =
            sender.select_next_some().await
            && let Some(outcome) = outcome(event, id)
        {
            return outcome;
        }
    }
}

fn full_envelope() -> EnvelopeRequest {
    EnvelopeRequest::new((0..MAX_ENVELOPE_LEN).map(|i| i as u8).collect()).unwrap()
}

async fn envelope_round_trip(listen: &str, lan_only: bool) {
    let (receiver, addr, mut seen) = spawn_receiver(1, listen, lan_only).await;
    let mut sender = build_swarm(&[2; 32], &net_config(listen, lan_only)).unwrap();
    let sender_id = *sender.local_peer_id();
    async {
        connect_swarm(&mut sender, receiver, addr, drop).await;
        let ack = send_envelope(&mut sender, receiver, full_envelope()).await;
        assert_eq!(ack.unwrap(), EnvelopeAck::Accepted);
    }
    .instrument(info_span!("sender"))
    .await;
    match seen.recv().await.unwrap() {
        Seen::Request { from, len } => {
            assert_eq!(from, sender_id);
            assert_eq!(len, MAX_ENVELOPE_LEN);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn envelope_is_accepted_over_tcp() {
    timeout(
        TEST_TIMEOUT,
        envelope_round_trip("/ip4/127.0.0.1/tcp/0", true),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn envelope_is_accepted_over_quic() {
    timeout(
        TEST_TIMEOUT,
        envelope_round_trip("/ip4/127.0.0.1/udp/0/quic-v1", true),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn envelope_is_accepted_with_every_wan_behaviour_enabled() {
    timeout(
        TEST_TIMEOUT,
        envelope_round_trip("/ip4/127.0.0.1/tcp/0", false),
    )
    .await
    .unwrap();
}

/// A peer that ignores Tern's framing: it writes request bytes verbatim on `/tern/envelope/1` and reads
/// the ack with Tern's own codec.
type RawBehaviour = request_response::Behaviour<RawCodec<Framed<EnvelopeAck>>>;

fn raw_swarm() -> Swarm<RawBehaviour> {
    tcp_swarm(
        libp2p::identity::Keypair::generate_ed25519(),
        raw_behaviour(ENVELOPE_PROTOCOL),
    )
}

/// Sends raw bytes and waits for the sender-side outcome.
async fn send_raw(
    raw: &mut Swarm<RawBehaviour>,
    peer: PeerId,
    bytes: Vec<u8>,
) -> Result<EnvelopeAck, OutboundFailure> {
    let id = raw.behaviour_mut().send_request(&peer, bytes);
    loop {
        if let SwarmEvent::Behaviour(event) = raw.select_next_some().await
            && let Some(outcome) = outcome(event, id)
        {
            return outcome;
        }
    }
}

/// What the receiving codec makes of `bytes`: the typed error the receiver's request-response handler gets.
/// (request-response 0.30 drops a stream whose request fails to decode, logging at debug level; it emits no
/// `InboundFailure` event for it, so the swarm cannot show us this error directly.)
fn receiver_codec_error(bytes: &[u8]) -> FrameError {
    let result = futures::executor::block_on(read_frame::<EnvelopeRequest, _>(
        &mut futures::io::Cursor::new(bytes),
    ));
    let e = result.expect_err("garbage decoded");
    frame_error(&e).cloned().unwrap()
}

/// The sender of an undecodable request sees the stream end where the ack should be: a typed error.
fn assert_refused(what: &str, outcome: Result<EnvelopeAck, OutboundFailure>) {
    match outcome {
        Err(OutboundFailure::Io(e)) => assert!(
            matches!(
                frame_error(&e),
                Some(FrameError::Truncated {
                    what: "envelope ack",
                    got: 0,
                    ..
                })
            ),
            "{what}: unexpected {e:?}"
        ),
        other => panic!("{what}: expected an I/O failure, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_envelope_is_refused_and_receiver_keeps_working() {
    timeout(TEST_TIMEOUT, async {
        // The sender's own API cannot build an oversized request…
        assert!(matches!(
            EnvelopeRequest::new(vec![0; MAX_ENVELOPE_LEN + 1]),
            Err(FrameError::TooLarge { .. })
        ));

        // …so a raw peer writes one: a length prefix one over the limit and that many bytes.
        let (receiver, addr, mut seen) = spawn_receiver(3, "/ip4/127.0.0.1/tcp/0", true).await;
        let mut raw = raw_swarm();
        let raw_id = *raw.local_peer_id();
        connect_swarm(&mut raw, receiver, addr, drop).await;

        let oversized = u32::try_from(MAX_ENVELOPE_LEN + 1).unwrap();
        let mut bytes = oversized.to_be_bytes().to_vec();
        bytes.resize(4 + MAX_ENVELOPE_LEN + 1, 0xAB);
        assert!(matches!(
            receiver_codec_error(&bytes),
            FrameError::TooLarge { len, max, .. } if len == MAX_ENVELOPE_LEN + 1 && max == MAX_ENVELOPE_LEN
        ));
        assert_refused("oversized", send_raw(&mut raw, receiver, bytes).await);

        // The same connection then carries an honest envelope of the largest size.
        let honest = encode_frame(&full_envelope()).unwrap();
        assert_eq!(
            send_raw(&mut raw, receiver, honest).await.unwrap(),
            EnvelopeAck::Accepted
        );
        assert!(matches!(
            seen.recv().await.unwrap(),
            Seen::Request { from, len } if from == raw_id && len == MAX_ENVELOPE_LEN
        ));
    })
    .await
    .unwrap();
}

/// What a peer writes, and the receiving codec's verdict.
type GarbageCase = (&'static str, Vec<u8>, fn(&FrameError) -> bool);

#[tokio::test]
async fn garbage_on_the_envelope_protocol_is_a_typed_error() {
    timeout(TEST_TIMEOUT, async {
        let (receiver, addr, mut seen) = spawn_receiver(4, "/ip4/127.0.0.1/tcp/0", true).await;
        let mut raw = raw_swarm();
        let raw_id = *raw.local_peer_id();
        connect_swarm(&mut raw, receiver, addr, drop).await;

        let cases: Vec<GarbageCase> = vec![
            ("an HTTP request", b"GET / HTTP/1.1\r\n\r\n".to_vec(), |e| {
                matches!(e, FrameError::TooLarge { .. })
            }),
            ("half a length prefix", vec![0xff, 0x00], |e| {
                matches!(
                    e,
                    FrameError::Truncated {
                        expected: 4,
                        got: 2,
                        ..
                    }
                )
            }),
            ("a short payload", vec![0, 0, 0, 10, 1, 2, 3], |e| {
                matches!(
                    e,
                    FrameError::Truncated {
                        expected: 10,
                        got: 3,
                        ..
                    }
                )
            }),
            ("bytes after the frame", vec![0, 0, 0, 2, 1, 2, 99], |e| {
                matches!(e, FrameError::TrailingBytes { .. })
            }),
            ("an empty envelope", vec![0, 0, 0, 0], |e| {
                matches!(
                    e,
                    FrameError::Malformed {
                        source: MessageError::Empty,
                        ..
                    }
                )
            }),
        ];
        for (what, bytes, expected) in cases {
            let error = receiver_codec_error(&bytes);
            assert!(expected(&error), "{what}: unexpected {error:?}");
            assert_refused(what, send_raw(&mut raw, receiver, bytes).await);
        }

        // Still serving, and none of the garbage reached the application as a request.
        let honest = encode_frame(&EnvelopeRequest::new(vec![1; 300]).unwrap()).unwrap();
        assert_eq!(
            send_raw(&mut raw, receiver, honest).await.unwrap(),
            EnvelopeAck::Accepted
        );
        assert!(matches!(
            seen.recv().await.unwrap(),
            Seen::Request { from, len: 300 } if from == raw_id
        ));
    })
    .await
    .unwrap();
}
