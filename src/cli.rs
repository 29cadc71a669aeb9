//! The command line: argument parsing and the commands' output.
//!
//! Commands write their results to the given writer (stdout in the binary,
//! a buffer in tests) and return errors for `main` to print; none of them
//! exits the process itself.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tahoe_core::config::{CONFIG_FILE, NodeConfig};
use tahoe_core::registry::PluginKind;

/// A least-authority distributed file store.
#[derive(Debug, Parser)]
#[command(name = "tahoe", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the plugins built into this binary, or check a node's config
    /// and show which plugins it would use.
    Plugins {
        /// A node's base directory: validate its tahoe.toml (with TAHOE_*
        /// environment overrides) and name the plugins it selects.
        #[arg(long, value_name = "BASEDIR")]
        config: Option<PathBuf>,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Plugins { config: None } => list_plugins(out),
        Command::Plugins {
            config: Some(basedir),
        } => check_config(&basedir, out),
    }
}

fn list_plugins(out: &mut dyn Write) -> Result<()> {
    let registry = crate::builtin_registry()?;
    let plugins = registry.plugins();
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for kind in PluginKind::ALL {
        writeln!(out, "{kind}:")?;
        for p in plugins.iter().filter(|p| p.kind == kind) {
            writeln!(out, "  {:width$}  {}", p.name, p.description)?;
        }
    }
    Ok(())
}

fn check_config(basedir: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let registry = crate::builtin_registry()?;
    let config = NodeConfig::load(basedir)?;
    let selection = registry
        .select(&config)
        .with_context(|| format!("checking {}", basedir.join(CONFIG_FILE).display()))?;
    let e = &config.encoding;
    let file = basedir.join(CONFIG_FILE);
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
    Ok(())
}
