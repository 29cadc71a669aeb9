//! The command line's shape: every command, its arguments and their help
//! (clap). `-d/--basedir` is one global option, accepted before or after
//! the command, as Tahoe-LAFS's `--node-directory` is.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A least-authority distributed file store.
#[derive(Debug, Parser)]
#[command(
    name = "tahoe",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BUILT_FROM_COMMIT"), ")"),
    about
)]
pub struct Cli {
    /// The node's base directory (default: ~/.tahoe; create-queen needs
    /// one). Accepted before or after the command.
    #[arg(
        short = 'd',
        long = "basedir",
        visible_alias = "node-directory",
        value_name = "BASEDIR",
        global = true
    )]
    pub basedir: Option<PathBuf>,
    /// No progress bars (they are drawn only on a terminal anyway).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
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
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a queen (the grid's introducer) in BASEDIR (`-d`, required).
    CreateQueen {
        /// A name for people.
        #[arg(long, default_value = "queen")]
        nickname: String,
        /// Address to listen on (default: 127.0.0.1 and a free port, kept).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create a client (a storage node and gateway) in BASEDIR.
    CreateClient {
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
    Run,
    /// Start a node in the background.
    Start,
    /// Stop a background node and wait for it to exit.
    Stop,
    /// Stop, then start a node.
    Restart,
    /// Show a node's role, id, queen connection and known servers, and
    /// what its maintenance and lease crawler last did.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upload a file (or standard input with `-`) and print its cap. With
    /// a grid path as TARGET (`tahoe:docs/a.txt`, `ALIAS:name`, or a path
    /// under the shared drive), link it there (a mutable file already
    /// there is overwritten in place); with a mutable file's write cap,
    /// replace that file's contents.
    Put {
        /// Make a mutable file (SDMF unless --format says otherwise) and
        /// print its write cap.
        #[arg(long)]
        mutable: bool,
        /// chk (immutable, the default), sdmf or mdmf (mutable).
        #[arg(long)]
        format: Option<String>,
        /// Keep the file alive: add the cap printed to `private/keep`, so
        /// that the node's maintenance renews its leases and repairs it
        /// though no directory links it.
        #[arg(long)]
        keep: bool,
        /// The file, or `-`.
        file: PathBuf,
        /// Where to put it: a grid path, or a mutable file's write cap.
        target: Option<String>,
    },
    /// Download a file, named by its cap or a grid path, to OUT or
    /// standard output.
    Get {
        /// A cap (URI:CHK:, URI:LIT:, a mutable file's write or read cap)
        /// or a grid path (`tahoe:docs/a.txt`, `CAP/name`).
        source: String,
        /// Where to write (default or `-`: standard output).
        out: Option<PathBuf>,
    },
    /// Check files or directories (the shared drive by default): which of
    /// their shares the servers hold, without reading them. Exits non-zero
    /// when one is not recoverable.
    Check {
        /// Print Tahoe-LAFS's JSON of each check.
        #[arg(long, alias = "raw")]
        json: bool,
        /// Read every share whole and check every hash.
        #[arg(long)]
        verify: bool,
        /// Add or renew this node's lease on every server holding shares
        /// (31 days), as Tahoe-LAFS does.
        #[arg(long)]
        add_lease: bool,
        /// Make missing shares again and spread crowded ones, when fewer
        /// than the threshold's good shares are on distinct servers (a
        /// mutable file: publish its newest version again, which needs its
        /// write cap).
        #[arg(long)]
        repair: bool,
        /// With --repair: the number of good shares on distinct servers
        /// below which a file is repaired (default: the node's `happy`).
        #[arg(long, requires = "repair")]
        repair_threshold: Option<usize>,
        /// Grid paths or caps.
        paths: Vec<String>,
    },
    /// Check every file and directory reachable from PATH (the shared
    /// drive by default), each once. Exits non-zero when one is not
    /// recoverable.
    DeepCheck {
        /// Print Tahoe-LAFS's JSON units, one per line.
        #[arg(long, alias = "raw")]
        json: bool,
        /// A line for every object, not only the unhealthy ones.
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Read every share whole and check every hash.
        #[arg(long)]
        verify: bool,
        /// Add or renew this node's lease on every server holding shares
        /// (31 days), as Tahoe-LAFS does.
        #[arg(long)]
        add_lease: bool,
        /// Repair what needs it (see `check --repair`).
        #[arg(long)]
        repair: bool,
        /// With --repair: the good shares on distinct servers below which
        /// a file is repaired (default: the node's `happy`).
        #[arg(long, requires = "repair")]
        repair_threshold: Option<usize>,
        /// A grid path or cap.
        path: Option<String>,
    },
    /// Count the files and directories reachable from PATH (the shared
    /// drive by default), their sizes and a size histogram, as Tahoe-LAFS
    /// prints them.
    Stats {
        /// Print Tahoe-LAFS's JSON statistics.
        #[arg(long, alias = "raw")]
        json: bool,
        /// A grid path or cap.
        path: Option<String>,
    },
    /// List every file and directory reachable from PATH (the shared drive
    /// by default): `CAP PATH` lines.
    Manifest {
        /// Each storage index once instead.
        #[arg(long, conflicts_with_all = ["verify_cap", "repair_cap"])]
        storage_index: bool,
        /// Each verify cap once instead.
        #[arg(long, conflicts_with = "repair_cap")]
        verify_cap: bool,
        /// Each repair cap once instead.
        #[arg(long)]
        repair_cap: bool,
        /// Print Tahoe-LAFS's JSON units, one per line.
        #[arg(long, alias = "raw")]
        json: bool,
        /// A grid path or cap.
        path: Option<String>,
    },
    /// List a directory (the shared drive by default).
    Ls {
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
        /// Copy directories and what they hold.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Sources, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Move an entry to another name or directory.
    Mv {
        /// What to move.
        from: String,
        /// Where (into it, when it is a directory).
        to: String,
    },
    /// Link what FROM names at TO as well.
    Ln {
        /// What to link.
        from: String,
        /// Where (into it, when it is a directory).
        to: String,
    },
    /// Unlink an entry from its directory.
    #[command(visible_alias = "unlink")]
    Rm {
        /// The entry.
        path: String,
    },
    /// Make a new directory and an alias for it.
    CreateAlias {
        /// The alias.
        name: String,
    },
    /// Add an alias for an existing directory's cap.
    AddAlias {
        /// The alias.
        name: String,
        /// The directory's cap.
        cap: String,
    },
    /// Mount a directory of the grid (the shared drive by default) at
    /// MOUNTPOINT through the running node, until Ctrl-C, SIGTERM or
    /// `fusermount -u MOUNTPOINT`. A read-only cap mounts read-only.
    Mount {
        /// Refuse every change, whatever the cap allows.
        #[arg(long)]
        read_only: bool,
        /// How long listings and attributes are trusted before they are
        /// read again, in seconds (changes made through the mount are seen
        /// at once).
        #[arg(long, default_value_t = 1.0)]
        cache_ttl: f64,
        /// A grid path or directory cap (optional: the shared drive by
        /// default), then the directory to mount it on.
        #[arg(num_args = 1..=2, required = true, value_names = ["PATH_OR_CAP", "MOUNTPOINT"])]
        args: Vec<String>,
    },
    /// Print the web gateway's URL of a grid path (the shared drive by
    /// default), for a browser or a program.
    Webopen {
        /// A grid path or cap.
        path: Option<String>,
    },
    /// List the aliases (the shared drive is `tahoe`).
    ListAliases {
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

/// `~/.tahoe`, as Tahoe-LAFS has it.
pub fn default_basedir() -> PathBuf {
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
    /// List the shares and leases this storage node holds for one file
    /// (its storage index, or any cap of it), asking the running node.
    /// Leases show their expiry and a tag, never their secrets.
    Leases {
        /// A storage index (base32) or a cap.
        target: String,
    },
    /// Write the man pages (one per command) and the bash, zsh and fish
    /// completions generated from these definitions, for packagers:
    /// OUTDIR/man/*.1 and OUTDIR/completions/{tahoe.bash,_tahoe,tahoe.fish}.
    DistFiles {
        /// Where to write them (made when missing).
        outdir: PathBuf,
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
