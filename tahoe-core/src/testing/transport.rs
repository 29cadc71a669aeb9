//! The transport conformance suite.
//!
//! The services behind the listener here are fakes that echo their
//! arguments back in a checkable form: the suite is about the transport
//! carrying calls, results and errors faithfully, not about storage.

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::storage::{ShareNum, StorageIndex, TestVector, WriteVector};
use crate::protocol::transport::{Listener, LocalServices, RemotePeer, Transport};
use crate::protocol::{
    AllocateRequest, AllocateResponse, Announcement, AnnouncementBatch, QueenService, Secret,
    ServerVersion, SlotSecrets, SlotWrite, StorageService,
};
use crate::testing::Clauses;
use crate::testing::pseudo_random_bytes;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A storage service that answers from its arguments, and counts the
/// sessions transports open on it (one per connection) and drop.
#[derive(Default)]
pub struct EchoStorage {
    sessions: Arc<SessionCount>,
    /// Set on the sessions it hands out: counts them closed when dropped.
    session: Option<EchoSession>,
}

/// Sessions opened and still open.
#[derive(Default)]
pub struct SessionCount {
    opened: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
}

struct EchoSession {
    count: Arc<SessionCount>,
}

impl Drop for EchoSession {
    fn drop(&mut self) {
        self.count
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The grid secret [`EchoQueen`] wants.
pub const ECHO_GRID_SECRET: Secret = [42; 32];

fn si_byte(si: &StorageIndex) -> u8 {
    si.0[0]
}

#[async_trait]
impl StorageService for EchoStorage {
    fn open_session(&self, _caller: &crate::protocol::Caller) -> Option<Arc<dyn StorageService>> {
        for n in [&self.sessions.opened, &self.sessions.open] {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Some(Arc::new(EchoStorage {
            sessions: self.sessions.clone(),
            session: Some(EchoSession {
                count: self.sessions.clone(),
            }),
        }))
    }

    async fn version(&self) -> Result<ServerVersion> {
        Ok(ServerVersion {
            application: if self.session.is_some() {
                "echo/session"
            } else {
                "echo/1"
            }
            .into(),
            max_share_size: 1 << 40,
            available_space: Some(12345),
            readonly: false,
        })
    }
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        let (have, alloc) = req.share_numbers.iter().partition(|&&n| n % 2 == 0);
        Ok(AllocateResponse {
            already_have: have,
            allocated: alloc,
        })
    }
    async fn write_bucket(
        &self,
        _si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        if upload_secret != [shnum; 32] {
            return Err(Error::permission_denied("wrong upload secret"));
        }
        if data.len() as u64 != offset {
            return Err(Error::invalid_input(format!("{} != {offset}", data.len())));
        }
        Ok(())
    }
    async fn close_bucket(&self, _si: StorageIndex, shnum: ShareNum, _s: Secret) -> Result<()> {
        if shnum == 13 {
            return Err(Error::corrupt("thirteen"));
        }
        Ok(())
    }
    async fn abort_bucket(&self, _si: StorageIndex, _shnum: ShareNum, _s: Secret) -> Result<()> {
        Err(Error::not_found("nothing to abort"))
    }
    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        Ok((0..si_byte(&si))
            .map(|n| (n, u64::from(n) * 1000))
            .collect())
    }
    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        let seed = u64::from(si_byte(&si)) << 8 | u64::from(shnum);
        let len = usize::try_from(len).map_err(|_| Error::invalid_input("len"))?;
        Ok(Bytes::from(pseudo_random_bytes(seed ^ offset, len)))
    }
    async fn add_lease(&self, _si: StorageIndex, renew: Secret, cancel: Secret) -> Result<()> {
        if renew == cancel {
            return Err(Error::invalid_input("renew == cancel"));
        }
        Ok(())
    }
    async fn advise_corrupt_share(
        &self,
        _si: StorageIndex,
        _shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        Err(Error::new(ErrorKind::Unavailable, reason))
    }
    async fn slot_readv(
        &self,
        _si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        Ok(shnums
            .into_iter()
            .map(|n| {
                let v = ranges
                    .iter()
                    .map(|&(o, l)| Bytes::from(format!("{n}:{o}:{l}")))
                    .collect();
                (n, v)
            })
            .collect())
    }
    async fn slot_testv_and_readv_and_writev(
        &self,
        _si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        _read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        let applied = secrets.write_enabler == [7; 32];
        let echo = writes
            .into_iter()
            .map(|(n, w)| {
                let mut v: Vec<Bytes> = w.tests.into_iter().map(|t| t.expected).collect();
                v.extend(w.writes.into_iter().map(|w| w.data));
                v.push(Bytes::from(format!("{:?}", w.new_length)));
                (n, v)
            })
            .collect();
        Ok((applied, echo))
    }
}

