//! The roles a node runs: the queen (its rendezvous service, and the
//! publishing of the shared drive) and the client (its storage server,
//! announcements, broker and gateway).

use super::status::{Status, write_status};
use crate::basedir::CRAWLER_STATE_FILE;
use crate::basedir::INTRODUCER_FILE;
use crate::basedir::SERVERS_FILE;
use crate::basedir::VDRIVE_KEY_FILE;
use crate::basedir::VDRIVE_PUBLISHED_FILE;
use crate::basedir::grid_secret;
use crate::basedir::introducer_of;
use crate::client::GridClient;
use crate::node::queen;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::plugin::config::NodeConfig;
use tahoe_core::plugin::registry::Selection;
use tahoe_core::protocol::QueenAddress;
use tahoe_core::protocol::identity::{NodeKey, write_private};
use tahoe_core::protocol::transport::{Listener, LocalServices};
use tahoe_core::server::{ServerConfig, StorageServer};

use super::queen::Queen;
use crate::client::broker::Broker;
use tahoe_core::protocol::announce::{self, AnnouncementBody, now_ms};

/// The address to announce: the bound one, or `transport.advertise`. An
/// advertise value without a scheme is a `HOST:PORT` that replaces the
/// bound one in the listener's address (keeping its key fingerprint).
pub(super) fn advertised(cfg: &NodeConfig, listener: &dyn Listener) -> String {
    let bound = listener.address();
    let adv = &cfg.transport.advertise;
    if adv.is_empty() {
        bound
    } else if adv.contains("://") {
        adv.clone()
    } else {
        match bound.split_once('@') {
            Some((scheme_and_key, _)) => format!("{scheme_and_key}@{adv}"),
            None => adv.clone(),
        }
    }
}

