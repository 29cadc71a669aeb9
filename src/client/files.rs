//! The file commands on grid paths: `ls`, `mkdir`, `put` and `get` with
//! paths, `cp [-r]`, `mv`, `ln`, `rm` and the alias commands, with
//! Tahoe-LAFS's argument shapes.
//!
//! Every error names the path it is about. No command prints a write cap
//! where a read cap was asked for (`--readonly-uri`), and listings of a
//! read-only directory carry no write caps at all: its holder cannot
//! decrypt them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tahoe_core::client::check::CheckResults;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{ChildCap, Directory, Entry, Metadata, Node, Replace};
use tahoe_core::format::ssk::MutableFormat;

use super::deep::{UnitResults, path_of, unit_results};
use super::session::{Checking, GridClient};
use crate::client::aliases::{Aliases, GridPath, is_grid_arg};
use crate::client::json::{
    check_json, dir_json, node_json, repair_json, size_of, storage_index_text,
};
use crate::client::transfer::{self, PutKind};

/// How `ls` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct LsOptions {
    /// Type, size, time and name.
    pub long: bool,
    /// Tahoe-LAFS's JSON of the node.
    pub json: bool,
    /// Each entry's cap (the write cap where there is one).
    pub uri: bool,
    /// Each entry's read cap.
    pub readonly_uri: bool,
}

/// A client's session, directories and aliases, for the file commands.
pub struct Files {
    /// The grid session.
    pub session: GridClient,
    /// Directories over it.
    pub dirs: DirClient,
    /// The node's aliases.
    pub aliases: Aliases,
}

/// The format of new directories: SDMF, as Tahoe-LAFS makes them.
const DIR_FORMAT: MutableFormat = MutableFormat::Sdmf;

impl Files {
    /// Open the client in `basedir`; `keys` signing keys are made ahead in
    /// the background (for commands that make several directories).
    pub async fn open(basedir: &Path, keys: usize) -> Result<Files> {
        let aliases = Aliases::load(basedir)?;
        let session = GridClient::open(basedir).await?;
        let dirs = session.dir_client(KeyPool::new(keys)).await?;
        Ok(Files {
            session,
            dirs,
            aliases,
        })
    }

    /// The node a grid path names.
    async fn node(&self, p: &GridPath) -> Result<Node> {
        if p.path.is_empty() {
            return Ok(Node::from_cap(p.root.clone()));
        }
        let root = p.root_dir()?;
        self.dirs
            .resolve(&root, &p.path)
            .await
            .with_context(|| p.shown.clone())
    }

    /// The directory a grid path names.
    async fn dir(&self, p: &GridPath) -> Result<DirCap> {
        let node = self.node(p).await?;
        node.dir_cap()
            .cloned()
            .with_context(|| format!("{}: not a directory", p.shown))
    }

    /// The directory a grid path names, made (with its parents) if missing.
    async fn dir_made(&self, p: &GridPath) -> Result<DirCap> {
        let root = p.root_dir()?;
        self.dirs
            .mkdir_p(&root, &p.path, DIR_FORMAT)
            .await
            .with_context(|| p.shown.clone())
    }

    /// `ls`.
    pub async fn ls(&self, arg: Option<&str>, o: LsOptions, out: &mut dyn Write) -> Result<()> {
        let p = self.aliases.resolve(arg.unwrap_or("tahoe:"))?;
        let node = self.node(&p).await?;
        let Some(d) = node.dir_cap() else {
            if o.json {
                writeln!(out, "{}", pretty(&node_json(&node, None)))?;
            } else {
                let name = p.name().unwrap_or(&p.shown).to_string();
                print_row(out, &name, &node, None, o, 0)?;
            }
            return Ok(());
        };
        let dir = self.dirs.read(d).await.with_context(|| p.shown.clone())?;
        warn_skipped(&p.shown, &dir);
        if o.json {
            writeln!(out, "{}", pretty(&dir_json(&node, &dir)))?;
            return Ok(());
        }
        let rows: Vec<(&str, Node, &Entry)> = dir
            .entries()
            .map(|(name, e)| Ok((name, dir.node_of(name, e)?, e)))
            .collect::<tahoe_core::Result<_>>()
            .with_context(|| p.shown.clone())?;
        let width = rows
            .iter()
            .map(|(_, n, _)| size_text(n).len())
            .max()
            .unwrap_or(0);
        for (name, n, e) in &rows {
            print_row(out, name, n, Some(e.metadata()), o, width)?;
        }
        Ok(())
    }