/// A queen service that stores announcements and long-polls.
#[derive(Default)]
pub struct EchoQueen {
    seen: tokio::sync::Mutex<Vec<Announcement>>,
}

#[async_trait]
impl QueenService for EchoQueen {
    async fn announce(&self, grid_secret: Secret, a: Announcement) -> Result<()> {
        if grid_secret != ECHO_GRID_SECRET {
            return Err(Error::permission_denied("wrong grid secret"));
        }
        if a.signature.is_empty() {
            return Err(Error::permission_denied("unsigned"));
        }
        self.seen.lock().await.push(a);
        Ok(())
    }
    async fn poll_announcements(
        &self,
        grid_secret: Secret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        if grid_secret != ECHO_GRID_SECRET {
            return Err(Error::permission_denied("wrong grid secret"));
        }
        let seen = self.seen.lock().await.clone();
        if seen.len() as u64 <= cursor {
            tokio::time::sleep(Duration::from_millis(wait_ms.min(2000))).await;
        }
        let from = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(seen.len());
        Ok(AnnouncementBatch {
            cursor: seen.len() as u64,
            announcements: seen[from..].to_vec(),
            more: false,
        })
    }
}

fn sid(n: u8) -> StorageIndex {
    StorageIndex([n; 16])
}

/// What each clause of the transport contract runs against: a listener
/// serving [`EchoStorage`] and [`EchoQueen`], and a connection to it.
pub struct Fixture {
    /// The transport under test.
    pub transport: Arc<dyn Transport>,
    /// Its name, for messages.
    pub name: String,
    /// The address [`run`] was given to listen on.
    pub bind: String,
    /// The address [`run`] was given where nobody listens.
    pub unreachable: String,
    /// The largest payload the transport must carry in one call.
    pub block_size: usize,
    /// The listener's address.
    pub address: String,
    /// A connection to the listener.
    pub peer: RemotePeer,
    sessions: Arc<SessionCount>,
    listener: std::sync::Mutex<Option<Box<dyn Listener>>>,
}

