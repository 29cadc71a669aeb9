//! Aliases: names for directory caps, kept in `BASEDIR/private/aliases`
//! (Tahoe-LAFS's file: one `NAME: CAP` a line), and grid paths written
//! with them (`tahoe:docs/a.txt`, `work:`, `URI:DIR2:.../sub`).
//!
//! The alias `tahoe` is the default: paths without an alias are under
//! it. Unless the aliases file names it, it is the shared drive, the
//! cap in `BASEDIR/vdrive.cap`.

use crate::basedir::ALIASES_FILE;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tahoe_core::client::dirnode::split_path;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::protocol::identity::write_private;

/// The alias of paths that name none.
const DEFAULT_ALIAS: &str = "tahoe";

/// A node's aliases.
pub struct Aliases {
    file: PathBuf,
    basedir: PathBuf,
    map: BTreeMap<String, DirCap>,
}

/// Whether `name` can be an alias: not empty, no `:`, `/` or whitespace.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains([':', '/']) || name.chars().any(char::is_whitespace) {
        bail!("{name:?} cannot be an alias: aliases are non-empty and have no ':', '/' or spaces");
    }
    Ok(())
}

fn dir_cap(text: &str, what: &str) -> Result<DirCap> {
    match text
        .trim()
        .parse::<Cap>()
        .with_context(|| what.to_string())?
    {
        Cap::Dir(d) => Ok(d),
        other => bail!("{what} is {} cap, not a directory's", other.a_kind()),
    }
}

impl Aliases {
    /// The aliases of the node in `basedir` (none when the file is absent).
    pub fn load(basedir: &Path) -> Result<Aliases> {
        let file = basedir.join(ALIASES_FILE);
        let mut map = BTreeMap::new();
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let what = || format!("{} line {}", file.display(), i + 1);
                    let (name, cap) = line
                        .split_once(':')
                        .with_context(|| format!("{}: expected NAME: CAP", what()))?;
                    map.insert(name.trim().to_string(), dir_cap(cap, &what())?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        }
        Ok(Aliases {
            file,
            basedir: basedir.to_path_buf(),
            map,
        })
    }

    /// The cap of alias `name`.
    pub fn get(&self, name: &str) -> Result<DirCap> {
        if let Some(cap) = self.map.get(name) {
            return Ok(cap.clone());
        }
        if name == DEFAULT_ALIAS {
            return crate::basedir::vdrive_of(&self.basedir)?.with_context(|| {
                format!(
                    "no alias {DEFAULT_ALIAS:?}: this client has no shared drive ({} is missing; \
                     copy the queen's, or make a directory with `tahoe create-alias {DEFAULT_ALIAS}`)",
                    self.basedir.join(crate::basedir::VDRIVE_FILE).display()
                )
            });
        }
        bail!(
            "unknown alias {name:?} (known: {}); `tahoe list-aliases` shows them",
            self.names().join(", ")
        )
    }

    /// Every alias, with the shared drive as `tahoe` when no alias of that
    /// name is set.
    pub fn all(&self) -> Result<BTreeMap<String, DirCap>> {
        let mut all = self.map.clone();
        if !all.contains_key(DEFAULT_ALIAS)
            && let Some(v) = crate::basedir::vdrive_of(&self.basedir)?
        {
            all.insert(DEFAULT_ALIAS.into(), v);
        }
        Ok(all)
    }

    fn names(&self) -> Vec<String> {
        self.all()
            .map(|a| a.into_keys().collect())
            .unwrap_or_default()
    }

    /// Add alias `name` for `cap`; an existing alias is an error.
    pub fn add(&mut self, name: &str, cap: DirCap) -> Result<()> {
        check_name(name)?;
        if self.map.contains_key(name) {
            bail!("alias {name:?} already exists");
        }
        self.map.insert(name.to_string(), cap);
        let mut text = String::new();
        for (n, c) in &self.map {
            text.push_str(&format!("{n}: {}\n", Cap::Dir(c.clone())));
        }
        write_private(&self.file, text.as_bytes())
            .with_context(|| format!("writing {}", self.file.display()))?;
        Ok(())
    }
}

/// Where a grid path points: a cap and the names under it.
#[derive(Debug, Clone)]
pub struct GridPath {
    /// The cap the path starts from.
    pub root: Cap,
    /// The names below it.
    pub path: Vec<String>,
    /// As given, for messages.
    pub shown: String,
}

impl GridPath {
    /// The last name, if any.
    pub fn name(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    /// The path of the parent and the last name.
    pub fn split_last(&self) -> Result<(GridPath, String)> {
        let Some((last, parent)) = self.path.split_last() else {
            bail!(
                "{}: a path to an entry (DIR/NAME) is needed here",
                self.shown
            );
        };
        Ok((
            GridPath {
                root: self.root.clone(),
                path: parent.to_vec(),
                shown: self.shown.clone(),
            },
            last.clone(),
        ))
    }

    /// The path with `name` below it.
    pub fn join(&self, name: &str) -> GridPath {
        let mut path = self.path.clone();
        path.push(name.to_string());
        let sep = if self.shown.ends_with([':', '/']) {
            ""
        } else {
            "/"
        };
        GridPath {
            root: self.root.clone(),
            path,
            shown: format!("{}{sep}{name}", self.shown),
        }
    }

    /// The root as a directory.
    pub fn root_dir(&self) -> Result<DirCap> {
        match &self.root {
            Cap::Dir(d) => Ok(d.clone()),
            other => bail!(
                "{}: starts at {} cap, which has no entries",
                self.shown,
                other.a_kind()
            ),
        }
    }
}

/// Whether a `cp` argument names the grid (`ALIAS:...` or a cap) rather
/// than a local path.
pub fn is_grid_arg(arg: &str) -> bool {
    if arg.starts_with("URI:") {
        return true;
    }
    match arg.split_once(':') {
        Some((alias, _)) => !alias.is_empty() && !alias.contains('/'),
        None => false,
    }
}

impl Aliases {
    /// A grid path: `CAP[/PATH]`, `ALIAS:[PATH]`, or `PATH` under the
    /// default alias.
    pub fn resolve(&self, arg: &str) -> Result<GridPath> {
        let (root, rest) = if arg.starts_with("URI:") {
            let (cap, rest) = arg.split_once('/').unwrap_or((arg, ""));
            let cap: Cap = cap
                .parse()
                .with_context(|| format!("{arg}: reading the cap"))?;
            (cap, rest)
        } else {
            match arg.split_once(':') {
                Some((alias, rest)) if !alias.contains('/') => (
                    Cap::Dir(self.get(alias).with_context(|| arg.to_string())?),
                    rest,
                ),
                _ => (Cap::Dir(self.get(DEFAULT_ALIAS)?), arg),
            }
        };
        let path = split_path(rest).with_context(|| arg.to_string())?;
        Ok(GridPath {
            root,
            path,
            shown: arg.to_string(),
        })
    }
}
