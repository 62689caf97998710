//! The `mailbox` scenario: deposits from many peers into a real `tern-bootstrap`, and one owner's fetch and
//! acknowledgement of them all, beside redb doing the same writes with no networking.

use super::*;
use tern_node::mailbox::client::{ClientAction, MailboxClient};

const DEPOSITORS: usize = 100;
/// Envelopes per fetch page (the protocol's maximum).
const FETCH_PAGE: usize = 64;

/// Sealed envelopes for one recipient, each carrying a 1 KiB session message.
fn envelopes_for(recipient: &tern_protocol::Identity, n: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    let sender = tern_protocol::Identity::generate(&mut rng, 0);
    let expires = tern_node::engine::now_ms() / 1000 + 3600;
    (0..n)
        .map(|i| {
            let mut body = vec![0u8; TEXT_LEN];
            body[..8].copy_from_slice(&(i as u64).to_be_bytes());
            tern_protocol::Envelope::seal(&sender, recipient.public(), &body, expires, &mut rng)
                .map(|e| e.encode())
                .unwrap_or_default()
        })
        .collect()
}

async fn mailbox_request(
    swarm: &mut Swarm<ClientBehaviour>,
    peer: libp2p::PeerId,
    request: MailboxRequest,
) -> Result<MailboxResponse> {
    swarm.behaviour_mut().mailbox.send_request(&peer, request);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                },
            )) => return Ok(response),
            SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                request_response::Event::OutboundFailure { error, .. },
            )) => bail!("mailbox request failed: {error}"),
            _ => {}
        }
    }
}

pub(crate) async fn connected_client(
    seed: [u8; 32],
    server: &Multiaddr,
) -> Result<(Swarm<ClientBehaviour>, libp2p::PeerId)> {
    // A client only dials: no listener, so one file descriptor per client.
    let net = NetConfig {
        listen: Vec::new(),
        ..loopback_net()
    };
    let mut swarm = build_swarm(&seed, &net)?;
    let peer = tern_node::net::swarm::peer_id_of(server).context("server address without /p2p")?;
    swarm.dial(server.clone())?;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                return Ok((swarm, peer));
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
            _ => {}
        }
    }
}

/// The owner fetches everything with Fetch and Ack (what a server from before paged fetches offers), page by
/// page, acknowledging each page before the next: two round trips and one durable delete commit per page.
async fn fetch_then_ack(
    swarm: &mut Swarm<ClientBehaviour>,
    peer: libp2p::PeerId,
    owner: &tern_protocol::Identity,
) -> Result<usize> {
    let MailboxResponse::Nonce { nonce } =
        mailbox_request(swarm, peer, MailboxRequest::Challenge).await?
    else {
        bail!("no challenge");
    };
    let mut fetched = 0usize;
    loop {
        let auth = OwnerAuth::sign(owner, &peer.to_bytes(), nonce);
        let request = MailboxRequest::Fetch {
            auth: auth.clone(),
            max: FETCH_PAGE as u16,
        };
        let MailboxResponse::Envelopes { envelopes, more } =
            mailbox_request(swarm, peer, request).await?
        else {
            bail!("fetch refused");
        };
        fetched += envelopes.len();
        mailbox_request(
            swarm,
            peer,
            MailboxRequest::Ack {
                auth,
                ids: ids_of(&envelopes),
            },
        )
        .await?;
        if !more {
            return Ok(fetched);
        }
    }
}

fn ids_of(envelopes: &[Vec<u8>]) -> Vec<tern_protocol::EnvelopeId> {
    envelopes
        .iter()
        .filter_map(|e| tern_protocol::Envelope::decode(e).ok().map(|e| e.id()))
        .collect()
}

/// What a paged fetch took: envelopes, requests after the challenge, and those that acknowledged (one
/// durable delete commit each).
struct Paged {
    fetched: usize,
    requests: usize,
    commits: usize,
}