/// Everything a running node holds, for ordered shutdown.
pub(super) struct Running {
    pub(super) listener: Box<dyn Listener>,
    pub(super) tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Listen on the configured address with `services`; the listener and
/// the address to announce.
async fn listen(
    cfg: &NodeConfig,
    sel: &Selection,
    services: LocalServices,
    role: &str,
    key: &NodeKey,
) -> Result<(Box<dyn Listener>, String)> {
    let listener = sel
        .transport
        .listen(&cfg.transport.listen, services)
        .await
        .with_context(|| format!("listening on {:?}", cfg.transport.listen))?;
    let address = advertised(cfg, listener.as_ref());
    tracing::info!("{role} {} listening at {address}", key.node_id());
    Ok((listener, address))
}

pub(super) async fn start_queen(
    cfg: &NodeConfig,
    sel: &Selection,
    key: &NodeKey,
) -> Result<Running> {
    let secret = grid_secret(cfg.basedir())?;
    let queen = Arc::new(Queen::new(
        secret,
        sel.transport.clone(),
        queen::QueenLimits {
            ttl: Duration::from_secs(cfg.queen.announcement_ttl_secs.max(1)),
            per_member: cfg.queen.max_servers_per_member,
        },
    )?);
    let services = LocalServices {
        storage: None,
        queen: Some(queen.clone()),
    };
    let (listener, address) = listen(cfg, sel, services, "queen", key).await?;
    let url = QueenAddress {
        address: address.clone(),
        secret,
    };
    write_private(
        &cfg.basedir().join(INTRODUCER_FILE),
        format!("{url}\n").as_bytes(),
    )?;
    // The queen is a client of its own grid for one thing: publishing the
    // shared root directory.
    let broker = Arc::new(Broker::local(
        sel.transport.clone(),
        url.clone(),
        queen.clone() as Arc<dyn tahoe_core::protocol::QueenService>,
    ));
    let mut tasks = vec![tokio::spawn(broker.clone().subscribe())];
    if !cfg.basedir().join(VDRIVE_PUBLISHED_FILE).exists() {
        let session = GridClient::with_broker(cfg.clone(), broker)?;
        tasks.push(tokio::spawn(async move { publish_root(session).await }));
    }
    let (basedir, node_id) = (cfg.basedir().to_path_buf(), key.node_id());
    tasks.push(tokio::spawn(async move {
        loop {
            write_status(
                &basedir,
                &Status {
                    role: "queen".into(),
                    node_id: node_id.clone(),
                    address: address.clone(),
                    queen_connected: None,
                    known_servers: queen.server_count(),
                    connected_servers: queen.server_count(),
                    servers: Vec::new(),
                    pid: std::process::id(),
                },
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }));
    Ok(Running { listener, tasks })
}

pub(super) async fn start_client(
    cfg: &NodeConfig,
    sel: &Selection,
    key: &Arc<NodeKey>,
) -> Result<Running> {
    let introducer = introducer_of(cfg)?;
    let storage = sel
        .storage
        .as_ref()
        .map(|backend| storage_server(cfg, backend.clone()).map(Arc::new))
        .transpose()?;
    let web_storage = storage.as_deref().cloned();
    let services = LocalServices {
        storage: storage.clone().map(|s| s as _),
        queen: None,
    };
    let (listener, address) = listen(cfg, sel, services, "client", key).await?;
    let broker = Arc::new(Broker::new(
        sel.transport.clone(),
        introducer,
        Some(cfg.basedir().join(SERVERS_FILE)),
    ));
    let mut tasks = vec![tokio::spawn(broker.clone().subscribe())];
    if let Some(server) = storage {
        let sweeper = server.clone();
        // Buckets nobody writes to give their space back even when no
        // allocation comes to sweep them.
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                sweeper.expire_idle_uploads();
            }
        }));
        // The lease crawler: a state file of a newer version stops the
        // node here, by name, rather than being misread.
        let state_file = cfg.basedir().join(CRAWLER_STATE_FILE);
        tahoe_core::server::crawler::load_state(&state_file)?;
        if cfg.storage.crawler.enabled {
            let crawler = server.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crawler.run_crawler(state_file).await {
                    tracing::error!("the lease crawler stopped: {e}");
                }
            }));
        }
        tasks.push(tokio::spawn(announce_storage(
            server,
            broker.clone(),
            key.clone(),
            cfg.node.nickname.clone(),
            address.clone(),
            Duration::from_secs(cfg.node.announce_interval_secs.max(1)),
        )));
    }
    if cfg.maintenance.enabled {
        let maintainer = crate::client::maintenance::Maintainer {
            grid: Arc::new(GridClient::with_broker(cfg.clone(), broker.clone())?),
            config: cfg.maintenance.clone(),
            basedir: cfg.basedir().to_path_buf(),
            clock: tahoe_core::time::Clock::system(),
        };
        tasks.push(tokio::spawn(maintainer.run()));
    }
    // The gateway, the mount socket and the SFTP server report into one
    // operations list and one set of statistics.
    let journal = Arc::new(crate::web::FsJournal::default());
    if let Some(task) = start_gateway(cfg, key, &broker, web_storage, &journal).await? {
        tasks.push(task);
    }
    tasks.extend(start_file_systems(cfg, &broker, journal).await?);
    tasks.push(tokio::spawn(report_client_status(
        cfg.basedir().to_path_buf(),
        key.node_id(),
        address,
        broker,
    )));
    Ok(Running { listener, tasks })
}

/// The node's storage server, as `[storage]` configures it.
fn storage_server(
    cfg: &NodeConfig,
    backend: Arc<dyn tahoe_core::kinds::storage::StorageBackend>,
) -> Result<StorageServer> {
    let st = &cfg.storage;
    Ok(StorageServer::new(
        backend,
        ServerConfig {
            reserved_space: st.reserved_space,
            readonly: st.readonly,
            bucket_timeout: Duration::from_secs(st.bucket_timeout_secs),
            max_pending_buckets: st.max_pending_buckets,
            max_pending_bytes: st.max_pending_bytes,
            lease_duration: st.lease_duration,
            expiry: st.expire.policy()?,
            crawler: st.crawler.crawler()?,
            ..ServerConfig::default()
        },
    ))
}