    /// `mkdir [PATH]`: the new directory's write cap.
    pub async fn mkdir(&self, arg: Option<&str>, format: MutableFormat) -> Result<DirCap> {
        let Some(arg) = arg else {
            return Ok(self.dirs.create(format, Vec::new()).await?);
        };
        let p = self.aliases.resolve(arg)?;
        let (parent, name) = p.split_last()?;
        let parent = self.dir_made(&parent).await?;
        let made = self.dirs.create(format, Vec::new()).await?;
        self.dirs
            .add(
                &parent,
                &name,
                Node::from_cap(Cap::Dir(made.clone())),
                None,
                Replace::Never,
            )
            .await
            .with_context(|| arg.to_string())?;
        Ok(made)
    }

    /// `put [--mutable] [--format F] FILE [TARGET]`: the file's cap (none
    /// after overwriting a mutable file named by its cap).
    pub async fn put(
        &self,
        file: &Path,
        target: Option<&str>,
        mutable: bool,
        format: Option<&str>,
    ) -> Result<Option<Cap>> {
        if let Some(target) = target.filter(|t| t.starts_with("URI:") && !t.contains('/')) {
            let cap: Cap = target.parse().context("reading the target cap")?;
            let how = PutKind::overwriting(cap, format)?;
            return transfer::put(&self.session, file, how).await;
        }
        let how = PutKind::from_args(mutable, format)?;
        let Some(target) = target else {
            return transfer::put(&self.session, file, how).await;
        };
        let p = self.aliases.resolve(target)?;
        self.upload_to(file, &p, how).await.map(Some)
    }

    /// Upload `file` to the grid path `p`: a mutable file already there is
    /// overwritten in place (unless a new one is asked for), anything else
    /// but a directory is replaced.
    async fn upload_to(&self, file: &Path, p: &GridPath, how: PutKind) -> Result<Cap> {
        let (parent, name) = p.split_last()?;
        let dir = self.dir_made(&parent).await?;
        if matches!(how, PutKind::Immutable) {
            let existing = self.dirs.read(&dir).await?.node(&name)?;
            if let Some(Cap::SskWrite(w)) = existing.as_ref().and_then(Node::known) {
                let w = w.clone();
                transfer::put(&self.session, file, PutKind::Overwrite(w.clone()))
                    .await
                    .with_context(|| p.shown.clone())?;
                return Ok(Cap::SskWrite(w));
            }
        }
        let cap = transfer::put(&self.session, file, how)
            .await
            .with_context(|| p.shown.clone())?
            .context("an upload gave no cap")?;
        self.dirs
            .add(
                &dir,
                &name,
                Node::from_cap(cap.clone()),
                None,
                Replace::OnlyFiles,
            )
            .await
            .with_context(|| p.shown.clone())?;
        Ok(cap)
    }

    /// `get PATH|CAP [OUT]`.
    pub async fn get(&self, arg: &str, out: Option<&Path>) -> Result<()> {
        let p = self.aliases.resolve(arg)?;
        let node = self.node(&p).await?;
        let cap = file_cap(&node, &p.shown)?;
        transfer::get(&self.session, &cap, out)
            .await
            .with_context(|| arg.to_string())
    }

    /// The cap of what `arg` names (a path or a cap).
    async fn cap_at(&self, arg: &str) -> Result<Cap> {
        let p = self.aliases.resolve(arg)?;
        let node = self.node(&p).await?;
        Ok(node
            .known()
            .with_context(|| format!("{}: an entry of an unknown cap kind", p.shown))?
            .clone())
    }

    /// Check the file or directory `arg` names (a path or a cap) as `how`
    /// says: `None` for a literal one (see [`GridClient::check`]).
    pub async fn check(&self, arg: &str, how: Checking) -> Result<Option<CheckResults>> {
        let cap = &self.cap_at(arg).await?;
        self.session.check(cap, how).await
    }