/// The owner fetches everything as tern-node does: its mailbox client state machine decides each request
/// (paged fetches from a cursor, acknowledgements riding on them in batches).
async fn fetch_paged(
    swarm: &mut Swarm<ClientBehaviour>,
    peer: libp2p::PeerId,
    owner: &tern_protocol::Identity,
) -> Result<Paged> {
    let mut client = MailboxClient::new(Instant::now());
    client.handle_servers(vec![peer]);
    client.handle_connected(peer);
    let mut paged = Paged {
        fetched: 0,
        requests: 0,
        commits: 0,
    };
    while let Some(action) = client.poll_action() {
        match action {
            ClientAction::Challenge { server } => {
                let MailboxResponse::Nonce { nonce } =
                    mailbox_request(swarm, server, MailboxRequest::Challenge).await?
                else {
                    bail!("no challenge");
                };
                client.handle_nonce(server, nonce);
            }
            ClientAction::FetchPage {
                server,
                nonce,
                from,
                ack,
            } => {
                paged.requests += 1;
                paged.commits += usize::from(!ack.is_empty());
                let request = MailboxRequest::FetchPage {
                    auth: OwnerAuth::sign(owner, &server.to_bytes(), nonce),
                    from,
                    max: FETCH_PAGE as u16,
                    ack,
                };
                let MailboxResponse::Page {
                    envelopes,
                    next,
                    more,
                    ..
                } = mailbox_request(swarm, server, request).await?
                else {
                    bail!("paged fetch refused");
                };
                paged.fetched += envelopes.len();
                let ids = ids_of(&envelopes);
                client.handle_cursor_page_stored(server, ids, next, more, Instant::now());
            }
            ClientAction::Checked { .. } => return Ok(paged),
            other => bail!("unexpected {other:?}"),
        }
    }
    bail!("the fetch ended early")
}

const RAW_TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("bench");

/// Plain redb: the same bytes in one write transaction; returns inserts per second and the database.
fn raw_batch_insert(envelopes: &[Vec<u8>]) -> Result<(f64, tempfile::TempDir, redb::Database)> {
    let dir = tempfile::tempdir()?;
    let db = redb::Database::create(dir.path().join("bench.redb"))?;
    let start = Instant::now();
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(RAW_TABLE)?;
        for (i, e) in envelopes.iter().enumerate() {
            t.insert(i as u64, e.as_slice())?;
        }
    }
    txn.commit()?;
    Ok((
        envelopes.len() as f64 / start.elapsed().as_secs_f64(),
        dir,
        db,
    ))
}

/// Plain redb: read the rows in pages of [`FETCH_PAGE`], deleting each page in one durable commit;
/// returns rows per second.
fn raw_page_and_delete(db: &redb::Database, n: usize) -> Result<f64> {
    use redb::ReadableDatabase;
    let start = Instant::now();
    let mut done = 0u64;
    while (done as usize) < n {
        let end = done + FETCH_PAGE as u64;
        let mut bytes = 0usize;
        {
            let read = db.begin_read()?;
            let t = read.open_table(RAW_TABLE)?;
            for row in t.range(done..end)? {
                bytes += row?.1.value().len();
            }
        }
        let txn = db.begin_write()?;
        {
            let mut t = txn.open_table(RAW_TABLE)?;
            for k in done..end {
                t.remove(k)?;
            }
        }
        txn.commit()?;
        std::hint::black_box(bytes);
        done = end;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Deposits every envelope from [`DEPOSITORS`] peers at once (peer seeds from `seed_base`), each peer
/// waiting for its answer before its next deposit; returns deposits per second.
async fn deposit_all(addr: &Multiaddr, envelopes: &[Vec<u8>], seed_base: u64) -> Result<f64> {
    let mut clients = Vec::with_capacity(DEPOSITORS);
    for i in 0..DEPOSITORS {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + seed_base).to_be_bytes());
        clients.push(connected_client(seed, addr).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut swarm, peer)) in clients.into_iter().enumerate() {
        let mine: Vec<Vec<u8>> = envelopes
            .iter()
            .skip(i)
            .step_by(DEPOSITORS)
            .cloned()
            .collect();
        tasks.push(tokio::spawn(async move {
            for envelope in mine {
                match mailbox_request(&mut swarm, peer, MailboxRequest::Deposit { envelope })
                    .await?
                {
                    MailboxResponse::Deposited { .. } => {}
                    other => bail!("deposit refused: {other:?}"),
                }
            }
            anyhow::Ok(swarm)
        }));
    }
    let mut swarms = Vec::new();
    for task in tasks {
        swarms.push(task.await??);
    }
    Ok(envelopes.len() as f64 / start.elapsed().as_secs_f64())
}

/// A plain swarm on the same transport that answers every deposit `Deposited` at once.
async fn plain_mailbox_server() -> Result<(Multiaddr, tokio::task::JoinHandle<()>)> {
    let net = NetConfig {
        serve_mailbox: true,
        ..loopback_net()
    };
    let mut server = build_swarm(&[5u8; 32], &net)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address.with(Protocol::P2p(*server.local_peer_id()));
        }
    };
    let task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(ClientBehaviourEvent::Mailbox(
                request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                },
            )) = server.select_next_some().await
            {
                let id = tern_protocol::EnvelopeId([0; 32]);
                let _ = server
                    .behaviour_mut()
                    .mailbox
                    .send_response(channel, MailboxResponse::Deposited { id });
            }
        }
    });
    Ok((addr, task))
}

