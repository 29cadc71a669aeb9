//! The command line: argument parsing and the commands' output.
//!
//! Commands write their results to the given writer (stdout in the binary,
//! a buffer in tests) and return errors for `main` to print; none of them
//! exits the process itself.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine as _;
use clap::{Parser, Subcommand};
use tahoe_core::plugin::config::{CONFIG_FILE, NodeConfig};
use tahoe_core::plugin::registry::PluginKind;

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
    /// Create a queen (the grid's introducer) in BASEDIR.
    CreateQueen {
        /// The queen's base directory.
        #[arg(long)]
        basedir: PathBuf,
        /// A name for people.
        #[arg(long, default_value = "queen")]
        nickname: String,
        /// Address to listen on (default: 127.0.0.1 and a free port, kept).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create a client (a storage node and gateway) in BASEDIR.
    CreateClient {
        /// The client's base directory.
        #[arg(long)]
        basedir: PathBuf,
        /// The queen's address (the contents of its introducer.url); by
        /// default read from BASEDIR/introducer.url.
        #[arg(long)]
        introducer: Option<String>,
        /// A name for people.
        #[arg(long, default_value = "")]
        nickname: String,
        /// Do not store shares for others (a pure gateway).
        #[arg(long)]
        no_storage: bool,
        /// The shared drive's cap (the queen's vdrive.cap), the default
        /// alias `tahoe:`; by default a vdrive.cap copied into BASEDIR.
        #[arg(long, value_name = "CAP")]
        vdrive: Option<String>,
    },
    /// Run a node in the foreground (logs to stderr and BASEDIR/logs/).
    Run {
        /// The node's base directory.
        #[arg(long)]
        basedir: PathBuf,
    },
    /// Start a node in the background.
    Start {
        /// The node's base directory.
        #[arg(long)]
        basedir: PathBuf,
    },
    /// Stop a background node and wait for it to exit.
    Stop {
        /// The node's base directory.
        #[arg(long)]
        basedir: PathBuf,
    },
    /// Stop, then start a node.
    Restart {
        /// The node's base directory.
        #[arg(long)]
        basedir: PathBuf,
    },
    /// Show a node's role, id, queen connection and known servers.
    Status {
        /// The node's base directory.
        #[arg(long)]
        basedir: PathBuf,
    },
    /// Upload a file (or standard input with `-`) and print its cap. With
    /// a grid path as TARGET (`tahoe:docs/a.txt`, `ALIAS:name`, or a path
    /// under the shared drive), link it there (a mutable file already
    /// there is overwritten in place); with a mutable file's write cap,
    /// replace that file's contents.
    Put {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// Make a mutable file (SDMF unless --format says otherwise) and
        /// print its write cap.
        #[arg(long)]
        mutable: bool,
        /// chk (immutable, the default), sdmf or mdmf (mutable).
        #[arg(long)]
        format: Option<String>,
        /// The file, or `-`.
        file: PathBuf,
        /// Where to put it: a grid path, or a mutable file's write cap.
        target: Option<String>,
    },
    /// Download a file, named by its cap or a grid path, to OUT or
    /// standard output.
    Get {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// A cap (URI:CHK:, URI:LIT:, a mutable file's write or read cap)
        /// or a grid path (`tahoe:docs/a.txt`, `CAP/name`).
        source: String,
        /// Where to write (default or `-`: standard output).
        out: Option<PathBuf>,
    },
    /// List a directory (the shared drive by default).
    Ls {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// Type, size, time and name of each entry.
        #[arg(short = 'l', long)]
        long: bool,
        /// Print Tahoe-LAFS's JSON of the directory or file.
        #[arg(long)]
        json: bool,
        /// Show each entry's cap (its write cap where there is one).
        #[arg(long)]
        uri: bool,
        /// Show each entry's read cap.
        #[arg(long)]
        readonly_uri: bool,
        /// A grid path or cap.
        path: Option<String>,
    },
    /// Make a directory (with any missing parents) and print its write
    /// cap; without PATH, an unlinked one.
    Mkdir {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// sdmf (the default) or mdmf.
        #[arg(long, default_value = "sdmf")]
        format: String,
        /// Where: a grid path.
        path: Option<String>,
    },
    /// Copy files and, with -r, directories: local to grid, grid to local,
    /// grid to grid. Arguments with an alias (`tahoe:`) or a cap are on
    /// the grid, others local.
    Cp {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// Copy directories and what they hold.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Sources, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Move an entry to another name or directory.
    Mv {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// What to move.
        from: String,
        /// Where (into it, when it is a directory).
        to: String,
    },
    /// Link what FROM names at TO as well.
    Ln {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// What to link.
        from: String,
        /// Where (into it, when it is a directory).
        to: String,
    },
    /// Unlink an entry from its directory.
    #[command(visible_alias = "unlink")]
    Rm {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// The entry.
        path: String,
    },
    /// Make a new directory and an alias for it.
    CreateAlias {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// The alias.
        name: String,
    },
    /// Add an alias for an existing directory's cap.
    AddAlias {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// The alias.
        name: String,
        /// The directory's cap.
        cap: String,
    },
    /// Print the web gateway's URL of a grid path (the shared drive by
    /// default), for a browser or a program.
    Webopen {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// A grid path or cap.
        path: Option<String>,
    },
    /// List the aliases (the shared drive is `tahoe`).
    ListAliases {
        /// The client.
        #[command(flatten)]
        node: NodeDir,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Show read caps only.
        #[arg(long)]
        readonly_uri: bool,
    },
    /// Run a whole grid on this machine: a queen and storage nodes.
    Demo {
        /// Where to keep the nodes (default: a temporary directory, removed
        /// on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How many storage nodes.
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// The web UI's port (default 3456, or any free port when taken).
        #[arg(long)]
        web_port: Option<u16>,
    },
    /// Tools for developers and curious users.
    Debug {
        /// Which tool.
        #[command(subcommand)]
        command: DebugCommand,
    },
}

/// The client a file command uses.
#[derive(Debug, clap::Args)]
pub struct NodeDir {
    /// The client's base directory.
    #[arg(
        long = "basedir",
        short = 'd',
        visible_alias = "node-directory",
        value_name = "BASEDIR",
        default_value_os_t = default_basedir()
    )]
    pub basedir: PathBuf,
}