    /// `cp [-r] SRC... DEST`; the number of files copied. As with
    /// Tahoe-LAFS, a directory is copied into DEST (made if missing), a
    /// file to DEST unless DEST is a directory.
    pub async fn cp(&self, sources: &[String], dest: &str, recursive: bool) -> Result<usize> {
        if sources.is_empty() {
            bail!("cp needs a source and a destination");
        }
        let many = sources.len() > 1;
        let mut copied = 0;
        if is_grid_arg(dest) {
            let d = self.aliases.resolve(dest)?;
            let into = many || dest.ends_with(['/', ':']) || self.is_dir(&d).await;
            for s in sources {
                // A directory always goes into DEST, as with Tahoe-LAFS.
                let from = is_grid_arg(s)
                    .then(|| self.aliases.resolve(s))
                    .transpose()?;
                let src_dir = match &from {
                    Some(f) => self.is_dir(f).await,
                    None => Path::new(s).is_dir(),
                };
                let target = if into || src_dir {
                    d.join(&basename(s)?)
                } else {
                    d.clone()
                };
                copied += match &from {
                    Some(f) => self.grid_to_grid(f, &target, recursive).await?,
                    None => self.local_to_grid(Path::new(s), &target, recursive).await?,
                };
            }
        } else {
            let d = PathBuf::from(dest);
            let into = many || dest.ends_with('/') || d.is_dir();
            for s in sources {
                if !is_grid_arg(s) {
                    bail!("{s} and {dest} are both local: use your system's cp");
                }
                let from = self.aliases.resolve(s)?;
                let src_dir = self.is_dir(&from).await;
                let target = if into || src_dir {
                    d.join(basename(s)?)
                } else {
                    d.clone()
                };
                copied += self.grid_to_local(&from, &target, recursive).await?;
            }
        }
        Ok(copied)
    }

    async fn is_dir(&self, p: &GridPath) -> bool {
        self.node(p).await.is_ok_and(|n| n.is_dir())
    }

