//! A node: creating its base directory ([`create`]), running its roles
//! ([`roles`], [`queen`]), reporting its status ([`status`]), and running it
//! in the background ([`daemon`]) or a whole local grid ([`demo`]).
//!
//! [`run`] is the composition root: configuration → plugins → services →
//! listener → background tasks, and the reverse on shutdown (stop
//! announcing, stop listening, remove the pid file).

pub mod daemon;
pub mod demo;
pub mod queen;

pub mod create;
pub mod roles;
pub mod status;

use crate::node::roles::start_client;
use crate::node::roles::start_queen;
pub use create::{create_client, create_queen};
pub use status::Status;

use crate::basedir::NodeLock;
use crate::basedir::STATUS_FILE;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use tahoe_core::plugin::config::{NodeConfig, Role};
use tahoe_core::protocol::identity::NodeKey;

/// Raise this process's soft limit on open files to its hard limit: a
/// node's listeners have caps of their own (`web.max_connections`,
/// `transport.tarpc-tcp.max_connections`) that the usual soft limit of
/// 1024 cannot hold together.
#[allow(unsafe_code)]
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given,
    // which lives across the calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let was = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!(
                    "open files: soft limit raised from {was} to {}",
                    lim.rlim_max
                );
            }
        }
    }
}

/// `tahoe run`: serve until SIGINT or SIGTERM.
pub async fn run(basedir: &Path) -> Result<()> {
    raise_open_file_limit();
    let cfg = NodeConfig::load(basedir)?;
    let registry = crate::plugins::registry_for(&cfg)?;
    let sel = registry.select(&cfg)?;
    let key = Arc::new(NodeKey::load(basedir)?);
    let _lock = NodeLock::take(basedir)?;
    let running = match cfg.node.role {
        Role::Queen => start_queen(&cfg, &sel, &key).await?,
        Role::Client => start_client(&cfg, &sel, &key).await?,
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    for t in &running.tasks {
        t.abort();
    }
    running.listener.shutdown().await;
    let _ = std::fs::remove_file(basedir.join(STATUS_FILE));
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