pub(crate) async fn mailbox(n: usize) -> Result<()> {
    let quota = u32::try_from(n).unwrap_or(u32::MAX).max(1000);
    let server = Bootstrap::spawn(&format!(
        "[mailbox]\nquota_envelopes = {quota}\nquota_bytes = {big}\nmax_total_bytes = {big}\n\
         deposits_per_minute = 1000000\n",
        big = 1u64 << 40
    ))?;
    let addr = server.addr.clone();
    let owner = tern_protocol::Identity::generate(&mut rand::rng(), 0);
    let envelopes = envelopes_for(&owner, n);
    let size = envelopes.first().map_or(0, Vec::len);

    let deposits_per_s = deposit_all(&addr, &envelopes, 10).await?;

    // The network floor: the same deposits answered at once by a plain swarm, no checks, no store.
    let (plain_addr, plain_server) = plain_mailbox_server().await?;
    let plain_per_s = deposit_all(&plain_addr, &envelopes, 1000).await?;
    plain_server.abort();

    let (mut swarm, peer) = connected_client([99u8; 32], &addr).await?;
    let start = Instant::now();
    let paged = fetch_paged(&mut swarm, peer, &owner).await?;
    let fetch_time = start.elapsed();
    if paged.fetched != n {
        bail!("fetched {} of {n}", paged.fetched);
    }
    // The same mail again, fetched the way a server from before paged fetches allows.
    deposit_all(&addr, &envelopes, 2000).await?;
    let start = Instant::now();
    let fetched = fetch_then_ack(&mut swarm, peer, &owner).await?;
    let unpaged_time = start.elapsed();
    if fetched != n {
        bail!("fetched {fetched} of {n} with Fetch and Ack");
    }
    drop(server);

    // Baselines: the same bytes into redb, one batch transaction; one durable commit per insert; and the
    // owner's side: reading pages of 64 and deleting each page in one commit.
    let (batch_per_s, _raw_dir, raw_db) = raw_batch_insert(&envelopes)?;
    let single: Vec<Duration> = redb_commits(200, size)?;
    let single_per_s = 1.0 / percentile(&single, 0.5).as_secs_f64();
    let raw_fetch_per_s = raw_page_and_delete(&raw_db, n)?;
    let fetch_per_s = n as f64 / fetch_time.as_secs_f64();
    let unpaged_per_s = n as f64 / unpaged_time.as_secs_f64();

    print_table(
        &format!(
            "mailbox: a tern-bootstrap process, {n} deposits of {size}-byte envelopes from {DEPOSITORS} peers at once, then its owner fetches them all"
        ),
        &[
            Row::new(
                "durable deposits/s vs redb batch insert of the same bytes",
                deposits_per_s,
                batch_per_s,
                "/s",
                Target::AtLeast(0.5),
            ),
            Row::new(
                "durable deposits/s vs the same requests answered at once by a plain libp2p swarm (no store)",
                deposits_per_s,
                plain_per_s,
                "/s",
                Target::Report,
            ),
            Row::new(
                "durable deposits/s vs one redb commit per insert",
                deposits_per_s,
                single_per_s,
                "/s",
                Target::Report,
            ),
            Row::new(
                &format!(
                    "fetch + acknowledge all {n} (pages of {FETCH_PAGE}) vs redb page read + delete commit per page"
                ),
                fetch_per_s,
                raw_fetch_per_s,
                "/s",
                Target::AtLeast(0.5),
            ),
            Row::new(
                &format!("fetch + acknowledge all {n} vs redb batch insert of the same bytes"),
                fetch_per_s,
                batch_per_s,
                "/s",
                Target::AtLeast(0.5),
            ),
            Row::new(
                "fetch + acknowledge all, paged vs Fetch then Ack per page (a server from before paged fetches)",
                fetch_per_s,
                unpaged_per_s,
                "/s",
                Target::Report,
            ),
        ],
    );
    note(&format!(
        "each depositor waits for the durable answer before its next deposit; the owner fetches as tern-node \
         does: 1 challenge, then {} paged fetches (one round trip per page), {} of them carrying an \
         acknowledgement (one durable delete commit each): {:.1} ms in all; Fetch then Ack per page (2 round \
         trips and a commit per page): {:.1} ms",
        paged.requests,
        paged.commits,
        ms(fetch_time),
        ms(unpaged_time)
    ));
    Ok(())
}