    async fn local_to_grid(&self, src: &Path, to: &GridPath, recursive: bool) -> Result<usize> {
        let meta = std::fs::metadata(src).with_context(|| format!("{}", src.display()))?;
        if !meta.is_dir() {
            self.upload_to(src, to, PutKind::Immutable).await?;
            return Ok(1);
        }
        if !recursive {
            bail!("{} is a directory: copy it with cp -r", src.display());
        }
        self.dir_made(to).await?;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .with_context(|| format!("reading {}", src.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        let mut copied = 0;
        for e in entries {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                bail!("{}: the name is not UTF-8", e.path().display());
            };
            copied += Box::pin(self.local_to_grid(&e.path(), &to.join(name), true)).await?;
        }
        Ok(copied)
    }

    async fn grid_to_grid(&self, from: &GridPath, to: &GridPath, recursive: bool) -> Result<usize> {
        let node = self.node(from).await?;
        let Some(d) = node.dir_cap() else {
            // Immutable files are linked; a mutable file's contents are
            // copied into a new immutable file, so the copy stays put.
            let cap = match file_cap(&node, &from.shown)? {
                c @ (Cap::Chk(_) | Cap::Lit(_)) => c,
                mutable => self.copy_contents(&mutable, &from.shown).await?,
            };
            let (parent, name) = to.split_last()?;
            let dir = self.dir_made(&parent).await?;
            self.dirs
                .add(&dir, &name, Node::from_cap(cap), None, Replace::OnlyFiles)
                .await
                .with_context(|| to.shown.clone())?;
            return Ok(1);
        };
        let listing = self.dir_to_copy(d, from, recursive).await?;
        self.dir_made(to).await?;
        let mut copied = 0;
        for name in listing {
            copied += Box::pin(self.grid_to_grid(&from.join(&name), &to.join(&name), true)).await?;
        }
        Ok(copied)
    }

    /// The entry names of the directory `d` (at `from`) that `cp` copies;
    /// an error without `-r`.
    async fn dir_to_copy(
        &self,
        d: &DirCap,
        from: &GridPath,
        recursive: bool,
    ) -> Result<Vec<String>> {
        if !recursive {
            bail!("{} is a directory: copy it with cp -r", from.shown);
        }
        let listing = self
            .dirs
            .read(d)
            .await
            .with_context(|| from.shown.clone())?;
        warn_skipped(&from.shown, &listing);
        Ok(listing.entries().map(|(n, _)| n.to_string()).collect())
    }

    /// A new immutable file holding what `cap` holds (spooled through a
    /// file in the base directory, so memory stays bounded).
    async fn copy_contents(&self, cap: &Cap, shown: &str) -> Result<Cap> {
        let tmp = self.session.basedir().join(format!(
            "cp-{}-{}.tmp",
            std::process::id(),
            tahoe_core::client::dirnode::now()
        ));
        let result = async {
            transfer::get_private(&self.session, cap, &tmp)
                .await
                .with_context(|| shown.to_string())?;
            transfer::put(&self.session, &tmp, PutKind::Immutable)
                .await?
                .context("an upload gave no cap")
        }
        .await;
        let _ = std::fs::remove_file(&tmp);
        result
    }

    async fn grid_to_local(&self, from: &GridPath, to: &Path, recursive: bool) -> Result<usize> {
        let node = self.node(from).await?;
        let Some(d) = node.dir_cap() else {
            let cap = file_cap(&node, &from.shown)?;
            transfer::get(&self.session, &cap, Some(to))
                .await
                .with_context(|| format!("{} to {}", from.shown, to.display()))?;
            return Ok(1);
        };
        let listing = self.dir_to_copy(d, from, recursive).await?;
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        let mut copied = 0;
        // Entry names were checked when the directory was read: none is
        // empty, `.`, `..`, or holds `/` or NUL, so none leaves `to`.
        for name in listing {
            copied +=
                Box::pin(self.grid_to_local(&from.join(&name), &to.join(&name), true)).await?;
        }
        Ok(copied)
    }

    /// Where `mv` and `ln` put what they move: into `to` when it is a
    /// directory (or ends with `/`), else at `to`.
    async fn link_target(&self, from: &GridPath, to: &str) -> Result<(DirCap, String)> {
        let t = self.aliases.resolve(to)?;
        if to.ends_with('/') || to.ends_with(':') || self.is_dir(&t).await {
            let name = from
                .name()
                .with_context(|| format!("{}: names no entry", from.shown))?
                .to_string();
            return Ok((self.dir(&t).await?, name));
        }
        let (parent, name) = t.split_last()?;
        Ok((self.dir(&parent).await?, name))
    }

    /// `mv FROM TO`.
    pub async fn mv(&self, from: &str, to: &str) -> Result<()> {
        let f = self.aliases.resolve(from)?;
        let (fparent, fname) = f.split_last()?;
        let from_dir = self.dir(&fparent).await?;
        let (to_dir, to_name) = self.link_target(&f, to).await?;
        self.dirs
            .rename(&from_dir, &fname, &to_dir, &to_name, Replace::OnlyFiles)
            .await
            .with_context(|| format!("moving {from} to {to}"))
    }

    /// `ln FROM TO`.
    pub async fn ln(&self, from: &str, to: &str) -> Result<()> {
        let f = self.aliases.resolve(from)?;
        let node = self.node(&f).await?;
        let (to_dir, to_name) = self.link_target(&f, to).await?;
        self.dirs
            .add(&to_dir, &to_name, node, None, Replace::OnlyFiles)
            .await
            .with_context(|| format!("linking {from} as {to}"))
    }

    /// `rm PATH` (`unlink`).
    pub async fn rm(&self, arg: &str) -> Result<()> {
        let p = self.aliases.resolve(arg)?;
        let (parent, name) = p.split_last()?;
        let dir = self.dir(&parent).await?;
        self.dirs
            .remove(&dir, &name)
            .await
            .with_context(|| arg.to_string())?;
        Ok(())
    }

    /// `create-alias NAME`: a new directory under that alias.
    pub async fn create_alias(&mut self, name: &str) -> Result<()> {
        if self.aliases.get(name).is_ok() {
            bail!("alias {name:?} already exists");
        }
        let cap = self.dirs.create(DIR_FORMAT, Vec::new()).await?;
        self.aliases.add(name, cap)
    }
}

/// The file cap of a node, or why it has none to download.
pub fn file_cap(node: &Node, shown: &str) -> Result<Cap> {
    match node.known() {
        Some(Cap::Dir(_)) => bail!("{shown} is a directory: list it with ls, copy it with cp -r"),
        Some(c) => Ok(c.clone()),
        None => bail!("{shown} is a kind of file this version does not know"),
    }
}

/// The last name of a path argument.
fn basename(arg: &str) -> Result<String> {
    let tail = arg.trim_end_matches('/');
    let tail = tail.rsplit_once(':').map(|(_, t)| t).unwrap_or(tail);
    match tail
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.starts_with("URI"))
    {
        Some(n) => Ok(n.to_string()),
        None => bail!("{arg} has no name to copy under; give the destination's name"),
    }
}

