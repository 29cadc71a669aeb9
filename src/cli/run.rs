//! What each command does: node commands, file commands on a client, and
//! the plugins a build or a node offers.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use tahoe_core::plugin::config::{CONFIG_FILE, NodeConfig};
use tahoe_core::plugin::registry::PluginKind;

use super::args::{Cli, Command, default_basedir};
use super::{debug, runtime};
use crate::client::aliases::Aliases;
use crate::client::deep::DeepHow;
use crate::client::files::{self, DeepOutput, Files, LsOptions, ManifestShow};
use crate::client::session::Checking;

/// Run a parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    crate::client::progress::set_quiet(cli.quiet);
    let given = cli.basedir;
    let basedir = given.clone().unwrap_or_else(default_basedir);
    match cli.command {
        Command::Plugins { config: None, json } => list_plugins(json, out),
        Command::Plugins {
            config: Some(basedir),
            json,
        } => check_config(&basedir, json, out),
        Command::CreateQueen { nickname, listen } => {
            // As Tahoe's create-introducer: no default, so that ~/.tahoe is
            // never made a queen by accident.
            let basedir = given.context("create-queen needs a base directory: -d BASEDIR")?;
            let address = runtime()?.block_on(crate::node::create_queen(
                &basedir,
                &nickname,
                listen.as_deref(),
            ))?;
            writeln!(out, "queen created in {}", basedir.display())?;
            writeln!(
                out,
                "introducer URL (also in {}): {address}",
                basedir.join(crate::basedir::INTRODUCER_FILE).display()
            )?;
            Ok(())
        }
        Command::CreateClient {
            introducer,
            nickname,
            no_storage,
            vdrive,
        } => {
            crate::node::create_client(
                &basedir,
                introducer.as_deref(),
                &nickname,
                !no_storage,
                vdrive.as_deref(),
            )?;
            writeln!(out, "client created in {}", basedir.display())?;
            Ok(())
        }
        Command::Run => {
            crate::node::daemon::init_logging(Some(&basedir))?;
            runtime()?.block_on(crate::node::run(&basedir))
        }
        Command::Start => crate::node::daemon::start(&basedir, out),
        Command::Stop => crate::node::daemon::stop(&basedir, out),
        Command::Restart => {
            if crate::basedir::running_pid(&basedir).is_some() {
                crate::node::daemon::stop(&basedir, out)?;
            }
            crate::node::daemon::start(&basedir, out)
        }
        Command::Status { json } => crate::node::daemon::status(&basedir, json, out),
        Command::Demo {
            dir,
            clients,
            web_port,
        } => {
            crate::node::daemon::init_logging(None)?;
            runtime()?.block_on(crate::node::demo::run(dir, clients, web_port, out))
        }
        Command::Debug { command } => debug::run(&basedir, command, out),
        Command::Mount {
            read_only,
            cache_ttl,
            args,
        } => mount(&basedir, read_only, cache_ttl, &args, out),
        other => file_command(other, &basedir, out),
    }
}