impl Fixture {
    async fn new(
        transport: Arc<dyn Transport>,
        bind: &str,
        unreachable: &str,
        block_size: usize,
    ) -> Fixture {
        let echo = EchoStorage::default();
        let sessions = echo.sessions.clone();
        let services = LocalServices {
            storage: Some(Arc::new(echo)),
            queen: Some(Arc::new(EchoQueen::default())),
        };
        let listener = transport.listen(bind, services).await.expect("listen");
        let address = listener.address();
        let peer = transport.connect(&address).await.expect("connect");
        Fixture {
            name: transport.name().to_string(),
            transport,
            bind: bind.to_string(),
            unreachable: unreachable.to_string(),
            block_size,
            address,
            peer,
            sessions,
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }

    /// The listener, taken: it is shut down at the end of the clause
    /// unless the clause took it.
    fn take_listener(&self) -> Option<Box<dyn Listener>> {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// A clause of the transport contract: its name, and its check against a
/// fixture of its own.
pub type Clause = (&'static str, for<'a> fn(&'a Fixture) -> BoxFuture<'a, ()>);

/// The transport contract, clause by clause.
pub const CLAUSES: &[Clause] = &[
    (
        "each connection is served by a session of its own, closed with it",
        sessions,
    ),
    ("values come back intact", values),
    ("errors keep their kind and message", errors),
    ("a block-sized payload goes both ways", large_payloads),
    ("mutable calls carry their vectors", mutable_calls),
    ("many calls in flight on one connection", concurrent_calls),
    (
        "the queen service takes announcements and long-polls",
        queen_service,
    ),
    ("a node that offers no queen service says so", no_queen),
    (
        "connecting where nobody listens is refused, promptly",
        nobody_there,
    ),
    (
        "calls after shutdown fail instead of hanging",
        after_shutdown,
    ),
];

/// Run the transport contract: every clause of [`CLAUSES`], each against a
/// listener and connection of its own, then a panic naming those that
/// failed. `bind` is an address in the transport's syntax to listen on
/// (port 0 where it has ports); `unreachable` an address where nobody
/// listens. `block_size` is the largest payload the transport must carry
/// in one call.
pub async fn run(transport: Arc<dyn Transport>, bind: &str, unreachable: &str, block_size: usize) {
    let mut clauses = Clauses::new("transport");
    for (name, check) in CLAUSES {
        clauses
            .check_async(name, async {
                let fixture = Fixture::new(transport.clone(), bind, unreachable, block_size).await;
                check(&fixture).await;
                if let Some(listener) = fixture.take_listener() {
                    listener.shutdown().await;
                }
            })
            .await;
    }
    clauses.finish();
}

fn sessions(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let name = &f.name;
        let sessions = &f.sessions;
        assert_eq!(
            f.peer.storage.version().await.expect("version").application,
            "echo/session",
            "{name}: calls must go to the session opened for the connection"
        );
        {
            let other = f
                .transport
                .connect(&f.address)
                .await
                .expect("connect again");
            other.storage.version().await.expect("version");
            assert!(
                sessions.opened.load(std::sync::atomic::Ordering::SeqCst) >= 2,
                "{name}: a second connection must open a second session"
            );
            assert!(sessions.open.load(std::sync::atomic::Ordering::SeqCst) >= 2);
        }
        let closed = async {
            while sessions.open.load(std::sync::atomic::Ordering::SeqCst) > 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), closed)
            .await
            .unwrap_or_else(|_| panic!("{name}: a dropped connection's session must be closed"));
    })
}

fn values(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let st = &f.peer.storage;
        assert_eq!(
            st.version().await.expect("version").available_space,
            Some(12345),
            "{}",
            f.name
        );
        let resp = st
            .allocate_buckets(AllocateRequest {
                storage_index: sid(1),
                share_numbers: vec![0, 1, 2, 3, 255],
                share_size: 10,
                renew_secret: [1; 32],
                cancel_secret: [2; 32],
                upload_secret: [3; 32],
            })
            .await
            .expect("allocate");
        assert_eq!(resp.already_have, vec![0, 2]);
        assert_eq!(resp.allocated, vec![1, 3, 255]);
        assert_eq!(
            st.list_buckets(sid(3))
                .await
                .expect("list")
                .into_iter()
                .collect::<Vec<_>>(),
            vec![(0, 0), (1, 1000), (2, 2000)]
        );
    })
}

fn errors(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let (name, st) = (&f.name, &f.peer.storage);
        let e = st
            .write_bucket(sid(1), 4, [5; 32], 0, Bytes::new())
            .await
            .expect_err("bad secret");
        assert_eq!(
            e.kind(),
            ErrorKind::PermissionDenied,
            "{name}: error kind lost: {e}"
        );
        assert_eq!(
            st.close_bucket(sid(1), 13, [0; 32])
                .await
                .expect_err("close")
                .kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            st.abort_bucket(sid(1), 1, [0; 32])
                .await
                .expect_err("abort")
                .kind(),
            ErrorKind::NotFound
        );
        let e = st
            .advise_corrupt_share(sid(1), 1, "bad block".into())
            .await
            .expect_err("advise");
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Unavailable, "bad block"),
            "{name}: message lost"
        );
    })
}

fn large_payloads(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let (st, block_size) = (&f.peer.storage, f.block_size);
        let big = Bytes::from(pseudo_random_bytes(42, block_size));
        st.write_bucket(sid(1), 4, [4; 32], block_size as u64, big.clone())
            .await
            .expect("large write");
        let back = st
            .read_bucket(sid(2), 9, 5, block_size as u64)
            .await
            .expect("large read");
        assert!(
            back == pseudo_random_bytes((2u64 << 8 | 9) ^ 5, block_size),
            "{}: large read garbled",
            f.name
        );
    })
}

