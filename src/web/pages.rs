//! The gateway's own pages: the welcome page and the statistics.

use anyhow::Result;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tahoe_core::format::cap::Cap;

use super::error::bad;
use super::form::Args;
use super::html;
use super::maintenance::Report;
use super::ops::{self, OpKind};
use super::reply::{html_response, json};
use super::state::Gateway;
use super::stats::{self, Snapshot};
use super::storage;
use super::token;

pub(super) async fn welcome(gw: &Gateway, args: &Args, headers: &HeaderMap) -> Result<Response> {
    let servers = gw.session.server_statuses();
    let (queen, queen_connected) = gw.session.queen();
    if args.t() == "json" {
        // Tahoe's welcome JSON.
        let now = std::time::SystemTime::now();
        let servers: Vec<_> = servers
            .iter()
            .map(|st| {
                let s = &st.body;
                let heard = now - st.announced_ago;
                serde_json::json!({
                    "nodeid": s.node_id,
                    "connection_status": if st.connected { "connected" } else { "disconnected" },
                    "available_space": s.available_space,
                    "nickname": s.nickname,
                    "version": s.version,
                    "last_received_data": heard
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or_default(),
                })
            })
            .collect();
        let status = if queen_connected {
            format!("Connected to {queen}")
        } else {
            format!("Not connected to {queen}")
        };
        let v = serde_json::json!({"introducers": {"statuses": [status]}, "servers": servers});
        return Ok(json(&v));
    }
    if !args.t().is_empty() {
        return Err(bad(format!("GET /: unknown t={:?}", args.t())));
    }
    // The shared drive's cap only for the node's owner (see `token`).
    let vdrive = if token::holds(headers, &gw.token) {
        crate::basedir::vdrive_of(gw.session.basedir())
            .ok()
            .flatten()
            .map(|d| html::Drive::Cap(Cap::Dir(d).to_string()))
    } else if crate::basedir::vdrive_of(gw.session.basedir())
        .ok()
        .flatten()
        .is_some()
    {
        Some(html::Drive::Hidden)
    } else {
        None
    };
    let checks: Vec<_> = gw
        .ops
        .list()
        .into_iter()
        .filter(|o| o.kind == OpKind::Check)
        .take(10)
        .collect();
    let body = html::welcome(&html::Welcome {
        nickname: &gw.info.nickname,
        node_id: &gw.info.node_id,
        version: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")),
        uptime: gw.started.elapsed(),
        queen: &queen,
        queen_connected,
        servers: &servers,
        stale_after: gw.info.stale_after,
        vdrive,
        checks: &checks,
        storage: gw
            .storage
            .as_ref()
            .map(|s| storage::Summary::of(&s.crawler_state()).html()),
        maintenance: maintenance_report(gw, |r| r.html()),
    });
    Ok(html_response(StatusCode::OK, body))
}