/// The commands on a client's files and aliases.
fn file_command(command: Command, basedir: &Path, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Put {
            mutable,
            format,
            keep,
            file,
            target,
        } => {
            let cap = with_files(basedir, 0, |f| async move {
                f.put(&file, target.as_deref(), mutable, format.as_deref())
                    .await
            })?;
            if let Some(cap) = cap {
                if keep {
                    crate::client::maintenance::keep(basedir, &cap)?;
                }
                writeln!(out, "{cap}")?;
            } else if keep {
                anyhow::bail!(
                    "--keep keeps a cap the put prints; this put linked the file at a path (the path keeps it)"
                );
            }
            Ok(())
        }
        Command::Get { source, out: dest } => with_files(basedir, 0, |f| async move {
            f.get(&source, dest.as_deref()).await
        }),
        Command::Ls {
            long,
            json,
            uri,
            readonly_uri,
            path,
        } => {
            let o = LsOptions {
                long,
                json,
                uri,
                readonly_uri,
            };
            let text = with_files(basedir, 0, |f| async move {
                let mut text = Vec::new();
                f.ls(path.as_deref(), o, &mut text).await?;
                Ok(text)
            })?;
            out.write_all(&text)?;
            Ok(())
        }
        Command::Check {
            json,
            verify,
            add_lease,
            repair,
            repair_threshold,
            paths,
        } => {
            let paths = if paths.is_empty() {
                vec!["tahoe:".to_string()]
            } else {
                paths
            };
            let how = files::CheckHow {
                json,
                checking: Checking { verify, add_lease },
                repair: repair.then_some(repair_threshold),
            };
            let (text, lost) = with_files(basedir, 0, |f| async move {
                let (mut text, mut lost) = (String::new(), Vec::new());
                for p in &paths {
                    let (shown, recoverable) = f.check_report(p, how).await?;
                    text.push_str(&shown);
                    if !recoverable {
                        lost.push(p.clone());
                    }
                }
                Ok((text, lost))
            })?;
            out.write_all(text.as_bytes())?;
            if !lost.is_empty() {
                anyhow::bail!("not recoverable: {}", lost.join(", "));
            }
            Ok(())
        }
        Command::DeepCheck {
            json,
            verbose,
            verify,
            add_lease,
            repair,
            repair_threshold,
            path,
        } => {
            let how = DeepHow {
                check: Some(Checking { verify, add_lease }),
                repair: repair.then_some(repair_threshold),
            };
            let output = if json {
                DeepOutput::Json
            } else {
                DeepOutput::Checked { verbose }
            };
            deep(basedir, path, how, output, out)
        }
        Command::Stats { json, path } => {
            let how = DeepHow {
                check: None,
                repair: None,
            };
            deep(basedir, path, how, DeepOutput::Stats { json }, out)
        }
        Command::Manifest {
            storage_index,
            verify_cap,
            repair_cap,
            json,
            path,
        } => {
            let show = match (storage_index, verify_cap, repair_cap) {
                (true, _, _) => ManifestShow::StorageIndex,
                (_, true, _) => ManifestShow::VerifyCap,
                (_, _, true) => ManifestShow::RepairCap,
                _ => ManifestShow::CapAndPath,
            };
            let how = DeepHow {
                check: None,
                repair: None,
            };
            let output = if json {
                DeepOutput::Json
            } else {
                DeepOutput::Manifest(show)
            };
            deep(basedir, path, how, output, out)
        }
        Command::Mkdir { format, path } => {
            let format = tahoe_core::format::ssk::MutableFormat::parse(&format)?;
            let cap = with_files(basedir, 0, |f| async move {
                f.mkdir(path.as_deref(), format).await
            })?;
            writeln!(out, "{}", tahoe_core::format::cap::Cap::Dir(cap))?;
            Ok(())
        }
        Command::Cp {
            recursive,
            mut paths,
        } => {
            let dest = paths.pop().unwrap_or_default();
            let keys = if recursive { 2 } else { 0 };
            let n = with_files(basedir, keys, |f| async move {
                f.cp(&paths, &dest, recursive).await
            })?;
            let what = if n == 1 {
                "file copied"
            } else {
                "files copied"
            };
            writeln!(out, "Success: {what}")?;
            Ok(())
        }
        Command::Mv { from, to } => {
            with_files(basedir, 0, |f| async move { f.mv(&from, &to).await })?;
            writeln!(out, "OK")?;
            Ok(())
        }
        Command::Ln { from, to } => {
            with_files(basedir, 0, |f| async move { f.ln(&from, &to).await })?;
            writeln!(out, "OK")?;
            Ok(())
        }
        Command::Rm { path } => with_files(basedir, 0, |f| async move { f.rm(&path).await }),
        Command::CreateAlias { name } => {
            let shown = name.clone();
            with_files(
                basedir,
                0,
                |mut f| async move { f.create_alias(&name).await },
            )?;
            writeln!(out, "Alias '{shown}' created")?;
            Ok(())
        }
        Command::AddAlias { name, cap } => {
            let mut aliases = Aliases::load(basedir)?;
            aliases.add(&name, files::parse_dir_cap(&cap)?)?;
            writeln!(out, "Alias '{name}' added")?;
            Ok(())
        }
        Command::Webopen { path } => {
            // With the node's web token once: opened in a browser, it signs
            // the browser in (a cookie) and leaves the address bar.
            let url = crate::web::url_of(basedir, path.as_deref())?;
            let url = crate::web::token::with_token(&url, basedir)?;
            writeln!(out, "{url}")?;
            Ok(())
        }
        Command::ListAliases { json, readonly_uri } => {
            let aliases = Aliases::load(basedir)?;
            files::list_aliases(&aliases, json, readonly_uri, out)
        }
        _ => anyhow::bail!("not a file command"),
    }
}

/// `tahoe deep-check` and `tahoe manifest`: the lines as they come; an
/// error when an object is not recoverable.
fn deep(
    basedir: &Path,
    path: Option<String>,
    how: DeepHow,
    output: DeepOutput,
    out: &mut dyn Write,
) -> Result<()> {
    let path = path.unwrap_or_else(|| "tahoe:".to_string());
    let lost = with_files(basedir, 0, |f| async move {
        f.deep(&path, how, output, out).await
    })?;
    if lost > 0 {
        anyhow::bail!("{lost} object(s) not recoverable");
    }
    Ok(())
}

/// Run a file command against the client in `basedir`, with `keys`
/// signing keys made ahead in the background.
fn with_files<T, F, Fut>(basedir: &Path, keys: usize, f: F) -> Result<T>
where
    F: FnOnce(Files) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    crate::node::daemon::init_logging(None)?;
    runtime()?.block_on(async {
        let files = Files::open(basedir, keys).await?;
        f(files).await
    })
}