fn warn_skipped(shown: &str, dir: &Directory) {
    for s in dir.skipped() {
        eprintln!("warning: {shown}: skipped entry {}: {}", s.name, s.reason);
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `ls -l`'s size column.
fn size_text(node: &Node) -> String {
    match node.known() {
        Some(Cap::Dir(_)) => "-".into(),
        Some(c) => size_of(c).map_or("?".into(), |s| s.to_string()),
        None => "?".into(),
    }
}

fn print_row(
    out: &mut dyn Write,
    name: &str,
    node: &Node,
    metadata: Option<&Metadata>,
    o: LsOptions,
    width: usize,
) -> Result<()> {
    let cap_column = if o.readonly_uri {
        node.read.as_ref().map(ChildCap::to_string)
    } else if o.uri {
        node.cap().map(ChildCap::to_string)
    } else {
        None
    };
    let shown = match &cap_column {
        Some(c) => format!("{name} {c}"),
        None => name.to_string(),
    };
    if !o.long {
        writeln!(out, "{shown}")?;
        return Ok(());
    }
    let mode = match (node.is_dir(), node.write.is_some()) {
        (true, true) => "drwx",
        (true, false) => "dr-x",
        (false, true) => "-rw-",
        (false, false) => "-r--",
    };
    let time = metadata
        .and_then(|m| m.get("tahoe"))
        .and_then(|t| t.get("linkmotime"))
        .and_then(Value::as_f64)
        .map(local_time)
        .unwrap_or_else(|| " ".repeat(12));
    writeln!(out, "{mode} {:>width$} {time} {shown}", size_text(node))?;
    Ok(())
}

/// `Dec 02 04:48` (this year's) or `Dec 02  2025`, in local time.
fn local_time(secs: f64) -> String {
    let t = secs as libc::time_t;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    let fmt: &[u8] = if (now - t).abs() < 183 * 86400 {
        b"%b %d %H:%M\0"
    } else {
        b"%b %d  %Y\0"
    };
    let mut buf = [0u8; 64];
    #[allow(unsafe_code)]
    // SAFETY: localtime_r writes only into `tm`; strftime writes at most
    // `buf.len()` bytes into `buf` and reads the NUL-terminated format.
    let n = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return " ".repeat(12);
        }
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr().cast(), &tm)
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `list-aliases`.
pub fn list_aliases(
    aliases: &Aliases,
    json: bool,
    readonly: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let all = aliases.all()?;
    if json {
        let mut o = serde_json::Map::new();
        for (name, cap) in &all {
            let cap = Cap::Dir(cap.clone());
            let mut e = serde_json::Map::new();
            if cap.is_write() && !readonly {
                e.insert("readwrite".into(), json!(cap.to_string()));
            }
            e.insert("readonly".into(), json!(cap.read_only().to_string()));
            o.insert(name.clone(), Value::Object(e));
        }
        writeln!(out, "{}", pretty(&Value::Object(o)))?;
        return Ok(());
    }
    let width = all.keys().map(String::len).max().unwrap_or(0) + 1;
    for (name, cap) in &all {
        let cap = Cap::Dir(cap.clone());
        let shown = if readonly { cap.read_only() } else { cap };
        writeln!(out, "{:>width$} {shown}", format!("{name}:"))?;
    }
    Ok(())
}

/// The node behind a cap given on the command line, for `add-alias`.
pub fn parse_dir_cap(text: &str) -> Result<DirCap> {
    match text.trim().parse::<Cap>().context("reading the cap")? {
        Cap::Dir(d) => Ok(d),
        other => bail!("an alias names a directory; this is {} cap", other.a_kind()),
    }
}

/// What `tahoe check` does: print JSON or lines, verify, add a lease,
/// repair (with a threshold, or the node's `happy`).
#[derive(Debug, Clone, Copy)]
pub struct CheckHow {
    /// Tahoe-LAFS's JSON instead of lines.
    pub json: bool,
    /// What the check does.
    pub checking: Checking,
    /// Repair, with this threshold (`None`: the node's `happy`).
    pub repair: Option<Option<usize>>,
}

impl Files {
    /// Check (and repair, as `how` says) what `arg` names: the text
    /// `tahoe check` prints, and whether the file is recoverable (after
    /// any repair).
    pub async fn check_report(&self, arg: &str, how: CheckHow) -> Result<(String, bool)> {
        let Some(threshold) = how.repair else {
            let r = self.check(arg, how.checking).await?;
            let ok = r.as_ref().is_none_or(|r| r.recoverable);
            let text = if how.json {
                serde_json::to_string_pretty(&check_json(r.as_ref()))? + "\n"
            } else {
                check_lines(r.as_ref())
            };
            return Ok((text, ok));
        };
        let cap = &self.cap_at(arg).await?;
        let r = self
            .session
            .check_and_repair(cap, how.checking, threshold)
            .await?;
        let ok = r.as_ref().is_none_or(|r| r.post.recoverable);
        if how.json {
            return Ok((
                serde_json::to_string_pretty(&repair_json(r.as_ref()))? + "\n",
                ok,
            ));
        }
        let Some(r) = r else {
            return Ok((check_lines(None), true));
        };
        // Tahoe's lines for a repair: the state before, then the outcome;
        // ours add what was decided.
        let mut t = check_lines(Some(&r.pre)).replacen(
            &format!("Summary: {}", r.pre.summary),
            if r.pre.healthy {
                "Summary: healthy"
            } else {
                "Summary: not healthy"
            },
            1,
        );
        if r.attempted {
            t.push_str(if r.successful {
                " repair successful\n"
            } else {
                " repair failed\n"
            });
        }
        t.push_str(&format!(" ({})\n", r.note));
        Ok((t, ok))
    }
}

/// Deep statistics as Tahoe-LAFS's `tahoe stats` prints them: the counts
/// and sizes (sizes over 1000 bytes also abbreviated), then the size
/// histogram, `...` marking a gap between its buckets.
fn stats_lines(stats: &Value) -> String {
    const KEYS: [&str; 11] = [
        "count-immutable-files",
        "count-mutable-files",
        "count-literal-files",
        "count-files",
        "count-directories",
        "size-immutable-files",
        "size-mutable-files",
        "size-literal-files",
        "size-directories",
        "largest-directory",
        "largest-immutable-file",
    ];
    let width = KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::from("Counts and Total Sizes:\n");
    for key in KEYS {
        let Some(value) = stats[key].as_u64() else {
            continue;
        };
        out.push_str(&format!("{key:>width$}: {value}"));
        if !key.starts_with("count-") && value > 1000 {
            out.push_str(&format!("    {}", space_both(value)));
        }
        out.push('\n');
    }
    let buckets: Vec<[u64; 3]> = stats["size-files-histogram"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let n = |i: usize| b[i].as_u64();
            Some([n(0)?, n(1)?, n(2)?])
        })
        .collect();
    if buckets.is_empty() {
        return out;
    }
    out.push_str("Size Histogram:\n");
    let len = |n: u64| n.to_string().len();
    let max_len = buckets.iter().map(|b| len(b[1])).max().unwrap_or(0);
    let count_len = buckets.iter().map(|b| len(b[2])).max().unwrap_or(0);
    let mut prev_max = None;
    for [min, max, count] in buckets {
        if prev_max.is_some_and(|p: u64| min != p + 1) {
            out.push_str(&format!("{}...\n", " ".repeat(max_len - 1)));
        }
        prev_max = Some(max);
        out.push_str(&format!(
            "{min:>max_len$}-{max:<max_len$} : {count:<count_len$}    {}\n",
            space_both(max)
        ));
    }
    out
}