/// Announce the storage server at `address` to the queen every `every`,
/// and at once when the queen comes back; retry with backoff while it is
/// away.
async fn announce_storage(
    server: Arc<StorageServer>,
    broker: Arc<Broker>,
    key: Arc<NodeKey>,
    nickname: String,
    address: String,
    every: Duration,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let space = server.backend().remaining_capacity().await.ok().flatten();
        let body = AnnouncementBody {
            node_id: key.node_id(),
            nickname: nickname.clone(),
            address: address.clone(),
            available_space: space,
            version: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")).into(),
            seq: now_ms(),
        };
        let sent = async {
            broker
                .queen()
                .await?
                .announce(broker.grid_secret(), announce::sign(&key, &body)?)
                .await
        }
        .await;
        match sent {
            Ok(()) => {
                backoff = Duration::from_millis(200);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = broker.queen_back.notified() => {}
                }
            }
            Err(e) => {
                tracing::debug!("announcing to the queen failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The web gateway, when `web.port` (or `BASEDIR/webport`) asks for one.
/// `tahoe mount`'s socket, the SFTP server when `[sftp]` enables it, and
/// the S3 gateway when `[s3]` does.
async fn start_file_systems(
    cfg: &NodeConfig,
    broker: &Arc<Broker>,
    journal: Arc<crate::web::FsJournal>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    use crate::fs::control::{Mounter, serve};
    let spool = cfg.basedir().join(crate::basedir::SPOOL_DIR);
    crate::basedir::private_dir(&spool)?;
    let grid = Arc::new(GridClient::with_broker(cfg.clone(), broker.clone())?.without_waiting());
    let mut tasks = Vec::new();
    let mounter = Arc::new(Mounter {
        grid: grid.clone(),
        spool: spool.clone(),
        journal: journal.clone(),
    });
    // A base directory whose socket path is too long for a Unix socket
    // still runs; only `tahoe mount` cannot reach it.
    match serve(cfg.basedir(), mounter).await {
        Ok(t) => tasks.push(t),
        Err(e) => tracing::warn!("tahoe mount will not reach this node: {e:#}"),
    }
    if cfg.s3.enabled {
        let (_, task) = crate::s3::start(
            &cfg.s3,
            cfg.basedir(),
            grid.clone(),
            spool.clone(),
            journal.clone(),
        )
        .await?;
        tasks.push(task);
    }
    let s = &cfg.sftp;
    if s.enabled {
        let accounts_file = cfg.basedir().join(&s.accounts_file);
        let accounts = crate::fs::accounts::Accounts::load(&accounts_file)?;
        let key = crate::fs::sftp::load_or_make_key(&cfg.basedir().join(&s.host_key_file))?;
        let ip: std::net::IpAddr = s
            .bind
            .parse()
            .with_context(|| format!("sftp.bind = {:?} is not an IP address", s.bind))?;
        let listener = tokio::net::TcpListener::bind((ip, s.port))
            .await
            .with_context(|| format!("listening on {ip}:{} for SFTP", s.port))?;
        tracing::info!(
            "SFTP at {} for {} account(s)",
            listener.local_addr()?,
            accounts.len()
        );
        let server = Arc::new(crate::fs::sftp::SftpServer {
            grid,
            spool,
            journal: journal as Arc<dyn crate::fs::Journal>,
            accounts: Arc::new(accounts),
            max_connections: s.max_connections,
            auth_timeout: Duration::from_secs(s.auth_timeout_secs.max(1)),
            trees: Default::default(),
        });
        tasks.push(server.serve(listener, key));
    }
    Ok(tasks)
}

async fn start_gateway(
    cfg: &NodeConfig,
    key: &NodeKey,
    broker: &Arc<Broker>,
    storage: Option<StorageServer>,
    journal: &crate::web::FsJournal,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(port) = crate::basedir::web_port(cfg.web.port, cfg.basedir())? else {
        return Ok(None);
    };
    let ip: std::net::IpAddr = cfg
        .web
        .bind
        .parse()
        .with_context(|| format!("web.bind = {:?} is not an IP address", cfg.web.bind))?;
    let session = GridClient::with_broker(cfg.clone(), broker.clone())?;
    let info = crate::web::NodeInfo {
        nickname: cfg.node.nickname.clone(),
        node_id: key.node_id(),
        stale_after: Duration::from_secs(3 * cfg.node.announce_interval_secs.max(1)),
    };
    let (bound, task) =
        crate::web::start((ip, port).into(), &cfg.web, session, info, storage, journal).await?;
    tracing::info!("web gateway at http://{bound}/");
    Ok(Some(task))
}

/// Write the client's `status.json` every second.
async fn report_client_status(
    basedir: std::path::PathBuf,
    node_id: String,
    address: String,
    broker: Arc<Broker>,
) {
    loop {
        let known = broker.known();
        let connected = broker.statuses().iter().filter(|s| s.connected).count();
        write_status(
            &basedir,
            &Status {
                role: "client".into(),
                node_id: node_id.clone(),
                address: address.clone(),
                queen_connected: Some(broker.queen_connected()),
                known_servers: known.len(),
                connected_servers: connected,
                servers: known.into_iter().map(|b| (b.nickname, b.address)).collect(),
                pid: std::process::id(),
            },
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The queen's job: publish the empty shared root directory once
/// enough servers (`encoding.happy`) have announced, retrying until it
/// is published, and never again after that. An existing root is
/// never overwritten: creation writes only where no share exists.
pub(super) async fn publish_root(client: GridClient) {
    let basedir = client.config().basedir().to_path_buf();
    let key = match std::fs::read_to_string(basedir.join(VDRIVE_KEY_FILE))
        .map_err(anyhow::Error::from)
        .and_then(|pem| Ok(SigningKey::from_pem(&pem)?))
    {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(
                "cannot publish the shared drive: reading {}: {e:#}",
                basedir.join(VDRIVE_KEY_FILE).display()
            );
            return;
        }
    };
    let want = usize::from(
        client
            .config()
            .encoding
            .happy
            .min(client.config().encoding.n),
    );
    let mut backoff = Duration::from_millis(500);
    loop {
        // Waiting for announcements is a local poll, not a failure: the
        // root is published within a moment of the `happy`th server
        // announcing, so a grid that has just started has its shared
        // drive as soon as it can (a backoff here once left a fresh grid
        // without one for seconds after every server had announced).
        if client.known().len() < want {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let attempt: Result<&str> = async {
            let client = client.mutable_client(KeyPool::new(0)).await?;
            let cap = key.write_cap(MutableFormat::Sdmf);
            let empty = Arc::new(tahoe_core::client::source::BytesSource(bytes::Bytes::new()));
            match client
                .create_with_key(key.clone(), MutableFormat::Sdmf, empty)
                .await
            {
                Ok(_) => Ok("published"),
                Err(e) if e.kind() == tahoe_core::ErrorKind::AlreadyExists => {
                    // Published before (by a run that stopped before
                    // noting it): keep what is there.
                    let _ = client.stat(&cap.read_cap()).await?;
                    Ok("found already published")
                }
                Err(e) => Err(e.into()),
            }
        }
        .await;
        match attempt {
            Ok(how) => {
                tracing::info!("the shared drive (the grid's root directory) is {how}");
                let _ = write_private(&basedir.join(VDRIVE_PUBLISHED_FILE), b"yes\n");
                return;
            }
            Err(e) => {
                tracing::info!("the shared drive is not published yet: {e:#}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
