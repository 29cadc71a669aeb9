//! The test plays a hostile peer against real nodes over tarpc-tcp (TLS
//! over TCP on 127.0.0.1, the attacker often from 127.0.0.2): it closes
//! other servers' buckets with the secrets it was sent, asks the queen in
//! without the grid secret, forges identities, floods the queen, allocates
//! buckets it never writes over several connections, writes slots beyond
//! capacity, reads slots for their write enablers, holds idle connections
//! up to the cap, and pipelines calls on many connections without ever
//! reading an answer. Each attack must fail while the honest node keeps
//! serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::client::immutable::placement::HappySink;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::servers::ServerRef;
use tahoe_core::kinds::storage::{ShareNum, StorageIndex, WriteVector};
use tahoe_core::protocol::announce::{AnnouncementBody, sign};
use tahoe_core::protocol::identity::NodeKey;
use tahoe_core::protocol::transport::{Listener, LocalServices, Transport};
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, QueenAddress, QueenRequest, Secret, SlotSecrets, SlotWrite,
    StorageLayer, StorageRequest, StorageService,
};
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_core::testing::pseudo_random_bytes;
use tahoe_core::{ErrorKind, Result};
use tahoe_storage_memory::MemoryBackend;
use tahoe_transport_tarpc_tcp::{Identity, TarpcTcp, TarpcTcpConfig};

use crate::EXE;

fn attacker() -> TarpcTcp {
    TarpcTcp::new(Identity::ephemeral().unwrap(), TarpcTcpConfig::default())
}