/// `(1.50 MB, 1.43 MiB)`: a size in SI and binary units, as Tahoe-LAFS
/// abbreviates it.
fn space_both(n: u64) -> String {
    let one = |unit: f64, suffix: &str| {
        if n < 1024 {
            return format!("{n} B");
        }
        let mut value = n as f64 / unit;
        for prefix in ["k", "M", "G", "T", "P"] {
            if value < unit {
                return format!("{value:.2} {prefix}{suffix}");
            }
            value /= unit;
        }
        format!("{value:.2} E{suffix}")
    };
    format!("({}, {})", one(1000.0, "B"), one(1024.0, "iB"))
}

/// A check's results as Tahoe-LAFS's `tahoe check` prints them: summary,
/// storage index, good and wrong shares, corrupt shares.
fn check_lines(r: Option<&CheckResults>) -> String {
    use std::fmt::Write as _;
    let Some(r) = r else {
        return "Summary: Healthy (LIT)\n storage index: \n".to_string();
    };
    let si = storage_index_text(&r.storage_index);
    let mut t = format!(
        "Summary: {}\n storage index: {si}\n good-shares: {} (encoding is {}-of-{})\n wrong-shares: {}\n",
        r.summary,
        r.count_shares_good,
        r.count_shares_needed,
        r.count_shares_expected,
        r.count_wrong_shares
    );
    if !r.corrupt_shares.is_empty() {
        t.push_str(" corrupt shares:\n");
        for c in &r.corrupt_shares {
            let _ = writeln!(t, "  server {}, SI {si}, shnum {}", c.server, c.shnum);
        }
    }
    t
}