pub(super) async fn statistics(gw: &Gateway, args: &Args) -> Result<Response> {
    let mut snap = Snapshot::of(&gw.stats);
    snap.stats
        .insert("node.uptime".into(), gw.started.elapsed().as_secs_f64());
    let servers = gw.session.server_statuses();
    snap.stats
        .insert("grid.servers_known".into(), servers.len() as f64);
    snap.stats.insert(
        "grid.servers_connected".into(),
        servers.iter().filter(|s| s.connected).count() as f64,
    );
    let running = gw
        .ops
        .list()
        .iter()
        .filter(|o| o.state() == ops::OpState::Running)
        .count();
    snap.stats
        .insert("web.operations_running".into(), running as f64);
    if let Some(s) = &gw.storage {
        let c = s.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (name, v) in [
            ("storage_server.allocate", get(&c.allocate)),
            ("storage_server.write", get(&c.write)),
            ("storage_server.bytes_added", get(&c.bytes_added)),
            ("storage_server.close", get(&c.close)),
            ("storage_server.read", get(&c.read)),
            ("storage_server.bytes_read", get(&c.bytes_read)),
            ("storage_server.readv", get(&c.readv)),
            ("storage_server.writev", get(&c.writev)),
        ] {
            snap.counters.insert(name.into(), v);
        }
        if let Ok(Some(free)) = s.backend().remaining_capacity().await {
            snap.stats
                .insert("storage_server.disk_avail".into(), free as f64);
        }
        snap.stats
            .insert("storage_server.accepting_immutable_shares".into(), 1.0);
        snap.stats
            .extend(storage::Summary::of(&s.crawler_state()).stats());
    }
    if let Some(gauges) = maintenance_report(gw, |r| r.stats()) {
        snap.stats.extend(gauges);
    }
    match args.t() {
        "json" => Ok(json(&serde_json::to_value(&snap)?)),
        "openmetrics" => {
            let mut r = (StatusCode::OK, stats::openmetrics(&snap, &gw.stats)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(r)
        }
        "" => Ok(html_response(StatusCode::OK, html::statistics(&snap))),
        other => Err(bad(format!(
            "/statistics: unknown t={other:?} (expected json or openmetrics)"
        ))),
    }
}

/// `GET /storage`: the storage server's shares and lease crawler (Tahoe's
/// storage status page; `t=json` in its shape).
pub(super) async fn storage(gw: &Gateway, args: &Args) -> Result<Response> {
    let Some(server) = &gw.storage else {
        return Err(tahoe_core::Error::not_found(
            "this node stores no shares ([storage] enabled = false)",
        )
        .into());
    };
    match args.t() {
        "json" => {
            let free = server.backend().remaining_capacity().await.ok().flatten();
            let now = server.config().clock.now();
            Ok(json(&storage::status_json(server, free, now)))
        }
        "" => {
            let body = storage::Summary::of(&server.crawler_state()).html();
            Ok(html_response(
                StatusCode::OK,
                html::layout("Storage", &format!("<h1>Storage</h1>\n{body}")),
            ))
        }
        other => Err(bad(format!(
            "/storage: unknown t={other:?} (expected json)"
        ))),
    }
}

/// `GET /storage/SI?t=json`: one storage index's shares and leases on this
/// node (for `tahoe debug leases`). Lease secrets never leave the node: a
/// lease is shown by its expiry and a tag (a hash of its renew secret, so
/// that two listings can be compared).
pub(super) async fn storage_index(gw: &Gateway, si: &str) -> Result<Response> {
    let Some(server) = &gw.storage else {
        return Err(tahoe_core::Error::not_found(
            "this node stores no shares ([storage] enabled = false)",
        )
        .into());
    };
    let si: tahoe_core::kinds::storage::StorageIndex = si.parse()?;
    let backend = server.backend();
    let now = server.config().clock.now();
    let shares: Vec<_> = backend
        .list(&si)
        .await?
        .iter()
        .map(|i| {
            serde_json::json!({
                "shnum": i.shnum,
                "kind": match i.kind {
                    tahoe_core::kinds::storage::ShareKind::Immutable => "immutable",
                    tahoe_core::kinds::storage::ShareKind::Mutable => "mutable",
                },
                "size": i.size,
            })
        })
        .collect();
    let leases: Vec<_> = backend
        .leases(&si)
        .await?
        .iter()
        .map(|l| {
            let tag = tahoe_core::format::hash::tagged_hash(b"tahoe-rs lease tag", &l.renew_secret);
            serde_json::json!({
                "expires-at": l.expires_at,
                "expires-in": l.expires_at as i64 - now as i64,
                "tag": tahoe_core::base32::encode(&tag[..5]),
            })
        })
        .collect();
    Ok(json(&serde_json::json!({
        "storage-index": si.to_string(),
        "shares": shares,
        "leases": leases,
        "lease-duration": server.config().lease_duration.secs(),
    })))
}

/// `f` of this client's maintenance report (`None` for a queen, or when
/// its state cannot be read: the log says why).
fn maintenance_report<T>(gw: &Gateway, f: impl FnOnce(&Report<'_>) -> T) -> Option<T> {
    let cfg = gw.session.config();
    if cfg.node.role != tahoe_core::plugin::config::Role::Client {
        return None;
    }
    let state = crate::client::maintenance::load_state(gw.session.basedir()).ok()?;
    let now = crate::client::maintenance::system_now();
    Some(f(&Report::new(&state, &cfg.maintenance, now)))
}