/// `~/.tahoe`, as Tahoe-LAFS has it.
fn default_basedir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".tahoe")
}

/// `tahoe debug` subcommands.
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Print the cap FILE gets under these parameters, without a grid
    /// (a CHK cap, or a LIT cap for files of 55 bytes or less).
    ChkCap {
        /// The file, or `-` for standard input (spooled to a temporary file).
        file: PathBuf,
        /// Shares needed.
        #[arg(long, default_value_t = 3)]
        k: u16,
        /// Shares made.
        #[arg(long, default_value_t = 10)]
        n: u16,
        /// Maximum segment size in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        segment_size: u64,
        /// The convergence secret, base64.
        #[arg(long)]
        convergence: String,
        /// The codec plugin.
        #[arg(long, default_value = "crs")]
        codec: String,
    },
    /// Print the write cap, read cap and verify cap (one a line) of the
    /// mutable file a private key signs, without a grid.
    MutableCap {
        /// The RSA private key, PEM (PKCS#1 or PKCS#8).
        #[arg(long)]
        key: PathBuf,
        /// sdmf or mdmf.
        #[arg(long, default_value = "sdmf")]
        format: String,
    },
}

/// The `tahoe` program: parse the command line, run it, report an error
/// on standard error and in the exit status.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Not locked for the whole command: `tahoe get` streams to standard
    // output from another thread, which would wait on that lock forever.
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tahoe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Plugins { config: None } => list_plugins(out),
        Command::Plugins {
            config: Some(basedir),
        } => check_config(&basedir, out),
        Command::CreateQueen {
            basedir,
            nickname,
            listen,
        } => {
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
            basedir,
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
        Command::Run { basedir } => {
            crate::node::daemon::init_logging(Some(&basedir))?;
            runtime()?.block_on(crate::node::run(&basedir))
        }
        Command::Start { basedir } => crate::node::daemon::start(&basedir, out),
        Command::Stop { basedir } => crate::node::daemon::stop(&basedir, out),
        Command::Restart { basedir } => {
            if crate::basedir::running_pid(&basedir).is_some() {
                crate::node::daemon::stop(&basedir, out)?;
            }
            crate::node::daemon::start(&basedir, out)
        }
        Command::Status { basedir } => crate::node::daemon::status(&basedir, out),
        Command::Put {
            node,
            mutable,
            format,
            file,
            target,
        } => {
            let cap = files(&node, 0, |f| async move {
                f.put(&file, target.as_deref(), mutable, format.as_deref())
                    .await
            })?;
            if let Some(cap) = cap {
                writeln!(out, "{cap}")?;
            }
            Ok(())
        }
        Command::Get {
            node,
            source,
            out: dest,
        } => files(&node, 0, |f| async move {
            f.get(&source, dest.as_deref()).await
        }),
        Command::Ls {
            node,
            long,
            json,
            uri,
            readonly_uri,
            path,
        } => {
            let o = crate::client::files::LsOptions {
                long,
                json,
                uri,
                readonly_uri,
            };
            let text = files(&node, 0, |f| async move {
                let mut text = Vec::new();
                f.ls(path.as_deref(), o, &mut text).await?;
                Ok(text)
            })?;
            out.write_all(&text)?;
            Ok(())
        }
        Command::Mkdir { node, format, path } => {
            let format = tahoe_core::format::ssk::MutableFormat::parse(&format)?;
            let cap = files(&node, 0, |f| async move {
                f.mkdir(path.as_deref(), format).await
            })?;
            writeln!(out, "{}", tahoe_core::format::cap::Cap::Dir(cap))?;
            Ok(())
        }
        Command::Cp {
            node,
            recursive,
            mut paths,
        } => {
            let dest = paths.pop().unwrap_or_default();
            let n = files(&node, if recursive { 2 } else { 0 }, |f| async move {
                f.cp(&paths, &dest, recursive).await
            })?;
            writeln!(
                out,
                "Success: {}",
                if n == 1 {
                    "file copied"
                } else {
                    "files copied"
                }
            )?;
            Ok(())
        }
        Command::Mv { node, from, to } => {
            files(&node, 0, |f| async move { f.mv(&from, &to).await })?;
            writeln!(out, "OK")?;
            Ok(())
        }
        Command::Ln { node, from, to } => {
            files(&node, 0, |f| async move { f.ln(&from, &to).await })?;
            writeln!(out, "OK")?;
            Ok(())
        }
        Command::Rm { node, path } => files(&node, 0, |f| async move { f.rm(&path).await }),
        Command::CreateAlias { node, name } => {
            let shown = name.clone();
            files(&node, 0, |mut f| async move { f.create_alias(&name).await })?;
            writeln!(out, "Alias '{shown}' created")?;
            Ok(())
        }
        Command::AddAlias { node, name, cap } => {
            let mut aliases = crate::client::aliases::Aliases::load(&node.basedir)?;
            aliases.add(&name, crate::client::files::parse_dir_cap(&cap)?)?;
            writeln!(out, "Alias '{name}' added")?;
            Ok(())
        }
        Command::Webopen { node, path } => {
            // With the node's web token once: opened in a browser, it signs
            // the browser in (a cookie) and leaves the address bar.
            let url = crate::web::url_of(&node.basedir, path.as_deref())?;
            let url = crate::web::token::with_token(&url, &node.basedir)?;
            writeln!(out, "{url}")?;
            Ok(())
        }
        Command::ListAliases {
            node,
            json,
            readonly_uri,
        } => {
            let aliases = crate::client::aliases::Aliases::load(&node.basedir)?;
            crate::client::files::list_aliases(&aliases, json, readonly_uri, out)
        }
        Command::Demo {
            dir,
            clients,
            web_port,
        } => {
            crate::node::daemon::init_logging(None)?;
            runtime()?.block_on(crate::node::demo::run(dir, clients, web_port, out))
        }
        Command::Debug {
            command:
                DebugCommand::ChkCap {
                    file,
                    k,
                    n,
                    segment_size,
                    convergence,
                    codec,
                },
        } => {
            let secret = base64::engine::general_purpose::STANDARD
                .decode(convergence.trim())
                .context("--convergence must be base64")?;
            let cap = runtime()?.block_on(chk_cap(&file, k, n, segment_size, secret, &codec))?;
            writeln!(out, "{cap}")?;
            Ok(())
        }
        Command::Debug {
            command: DebugCommand::MutableCap { key, format },
        } => {
            let format = tahoe_core::format::ssk::MutableFormat::parse(&format)?;
            let pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let key = tahoe_core::client::mutable::rsa::SigningKey::from_pem(&pem)
                .with_context(|| format!("reading the key in {}", key.display()))?;
            let write = key.write_cap(format);
            let read = write.read_cap();
            writeln!(out, "{write}")?;
            writeln!(out, "{read}")?;
            writeln!(out, "{}", read.verifier())?;
            Ok(())
        }
    }
}