/// How `tahoe manifest` prints each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestShow {
    /// `CAP PATH`.
    CapAndPath,
    /// Each storage index once.
    StorageIndex,
    /// Each verify cap once.
    VerifyCap,
    /// Each repair cap once.
    RepairCap,
}

/// What `tahoe deep-check` and `tahoe manifest` print.
#[derive(Debug, Clone, Copy)]
pub enum DeepOutput {
    /// Tahoe's JSON units, one per line.
    Json,
    /// A manifest's lines.
    Manifest(ManifestShow),
    /// The statistics only: Tahoe's JSON, or `tahoe stats`'s lines.
    Stats {
        /// JSON instead of lines.
        json: bool,
    },
    /// A deep check's lines: the unhealthy objects (every object with
    /// `verbose`) and the totals.
    Checked {
        /// One line per object.
        verbose: bool,
    },
}

/// The counts a deep check prints at its end.
#[derive(Default)]
struct Tally {
    objects: u64,
    healthy: [u64; 2],
    attempted: u64,
    successful: u64,
    unrecoverable: u64,
}

impl Files {
    /// Walk the tree `arg` names and print each object as `output` says,
    /// as it comes (a progress line on standard error when it is a
    /// terminal); the number of objects not recoverable (after any
    /// repair).
    pub async fn deep(
        &self,
        arg: &str,
        how: crate::client::deep::DeepHow,
        output: DeepOutput,
        out: &mut dyn Write,
    ) -> Result<u64> {
        use futures::StreamExt;
        let cap = self.cap_at(arg).await?;
        let walked = tahoe_core::client::check::walk::walk(self.dirs.clone(), cap);
        let units = crate::client::deep::units(&self.session, walked, how);
        futures::pin_mut!(units);
        let (mut tally, mut seen) = (Tally::default(), std::collections::BTreeSet::new());
        let progress = super::progress::Walk::start();
        while let Some(unit) = units.next().await {
            let unit = unit.map_err(|e| anyhow::anyhow!(e))?;
            if unit["type"] == "stats" {
                match output {
                    DeepOutput::Json => writeln!(out, "{unit}")?,
                    DeepOutput::Stats { json: true } => {
                        writeln!(out, "{}", serde_json::to_string_pretty(&unit["stats"])?)?
                    }
                    DeepOutput::Stats { json: false } => {
                        write!(out, "{}", stats_lines(&unit["stats"]))?
                    }
                    _ => {}
                }
                continue;
            }
            tally.objects += 1;
            match output {
                DeepOutput::Stats { .. } => {}
                DeepOutput::Json => writeln!(out, "{unit}")?,
                DeepOutput::Manifest(show) => manifest_line(&unit, show, &mut seen, out)?,
                DeepOutput::Checked { verbose } => check_line(&unit, verbose, &mut tally, out)?,
            }
            progress.object(tally.healthy[1]);
        }
        drop(progress);
        if let DeepOutput::Checked { .. } = output {
            let [healthy, unhealthy] = tally.healthy;
            match how.repair {
                None => writeln!(
                    out,
                    "done: {} objects checked, {healthy} healthy, {unhealthy} unhealthy",
                    tally.objects
                )?,
                Some(_) => {
                    let post_bad = tally.unrecoverable;
                    writeln!(out, "done: {} objects checked", tally.objects)?;
                    writeln!(out, " pre-repair: {healthy} healthy, {unhealthy} unhealthy")?;
                    writeln!(
                        out,
                        " {} repairs attempted, {} successful, {} failed",
                        tally.attempted,
                        tally.successful,
                        tally.attempted - tally.successful
                    )?;
                    writeln!(
                        out,
                        " post-repair: {} recoverable, {post_bad} not recoverable",
                        tally.objects - post_bad
                    )?;
                }
            }
        }
        Ok(tally.unrecoverable)
    }
}