fn mutable_calls(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let st = &f.peer.storage;
        let r = st
            .slot_readv(sid(1), vec![1, 2], vec![(0, 10), (5, 6)])
            .await
            .expect("readv");
        assert_eq!(r[&2][1], Bytes::from_static(b"2:5:6"));
        let mut writes = BTreeMap::new();
        writes.insert(
            3,
            SlotWrite {
                tests: vec![TestVector::equals(0, Bytes::from_static(b"t"))],
                writes: vec![WriteVector {
                    offset: 1,
                    data: Bytes::from_static(b"w"),
                }],
                new_length: Some(9),
            },
        );
        let secrets = SlotSecrets {
            write_enabler: [7; 32],
            renew_secret: [8; 32],
            cancel_secret: [9; 32],
        };
        let (ok, echo) = st
            .slot_testv_and_readv_and_writev(sid(1), secrets, writes, vec![])
            .await
            .expect("testv");
        assert!(ok);
        assert_eq!(
            echo[&3],
            vec![
                Bytes::from_static(b"t"),
                Bytes::from_static(b"w"),
                Bytes::from("Some(9)")
            ]
        );
        st.add_lease(sid(1), [1; 32], [2; 32]).await.expect("lease");
    })
}

fn concurrent_calls(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64u8 {
            let st = f.peer.storage.clone();
            tasks.spawn(async move {
                let got = st
                    .read_bucket(sid(i), i, 0, 1000)
                    .await
                    .expect("concurrent read");
                assert!(
                    got == pseudo_random_bytes(u64::from(i) << 8 | u64::from(i), 1000),
                    "concurrent replies crossed"
                );
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("concurrent task");
        }
    })
}

/// The queen service, with a long poll that returns when data arrives.
fn queen_service(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let q = &f.peer.queen;
        let g = ECHO_GRID_SECRET;
        assert_eq!(
            q.poll_announcements([0; 32], 0, 10)
                .await
                .expect_err("wrong grid secret")
                .kind(),
            ErrorKind::PermissionDenied,
            "{}: the grid secret must reach the queen",
            f.name
        );
        let empty = q.poll_announcements(g, 0, 10).await.expect("poll empty");
        assert!(empty.announcements.is_empty());
        let a = Announcement {
            body: Bytes::from_static(b"body"),
            signature: Bytes::from_static(b"sig"),
            public_key: Bytes::from_static(b"key"),
        };
        assert_eq!(
            q.announce(
                g,
                Announcement {
                    signature: Bytes::new(),
                    ..a.clone()
                }
            )
            .await
            .expect_err("unsigned")
            .kind(),
            ErrorKind::PermissionDenied
        );
        q.announce(g, a.clone()).await.expect("announce");
        let batch = q.poll_announcements(g, 0, 1000).await.expect("poll");
        assert_eq!((batch.cursor, batch.announcements), (1, vec![a]));
    })
}

fn no_queen(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let storage_only = f
            .transport
            .listen(
                &f.bind,
                LocalServices {
                    storage: Some(Arc::new(EchoStorage::default())),
                    queen: None,
                },
            )
            .await
            .expect("second listener");
        let p2 = f
            .transport
            .connect(&storage_only.address())
            .await
            .expect("connect 2");
        assert_eq!(
            p2.queen
                .poll_announcements(ECHO_GRID_SECRET, 0, 0)
                .await
                .expect_err("no queen")
                .kind(),
            ErrorKind::NotFound
        );
        storage_only.shutdown().await;
    })
}

/// Nobody there: refused, promptly.
fn nobody_there(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let name = &f.name;
        let e = tokio::time::timeout(Duration::from_secs(30), f.transport.connect(&f.unreachable))
            .await
            .expect("connect to nobody must not hang");
        match e {
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                "{name}: connecting to nobody gave {e}"
            ),
            Ok(p) => {
                // Lazy transports may connect on first call instead.
                let e = p.storage.version().await.expect_err("call to nobody");
                assert!(
                    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                    "{e}"
                );
            }
        }
    })
}

fn after_shutdown(f: &Fixture) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        // A call first, so that the connection is up when the listener
        // goes (lazy transports connect on first use).
        f.peer.storage.version().await.expect("version");
        if let Some(listener) = f.take_listener() {
            listener.shutdown().await;
        }
        let r = tokio::time::timeout(Duration::from_secs(60), f.peer.storage.version())
            .await
            .expect("a call to a stopped listener must not hang");
        let e = r.expect_err("call after shutdown");
        assert!(
            matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "{}: call after shutdown gave {e}",
            f.name
        );
    })
}