/// A `tahoe run` process, killed when dropped.
struct Node {
    child: Child,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Node {
        let log = std::fs::File::create(dir.join("test-run.log")).unwrap();
        let mut cmd = Command::new(EXE);
        cmd.args(["run", "--basedir", dir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, _) in std::env::vars() {
            if k.starts_with("TAHOE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let node = Node {
            child: cmd.spawn().unwrap(),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !dir.join("status.json").exists() {
            assert!(Instant::now() < deadline, "{} did not start", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    fn address(&self) -> String {
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("status.json")).unwrap()).unwrap();
        status["address"].as_str().unwrap().to_string()
    }
}

fn run(args: &[&str]) {
    let out = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tahoe {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create_queen(dir: &Path) -> QueenAddress {
    run(&["create-queen", "--basedir", dir.to_str().unwrap()]);
    QueenAddress::parse(&std::fs::read_to_string(dir.join("introducer.url")).unwrap()).unwrap()
}

fn announcement(key: &NodeKey, address: String) -> tahoe_core::protocol::Announcement {
    sign(
        key,
        &AnnouncementBody {
            node_id: key.node_id(),
            nickname: "mallory".into(),
            address,
            available_space: None,
            version: "evil/1".into(),
            seq: 1,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queen_refuses_strangers_and_forgers_and_outlasts_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("queen");
    let url = create_queen(&qdir);
    // One member may announce 600 servers here (64 by default).
    let _queen = Node::start(&qdir, &[("TAHOE_QUEEN__MAX_SERVERS_PER_MEMBER", "600")]);
    let peer = attacker().connect(&url.address).await.unwrap();
    let q = peer.queen;
    // Without the grid secret: nothing.
    let e = q.poll_announcements([0; 32], 0, 0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let me = NodeKey::generate().unwrap();
    let own = format!("tahoe+tcp://{}@127.0.0.1:9", me.node_id());
    let e = q
        .announce([0; 32], announcement(&me, own.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    // With it, but announcing an address that pins someone else's key.
    let victim = NodeKey::generate().unwrap();
    let stolen = format!("tahoe+tcp://{}@127.0.0.1:9", victim.node_id());
    let e = q
        .announce(url.secret, announcement(&me, stolen))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    // A flood of valid identities: the queen takes what one member may
    // announce, refuses the rest, and still answers, in pages of bounded
    // size.
    let flood = 700;
    let keys: Vec<NodeKey> = (0..flood).map(|_| NodeKey::generate().unwrap()).collect();
    let (mut taken, mut refused) = (0, 0);
    for chunk in keys.chunks(50) {
        let calls = chunk.iter().map(|k| {
            let a = announcement(k, format!("tahoe+tcp://{}@127.0.0.1:9", k.node_id()));
            q.announce(url.secret, a)
        });
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(()) => taken += 1,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!((taken, refused), (600, 100));
    let (mut cursor, mut seen, mut pages) = (0, 0, 0);
    loop {
        let t = Instant::now();
        let b = q.poll_announcements(url.secret, cursor, 0).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a page took {:?}",
            t.elapsed()
        );
        assert!(b.announcements.len() <= tahoe_core::protocol::MAX_ANNOUNCEMENTS_PER_BATCH);
        seen += b.announcements.len();
        cursor = b.cursor;
        pages += 1;
        if !b.more {
            break;
        }
    }
    assert_eq!(seen, 600);
    assert!(pages >= 3, "{pages} pages");
}

fn put(offset: u64, data: Bytes) -> SlotWrite {
    SlotWrite {
        tests: vec![],
        writes: vec![WriteVector { offset, data }],
        new_length: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_node_holds_its_budgets_against_a_hostile_peer() {
    let dir = tempfile::tempdir().unwrap();
    let url = create_queen(&dir.path().join("queen"));
    let sdir = dir.path().join("storage");
    run(&[
        "create-client",
        "--basedir",
        sdir.to_str().unwrap(),
        "--introducer",
        &url.to_string(),
    ]);
    let config = sdir.join("tahoe.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml = toml.replace(
        "[storage]\n",
        "[storage]\nbackend = \"memory\"\nmax_pending_buckets = 8\n",
    );
    toml.push_str(
        "\n[storage.memory]\ncapacity = 16777216\n\n[transport.tarpc-tcp]\n\
         max_connections_per_ip = 4\nidle_timeout_secs = 2\n",
    );
    std::fs::write(&config, toml).unwrap();
    let node = Node::start(&sdir, &[]);
    let addr = node.address();
    let t = attacker();
    let si = StorageIndex([1; 16]);
    let alloc = |secret: u8| AllocateRequest {
        storage_index: si,
        share_numbers: (0..100).collect(),
        share_size: 1000,
        renew_secret: [secret; 32],
        cancel_secret: [secret; 32],
        upload_secret: [secret; 32],
    };
    // Buckets allocated and never written: a peer gets its budget, and no
    // more for opening another connection.
    let from_elsewhere = TarpcTcp::new(
        Identity::ephemeral().unwrap(),
        TarpcTcpConfig {
            connect_from: ATTACKER_IP.to_string(),
            ..TarpcTcpConfig::default()
        },
    );
    let hog = from_elsewhere.connect(&addr).await.unwrap();
    let r = hog.storage.allocate_buckets(alloc(1)).await.unwrap();
    assert_eq!(r.allocated, (0..8).collect::<Vec<_>>(), "{r:?}");
    let hog2 = from_elsewhere.connect(&addr).await.unwrap();
    let mut elsewhere = alloc(1);
    elsewhere.storage_index = StorageIndex([9; 16]);
    let r = hog2.storage.allocate_buckets(elsewhere).await.unwrap();
    assert!(
        r.allocated.is_empty(),
        "a second connection doubled the peer's budget: {r:?}"
    );
    // Another peer has a budget of its own: the shares the hog left.
    let honest = t.connect(&addr).await.unwrap();
    let r = honest.storage.allocate_buckets(alloc(2)).await.unwrap();
    assert_eq!(r.allocated, (8..16).collect::<Vec<_>>(), "{r:?}");
    // The hog's buckets are aborted when its connections close: share 0
    // comes free (the honest peer gives back what it holds meanwhile, so
    // its own budget never stands in the way).
    drop((hog, hog2));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held = r.allocated;
    loop {
        for shnum in held.drain(..) {
            honest
                .storage
                .abort_bucket(si, shnum, [2; 32])
                .await
                .unwrap();
        }
        let r = honest.storage.allocate_buckets(alloc(2)).await.unwrap();
        if r.allocated.first() == Some(&0) {
            break;
        }
        held = r.allocated;
        assert!(
            Instant::now() < deadline,
            "the hog's buckets were never aborted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(honest);
    // Slot writes beyond capacity, and beyond one call's budget.
    let evil = t.connect(&addr).await.unwrap().storage;
    let secrets = SlotSecrets {
        write_enabler: [0xab; 32],
        renew_secret: [3; 32],
        cancel_secret: [3; 32],
    };
    let slot = StorageIndex([2; 16]);
    let big = Bytes::from(vec![7u8; 7 << 20]);
    let mut outcome = Vec::new();
    for shnum in 0..3u8 {
        let w: BTreeMap<ShareNum, SlotWrite> = [(shnum, put(0, big.clone()))].into();
        outcome.push(
            evil.slot_testv_and_readv_and_writev(slot, secrets.clone(), w, vec![])
                .await
                .map(|r| r.0)
                .map_err(|e| e.kind()),
        );
    }
    assert_eq!(
        outcome,
        vec![Ok(true), Ok(true), Err(ErrorKind::NoSpace)],
        "a 16 MiB store took three 7 MiB slot shares"
    );
    let three: BTreeMap<ShareNum, SlotWrite> = (3..6u8)
        .map(|s| (s, put(0, Bytes::from(vec![1u8; 3 << 20]))))
        .collect();
    // (Over this transport such a call does not even fit a frame; the
    // server's own budget is tested in protocol/storage_server.rs.)
    let e = evil
        .slot_testv_and_readv_and_writev(slot, secrets.clone(), three, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unavailable),
        "{e}"
    );
    assert!(evil.version().await.is_ok(), "the node stopped serving");
    // Reading the slot back, every way, never shows its write enabler.
    assert_eq!(
        evil.read_bucket(slot, 0, 0, 64).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let r = evil.slot_readv(slot, vec![0], vec![(0, 64)]).await.unwrap();
    assert_eq!(r[&0][0], Bytes::from(vec![7u8; 64]));
    // Idle connections up to the per-address cap: the next is refused,
    // and once they are closed as idle, connections are taken again.
    let mut held = Vec::new();
    let refused = loop {
        match t.connect(&addr).await {
            Ok(p) => held.push(p),
            Err(e) => break e,
        }
        assert!(held.len() <= 4, "more than 4 connections from one address");
    };
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let fresh = t.connect(&addr).await.unwrap();
    assert!(!fresh.storage.version().await.unwrap().readonly);
    // The old handles reconnect on their next call.
    assert!(evil.version().await.is_ok());
    drop(held);
}

/// A storage server that, handed an allocation, tries to close the same
/// buckets on every other server with the secrets it was given. It strikes
/// at its first write, when every server has allocated its buckets (the
/// uploader writes only once all have answered) and none has closed them
/// (it closes only after every write).
struct BucketCloser {
    inner: StorageServer,
    others: Vec<Arc<dyn StorageService>>,
    /// The storage index and upload secret this server was sent.
    sent: std::sync::Mutex<Option<(StorageIndex, Secret)>>,
    /// Each close tried.
    outcomes: tokio::sync::Mutex<Vec<Outcome>>,
}

/// One close an attacker tried: at which other server, which share, and
/// how it ended.
type Outcome = (usize, ShareNum, std::result::Result<(), ErrorKind>);

#[async_trait]
impl StorageLayer for BucketCloser {
    fn inner(&self) -> &dyn StorageService {
        &self.inner
    }
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        *self.sent.lock().unwrap() = Some((req.storage_index, req.upload_secret));
        self.inner.allocate_buckets(req).await
    }
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        s: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        let mut outcomes = self.outcomes.lock().await;
        let sent = *self.sent.lock().unwrap();
        if let (true, Some((si, secret))) = (outcomes.is_empty(), sent) {
            for (i, other) in self.others.iter().enumerate() {
                for shnum in 0..10 {
                    let r = other.close_bucket(si, shnum, secret).await;
                    outcomes.push((i, shnum, r.map_err(|e| e.kind())));
                }
            }
        }
        drop(outcomes);
        self.inner.write_bucket(si, shnum, s, offset, data).await
    }
}

async fn serve(storage: Arc<dyn StorageService>) -> Box<dyn Listener> {
    let t = TarpcTcp::new(Identity::ephemeral().unwrap(), TarpcTcpConfig::default());
    t.listen(
        "127.0.0.1:0",
        LocalServices {
            storage: Some(storage),
            queen: None,
        },
    )
    .await
    .unwrap()
}

fn server_ref(address: &str, service: Arc<dyn StorageService>) -> ServerRef {
    let (id, location) = address
        .trim_start_matches("tahoe+tcp://")
        .split_once('@')
        .unwrap();
    ServerRef {
        id: id.to_string(),
        location: location.to_string(),
        service,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_use_its_secrets_at_other_servers() {
    let client = attacker();
    let mut listeners = Vec::new();
    let mut refs = Vec::new();
    let mut honest: Vec<Arc<dyn StorageService>> = Vec::new();
    for _ in 0..4 {
        let server =
            StorageServer::new(Arc::new(MemoryBackend::new(None)), ServerConfig::default());
        let l = serve(Arc::new(server)).await;
        let remote = client.connect(&l.address()).await.unwrap().storage;
        refs.push(server_ref(&l.address(), remote.clone()));
        // The closer reaches the others over its own connections.
        honest.push(attacker().connect(&l.address()).await.unwrap().storage);
        listeners.push(l);
    }
    let closer = Arc::new(BucketCloser {
        inner: StorageServer::new(Arc::new(MemoryBackend::new(None)), ServerConfig::default()),
        others: honest.clone(),
        sent: std::sync::Mutex::new(None),
        outcomes: tokio::sync::Mutex::new(Vec::new()),
    });
    let l = serve(closer.clone()).await;
    refs.push(server_ref(
        &l.address(),
        client.connect(&l.address()).await.unwrap().storage,
    ));
    listeners.push(l);

    let registry = tahoe::builtin_registry().unwrap();
    let ctx = |kind, name: &str| {
        tahoe_core::plugin::registry::PluginContext::empty(kind, name, Path::new("."))
    };
    let uploader = tahoe_core::client::immutable::upload::Uploader {
        codec: registry
            .codec(
                "crs",
                tahoe_core::kinds::codec::CodecParams::new(2, 5).unwrap(),
                &ctx(tahoe_core::plugin::registry::PluginKind::Codec, "crs"),
            )
            .unwrap(),
        cipher: registry
            .cipher(
                "aes-ctr",
                &ctx(tahoe_core::plugin::registry::PluginKind::Cipher, "aes-ctr"),
            )
            .unwrap(),
        max_segment_size: 64 << 10,
        key_mode: tahoe_core::client::immutable::KeyMode::Convergent(b"attack test".to_vec()),
    };
    let data = pseudo_random_bytes(21, 300_000);
    let sink = HappySink::new(refs.clone(), 2, 5, 5, ClientSecret::random().unwrap());
    let cap = uploader
        .upload(
            Arc::new(tahoe_core::client::source::BytesSource(Bytes::from(
                data.clone(),
            ))),
            &sink,
        )
        .await
        .unwrap();
    let tahoe_core::format::cap::Cap::Chk(chk) = cap else {
        panic!("not a CHK cap")
    };
    // Every close of a bucket another server was uploading was refused for
    // the secret (not for want of a bucket), and no other close found one.
    let outcomes = closer.outcomes.lock().await;
    assert_eq!(outcomes.len(), 40, "the attack never ran");
    let mut denied = 0;
    for (i, other) in honest.iter().enumerate() {
        let holds = other.list_buckets(chk.storage_index()).await.unwrap();
        for (at, shnum, r) in outcomes.iter().filter(|o| o.0 == i) {
            let expected = if holds.contains_key(shnum) {
                denied += 1;
                Err(ErrorKind::PermissionDenied)
            } else {
                Err(ErrorKind::NotFound)
            };
            assert_eq!(*r, expected, "closing share {shnum} at server {at}");
        }
    }
    assert!(denied >= 4, "only {denied} of the attacks met a bucket");
    drop(outcomes);
    let downloader = tahoe_core::client::immutable::download::Downloader {
        codecs: Arc::new(move |name: &str, params| {
            registry.codec(
                name,
                params,
                &ctx(tahoe_core::plugin::registry::PluginKind::Codec, name),
            )
        }),
        cipher: tahoe::builtin_registry()
            .unwrap()
            .cipher(
                "aes-ctr",
                &ctx(tahoe_core::plugin::registry::PluginKind::Cipher, "aes-ctr"),
            )
            .unwrap(),
    };
    let mut back = Vec::new();
    downloader
        .download(&chk, &refs, 0..u64::MAX, &mut back)
        .await
        .unwrap();
    assert!(back == data, "the file did not survive the attack");
}

/// Where the attacker connects from: another loopback address, so that
/// budgets charged to its address are not the honest nodes' (127.0.0.1).
const ATTACKER_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

fn append_config(dir: &Path, text: &str) {
    let config = dir.join("tahoe.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(text);
    std::fs::write(&config, toml).unwrap();
}

/// `tahoe put` of `file` through `client`: its cap and how long it took.
fn timed_put(client: &Path, file: &Path) -> (String, Duration) {
    let t = Instant::now();
    let out = Command::new(EXE)
        .args(["put", "--basedir", client.to_str().unwrap()])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "tahoe put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        took,
    )
}

/// Whether a fresh connection's cheapest calls to the storage node at
/// `storage` and the queen at `queen` are answered within a second.
async fn answers_at_once(storage: &str, queen: &QueenAddress) {
    let honest = TarpcTcp::new(Identity::ephemeral().unwrap(), TarpcTcpConfig::default());
    for (what, address) in [("queen", queen.address.as_str()), ("storage node", storage)] {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(1), async {
            let peer = honest.connect(address).await?;
            if what == "queen" {
                peer.queen
                    .poll_announcements(queen.secret, 0, 0)
                    .await
                    .map(|_| ())
            } else {
                peer.storage.version().await.map(|_| ())
            }
        })
        .await;
        assert!(
            matches!(r, Ok(Ok(()))),
            "the {what} did not answer a fresh connection within 1 s: {r:?} after {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_never_read_their_answers_silence_nobody() {
    use tahoe_transport_tarpc_tcp::testing::{Flood, Flooder};
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("queen");
    let url = create_queen(&qdir);
    let _queen = Node::start(&qdir, &[]);
    let mut storage = Vec::new();
    for i in 0..2 {
        let s = dir.path().join(format!("storage{i}"));
        run(&[
            "create-client",
            "--basedir",
            s.to_str().unwrap(),
            "--introducer",
            &url.to_string(),
        ]);
        storage.push(Node::start(&s, &[]));
    }
    // A client whose uploads need both storage nodes (one share on each).
    let client = dir.path().join("client");
    run(&[
        "create-client",
        "--basedir",
        client.to_str().unwrap(),
        "--introducer",
        &url.to_string(),
        "--no-storage",
    ]);
    append_config(&client, "\n[encoding]\nk = 1\nhappy = 2\nn = 2\n");
    // A file whose shares the attacker will ask for, 1 MiB a call.
    let big = dir.path().join("big");
    std::fs::write(&big, pseudo_random_bytes(1, 4 << 20)).unwrap();
    let (cap, _) = timed_put(&client, &big);
    let small = |n: u64| {
        let p = dir.path().join(format!("small{n}"));
        std::fs::write(&p, pseudo_random_bytes(100 + n, 300_000)).unwrap();
        p
    };
    let usual = (0..3)
        .map(|n| timed_put(&client, &small(n)).1)
        .min()
        .unwrap();
    let tahoe_core::format::cap::Cap::Chk(chk) = cap.parse().unwrap() else {
        panic!("{cap} is not a CHK cap")
    };
    let si = chk.storage_index();
    let target = storage[0].address();
    let shares = attacker()
        .connect(&target)
        .await
        .unwrap()
        .storage
        .list_buckets(si)
        .await
        .unwrap();
    let (&shnum, _) = shares.iter().next().expect("a share on the first node");

    // The attack: sixteen connections to each of the storage node and the
    // queen, pipelining calls and reading no answer.
    let mut floods = Vec::new();
    for (address, call, count) in [
        (
            target.clone(),
            Flood::Storage(StorageRequest::ReadBucket {
                si,
                shnum,
                offset: 0,
                len: 1 << 20,
            }),
            400,
        ),
        (
            url.address.clone(),
            Flood::Queen(QueenRequest::PollAnnouncements {
                grid_secret: [0; 32],
                cursor: 0,
                wait_ms: 0,
            }),
            100_000,
        ),
    ] {
        for _ in 0..16 {
            let (address, call) = (address.clone(), call.clone());
            floods.push(tokio::spawn(async move {
                let mut f = Flooder::connect(&address, Some(ATTACKER_IP)).await.unwrap();
                let sent = f.send(&call, count, Duration::from_secs(20)).await;
                (f, sent)
            }));
        }
    }
    let mut held = Vec::new();
    for f in floods {
        let (f, sent) = f.await.unwrap();
        eprintln!("a flooder sent {sent} calls");
        held.push(f);
    }
    // With the attacker still connected: the nodes answer others at once,
    // and uploads go at their usual speed.
    answers_at_once(&target, &url).await;
    let during = timed_put(&client, &small(10)).1;
    // And once it has gone.
    drop(held);
    answers_at_once(&target, &url).await;
    let after = timed_put(&client, &small(11)).1;
    let bound = usual * 3 + Duration::from_secs(1);
    assert!(
        during < bound && after < bound,
        "uploads took {during:?} under attack and {after:?} after it, against {usual:?} before"
    );
    let peak = tahoe_core::testing::proc_status_kib(&storage[0].child.id().to_string(), "VmHWM:");
    assert!(
        peak > 0 && peak < 256 << 10,
        "the attacked storage node peaked at {peak} KiB"
    );
}