/// Run a file command against the client in `node`, with `keys` signing
/// keys made ahead in the background.
fn files<T, F, Fut>(node: &NodeDir, keys: usize, f: F) -> Result<T>
where
    F: FnOnce(crate::client::files::Files) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    crate::node::daemon::init_logging(None)?;
    runtime()?.block_on(async {
        let files = crate::client::files::Files::open(&node.basedir, keys).await?;
        f(files).await
    })
}

/// The async runtime of every command. Blocking work (file I/O, codecs)
/// runs on a small pool: each extra thread gets its own malloc arena, and
/// with tokio's default of 512 threads the arenas' retained memory, not the
/// data, would dominate a node's RSS.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The cap of a file under the given parameters (see `tahoe debug chk-cap`).
pub async fn chk_cap(
    file: &std::path::Path,
    k: u16,
    n: u16,
    max_segment_size: u64,
    convergence: Vec<u8>,
    codec_name: &str,
) -> Result<tahoe_core::format::cap::Cap> {
    use std::sync::Arc;
    use tahoe_core::client::immutable::KeyMode;
    use tahoe_core::client::immutable::sink::NullSink;
    use tahoe_core::client::immutable::upload::Uploader;
    use tahoe_core::client::source::{FileSource, Source, spool};
    use tahoe_core::kinds::codec::CodecParams;
    use tahoe_core::plugin::registry::PluginContext;

    if max_segment_size == 0 {
        anyhow::bail!("--segment-size must be at least 1");
    }
    let registry = crate::plugins::builtin_registry()?;
    let here = std::path::Path::new(".");
    let codec = registry.codec(
        codec_name,
        CodecParams::new(k, n)?,
        &PluginContext::empty(PluginKind::Codec, codec_name, here),
    )?;
    let cipher = registry.cipher(
        "aes-ctr",
        &PluginContext::empty(PluginKind::Cipher, "aes-ctr", here),
    )?;
    let source: Arc<dyn Source> = if file.as_os_str() == "-" {
        Arc::new(spool(std::io::stdin().lock(), &std::env::temp_dir())?)
    } else {
        Arc::new(FileSource::open(file)?)
    };
    let uploader = Uploader {
        codec,
        cipher,
        max_segment_size,
        key_mode: KeyMode::Convergent(convergence),
    };
    Ok(uploader.upload(source, &NullSink { n }).await?)
}

fn list_plugins(out: &mut dyn Write) -> Result<()> {
    let registry = crate::plugins::builtin_registry()?;
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
    let config = NodeConfig::load(basedir)?;
    let registry = crate::plugins::registry_for(&config)?;
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
    for p in registry.plugins() {
        if let Some(origin) = &p.origin {
            writeln!(
                out,
                "loaded:    {} plugin `{}` from {}: {}",
                p.kind,
                p.name,
                origin.display(),
                p.description
            )?;
        }
    }
    Ok(())
}