/// `tahoe plugins [--json]`: the plugins built into this binary.
fn list_plugins(json: bool, out: &mut dyn Write) -> Result<()> {
    let registry = crate::plugins::builtin_registry()?;
    let plugins = registry.plugins();
    if json {
        let list: Vec<_> = plugins
            .iter()
            .map(|p| {
                serde_json::json!({
                    "kind": p.kind.to_string(),
                    "name": p.name,
                    "description": p.description,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "plugins": list }))?
        )?;
        return Ok(());
    }
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for kind in PluginKind::ALL {
        writeln!(out, "{kind}:")?;
        for p in plugins.iter().filter(|p| p.kind == kind) {
            writeln!(out, "  {:width$}  {}", p.name, p.description)?;
        }
    }
    Ok(())
}

/// `tahoe plugins --config BASEDIR [--json]`: the node's configuration
/// checked, and the plugins it selects and loads.
fn check_config(basedir: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let config = NodeConfig::load(basedir)?;
    let registry = crate::plugins::registry_for(&config)?;
    let selection = registry
        .select(&config)
        .with_context(|| format!("checking {}", basedir.join(CONFIG_FILE).display()))?;
    let e = &config.encoding;
    let file = basedir.join(CONFIG_FILE);
    let loaded: Vec<_> = registry
        .plugins()
        .iter()
        .filter_map(|p| {
            p.origin.as_ref().map(|origin| {
                serde_json::json!({
                    "kind": p.kind.to_string(),
                    "name": p.name,
                    "from": origin.display().to_string(),
                    "description": p.description,
                })
            })
        })
        .collect();
    let r = serde_json::json!({
        "config": file.display().to_string(),
        "exists": file.exists(),
        "role": format!("{:?}", config.node.role).to_lowercase(),
        "encoding": {"k": e.k, "happy": e.happy, "n": e.n, "max_segment_size": e.max_segment_size},
        "codec": selection.codec.name(),
        "cipher": selection.cipher.name(),
        "cipher_key_bits": selection.cipher.key_len() * 8,
        "storage": selection.storage.as_ref().map(|s| s.name().to_string()),
        "transport": selection.transport.name(),
        "loaded": loaded,
    });
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    if file.exists() {
        writeln!(out, "config:    {} (valid)", file.display())?;
    } else {
        writeln!(out, "config:    {} absent: defaults apply", file.display())?;
    }
    writeln!(out, "role:      {:?}", config.node.role)?;
    writeln!(
        out,
        "encoding:  {}-of-{}, happy {}, segments up to {} bytes",
        e.k, e.n, e.happy, e.max_segment_size
    )?;
    writeln!(out, "codec:     {}", selection.codec.name())?;
    writeln!(
        out,
        "cipher:    {} ({}-bit keys)",
        selection.cipher.name(),
        selection.cipher.key_len() * 8
    )?;
    match &selection.storage {
        Some(s) => writeln!(out, "storage:   {}", s.name())?,
        None => writeln!(out, "storage:   disabled")?,
    }
    writeln!(out, "transport: {}", selection.transport.name())?;
    for p in &loaded {
        writeln!(
            out,
            "loaded:    {} plugin `{}` from {}: {}",
            p["kind"].as_str().unwrap_or_default(),
            p["name"].as_str().unwrap_or_default(),
            p["from"].as_str().unwrap_or_default(),
            p["description"].as_str().unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `tahoe mount`: see [`crate::fs::control`].
fn mount(
    basedir: &Path,
    read_only: bool,
    cache_ttl: f64,
    args: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    let (target, mountpoint) = match args {
        [m] => ("tahoe:", m),
        [t, m] => (t.as_str(), m),
        _ => anyhow::bail!("give [PATH_OR_CAP] MOUNTPOINT"),
    };
    if !(cache_ttl.is_finite() && (0.0..=86400.0).contains(&cache_ttl)) {
        anyhow::bail!("--cache-ttl must be between 0 and 86400 seconds");
    }
    let p = crate::client::aliases::Aliases::load(basedir)?.resolve(target)?;
    let root = p.root_dir()?;
    let mountpoint = std::fs::canonicalize(mountpoint)
        .with_context(|| format!("the mount point {mountpoint}"))?;
    if !mountpoint.is_dir() {
        anyhow::bail!(
            "the mount point {} is not a directory",
            mountpoint.display()
        );
    }
    let request = crate::fs::control::MountRequest {
        root: root.to_string(),
        path: p.path,
        mountpoint,
        read_only,
        cache_ttl_ms: Some((cache_ttl * 1000.0) as u64),
    };
    runtime()?.block_on(crate::fs::control::mount_through_node(
        basedir, request, out,
    ))
}
