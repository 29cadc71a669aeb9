//! Making a node's base directory: `tahoe create-queen` and
//! `tahoe create-client`.

use crate::basedir::CLIENT_INTRODUCER_FILE;
use crate::basedir::CONVERGENCE_FILE;
use crate::basedir::GRID_SECRET_FILE;
use crate::basedir::INTRODUCER_FILE;
use crate::basedir::VDRIVE_FILE;
use crate::basedir::VDRIVE_KEY_FILE;
use crate::basedir::parse_vdrive;
use crate::basedir::private_dir;
use std::path::Path;

use super::roles::advertised;
use anyhow::{Context, Result, bail};
use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::plugin::config::{CONFIG_FILE, NodeConfig};
use tahoe_core::protocol::QueenAddress;
use tahoe_core::protocol::identity::{NodeKey, write_private};
use tahoe_core::protocol::transport::LocalServices;

pub(super) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    Ok(b)
}

pub(super) fn fresh_basedir(basedir: &Path) -> Result<()> {
    if basedir.join(CONFIG_FILE).exists() {
        bail!(
            "{} already holds a node ({} exists)",
            basedir.display(),
            CONFIG_FILE
        );
    }
    private_dir(basedir)
}

/// The first lines of every tahoe.toml made here: the base directory's
/// format, so that a later tahoe knows what it reads.
fn format_line() -> String {
    format!(
        "# The base directory's format: a tahoe that reads only older ones\n# refuses it. Leave it as it is.\nformat = {}\n\n",
        tahoe_core::plugin::config::CONFIG_FORMAT
    )
}

pub(super) fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `tahoe create-queen`.
pub async fn create_queen(basedir: &Path, nickname: &str, listen: Option<&str>) -> Result<String> {
    fresh_basedir(basedir)?;
    // A queen's address must not change: pick a port now and keep it.
    let listen = match listen {
        Some(l) => l.to_string(),
        None => {
            let probe =
                std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            probe.local_addr()?.to_string()
        }
    };
    let config = format!(
        "{}[node]\nnickname = {}\nrole = \"queen\"\n\n[storage]\nenabled = false\n\n[transport]\nlisten = {}\n",
        format_line(),
        toml_string(nickname),
        toml_string(&listen)
    );
    std::fs::write(basedir.join(CONFIG_FILE), config)?;
    NodeKey::create(basedir)?;
    let cfg = NodeConfig::load(basedir)?;
    let registry = crate::plugins::registry_for(&cfg)?;
    let sel = registry.select(&cfg)?;
    let listener = sel
        .transport
        .listen(&listen, LocalServices::default())
        .await
        .with_context(|| format!("checking that {listen} can be listened on"))?;
    let address = advertised(&cfg, listener.as_ref());
    listener.shutdown().await;
    let secret = random_bytes::<32>()?;
    write_private(
        &basedir.join(GRID_SECRET_FILE),
        format!("{}\n", tahoe_core::base32::encode(&secret)).as_bytes(),
    )?;
    let url = QueenAddress { address, secret };
    write_private(
        &basedir.join(INTRODUCER_FILE),
        format!("{url}\n").as_bytes(),
    )?;
    let address = url.to_string();
    // The shared root directory: its key is made now, so the grid's root
    // never changes; the running queen publishes it once servers are up.
    let key = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .context("key generation")??;
    write_private(&basedir.join(VDRIVE_KEY_FILE), key.to_pem()?.as_bytes())?;
    let cap = Cap::Dir(DirCap::Write(key.write_cap(MutableFormat::Sdmf)));
    write_private(&basedir.join(VDRIVE_FILE), format!("{cap}\n").as_bytes())?;
    Ok(address)
}

/// `tahoe create-client`; `vdrive` is the shared drive's cap (else a
/// `vdrive.cap` copied into `basedir` is kept).
pub fn create_client(
    basedir: &Path,
    introducer: Option<&str>,
    nickname: &str,
    storage: bool,
    vdrive: Option<&str>,
) -> Result<()> {
    let vdrive = vdrive
        .map(|v| parse_vdrive(v).context("the --vdrive given"))
        .transpose()?;
    let copied = basedir.join(INTRODUCER_FILE);
    let introducer = match introducer {
        Some(i) => i.trim().to_string(),
        None => std::fs::read_to_string(&copied)
            .map(|s| s.trim().to_string())
            .with_context(|| {
                format!("no --introducer given and no {} to read", copied.display())
            })?,
    };
    QueenAddress::parse(&introducer).context("the --introducer given")?;
    fresh_basedir(basedir)?;
    // The queen's address carries the grid secret: it goes to a private
    // file, not into the (world-readable) tahoe.toml.
    let config = format!(
        "{}[node]\nnickname = {}\nrole = \"client\"\n\n[storage]\nenabled = {storage}\n",
        format_line(),
        toml_string(nickname),
    );
    std::fs::write(basedir.join(CONFIG_FILE), config)?;
    NodeKey::create(basedir)?;
    write_private(
        &basedir.join(CLIENT_INTRODUCER_FILE),
        format!("{introducer}\n").as_bytes(),
    )?;
    ClientSecret::load_or_create(basedir)?;
    let secret = tahoe_core::base32::encode(&random_bytes::<16>()?);
    write_private(
        &basedir.join(CONVERGENCE_FILE),
        format!("{secret}\n").as_bytes(),
    )?;
    if let Some(cap) = vdrive {
        write_private(&basedir.join(VDRIVE_FILE), format!("{cap}\n").as_bytes())?;
    }
    Ok(())
}