/// `'path'` as Tahoe's CLI shows it (`<root>` for the root).
fn shown_path(unit: &Value) -> String {
    let parts = path_of(&unit["path"]);
    if parts.is_empty() {
        "'<root>'".to_string()
    } else {
        format!("'{}'", parts.join("/"))
    }
}

fn manifest_line(
    unit: &Value,
    show: ManifestShow,
    seen: &mut std::collections::BTreeSet<String>,
    out: &mut dyn Write,
) -> Result<()> {
    let key = match show {
        ManifestShow::CapAndPath => {
            let path = path_of(&unit["path"]);
            writeln!(
                out,
                "{} {}",
                unit["cap"].as_str().unwrap_or(""),
                path.join("/")
            )?;
            return Ok(());
        }
        ManifestShow::StorageIndex => "storage-index",
        ManifestShow::VerifyCap => "verifycap",
        ManifestShow::RepairCap => "repaircap",
    };
    let v = unit[key].as_str().unwrap_or("");
    if !v.is_empty() && seen.insert(v.to_string()) {
        writeln!(out, "{v}")?;
    }
    Ok(())
}

fn check_line(unit: &Value, verbose: bool, tally: &mut Tally, out: &mut dyn Write) -> Result<()> {
    let UnitResults {
        pre,
        post,
        attempted,
        successful,
    } = unit_results(unit);
    tally.attempted += u64::from(attempted);
    tally.successful += u64::from(successful);
    // A literal object: `{"healthy": true}` for a check, no results at
    // all for a repair; healthy either way.
    let literal = unit["storage-index"] == "";
    let post = if post.is_null() { pre } else { post };
    let healthy = literal || pre["results"]["healthy"] == true;
    tally.healthy[usize::from(!healthy)] += 1;
    if !literal && post["results"]["recoverable"] == false {
        tally.unrecoverable += 1;
    }
    let summary = pre["summary"].as_str().unwrap_or("Healthy (LIT)");
    if verbose {
        let word = if healthy { "healthy" } else { summary };
        writeln!(out, "{}: {word}", shown_path(unit))?;
    } else if !healthy {
        writeln!(out, "{}: {summary}", shown_path(unit))?;
    }
    Ok(())
}
