//! The web UI's pages: plain HTML that works without JavaScript (forms
//! post and redirect back; deleting asks again in a `<details>`), and
//! `/static/app.js` adds drag and drop, a progress bar per uploaded file
//! and copy buttons. Everything is served by the binary: the pages'
//! Content-Security-Policy allows nothing from elsewhere.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tahoe_core::client::check::{CheckResults, RepairResults};
use tahoe_core::format::cap::Cap;
use tahoe_core::format::dirnode::{Directory, Entry, Node};

use super::ops::{Op, OpState};
use super::stats::Snapshot;
use super::uri::{percent_encode, uri_of};
use crate::client::broker::ServerStatus;
use crate::client::json::{format_of, size_of};

pub const STYLE: &str = include_str!("static/style.css");
pub const SCRIPT: &str = include_str!("static/app.js");

/// Entries on one page of a directory listing.
const PAGE_SIZE: usize = 200;

/// HTML-escape text for element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t} - Tahoe</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
         <script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n\
         <header><nav aria-label=\"Site\"><a href=\"/\" class=\"brand\">Tahoe</a> \
         <a href=\"/\">Welcome</a> <a href=\"/status\">Operations</a> \
         <a href=\"/statistics\">Statistics</a></nav></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        t = escape_html(title)
    )
}

/// Bytes for people: `1.5 MiB`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn date(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let rem = s % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        tahoe_core::time::format_date(s),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A span of time for people: `3h 4m`, `12s`.
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A read-only text box holding a cap, with a copy button (JavaScript).
fn cap_box(label: &str, id: &str, cap: &str) -> String {
    format!(
        "<div class=\"cap\"><label for=\"{id}\">{}</label> \
         <input id=\"{id}\" class=\"cap-text\" readonly value=\"{}\" spellcheck=\"false\"> \
         <button type=\"button\" data-copy=\"{id}\" hidden>Copy</button></div>\n",
        escape_html(label),
        escape_html(cap)
    )
}

/// What the welcome page shows.
pub struct Welcome<'a> {
    pub nickname: &'a str,
    pub node_id: &'a str,
    pub version: &'a str,
    pub uptime: Duration,
    pub queen: &'a str,
    pub queen_connected: bool,
    pub servers: &'a [ServerStatus],
    /// An announcement older than this is shown as stale (its server has
    /// missed three renewals).
    pub stale_after: Duration,
    pub vdrive: Option<Drive>,
    /// The checks this node ran lately, newest first.
    pub checks: &'a [std::sync::Arc<Op>],
    /// The storage section (a storage node's shares and crawler), as HTML.
    pub storage: Option<String>,
    /// The maintenance section (a client's), as HTML.
    pub maintenance: Option<String>,
}

/// The shared drive as the welcome page may show it.
pub enum Drive {
    /// Its cap, for a request that holds the node's web token.
    Cap(String),
    /// There is one, but this request may not see its cap.
    Hidden,
}

pub fn welcome(w: &Welcome<'_>) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Welcome</h1>\n<section aria-labelledby=\"node-h\"><h2 id=\"node-h\">This node</h2>\n\
         <dl class=\"facts\"><dt>Nickname</dt><dd id=\"nickname\">{}</dd>\
         <dt>Node ID</dt><dd><code id=\"node-id\">{}</code></dd>\
         <dt>Version</dt><dd>{}</dd><dt>Up for</dt><dd>{}</dd>\
         <dt>Queen</dt><dd id=\"queen\">{} <span class=\"{}\">{}</span></dd></dl></section>\n",
        escape_html(w.nickname),
        escape_html(w.node_id),
        escape_html(w.version),
        ago(w.uptime),
        escape_html(w.queen),
        if w.queen_connected { "ok" } else { "bad" },
        if w.queen_connected {
            "connected"
        } else {
            "not connected"
        },
    );
    match &w.vdrive {
        Some(Drive::Cap(cap)) => {
            let _ = write!(
                b,
                "<section aria-labelledby=\"drive-h\"><h2 id=\"drive-h\">Shared drive</h2>\n\
                 <p><a id=\"shared-drive\" class=\"big\" href=\"{}\">Open the shared drive</a></p></section>\n",
                uri_of(cap, &[])
            );
        }
        Some(Drive::Hidden) => b.push_str(
            "<section aria-labelledby=\"drive-h\"><h2 id=\"drive-h\">Shared drive</h2>\n\
             <p id=\"drive-hidden\">Its cap is shown to this node's owner only: open the address \
             <code>tahoe webopen</code> prints (it carries the node's web token once).</p></section>\n",
        ),
        None => b.push_str(
            "<section><h2>Shared drive</h2><p>This node has no shared drive \
             (no <code>vdrive.cap</code>).</p></section>\n",
        ),
    }
    let connected = w.servers.iter().filter(|s| s.connected).count();
    let _ = write!(
        b,
        "<section aria-labelledby=\"servers-h\"><h2 id=\"servers-h\">Storage servers \
         ({connected} of {} connected)</h2>\n<table id=\"servers\"><thead><tr><th>Nickname</th>\
         <th>Node ID</th><th>Address</th><th>Connection</th><th>Free space</th>\
         <th>Last announced</th></tr></thead><tbody>\n",
        w.servers.len()
    );
    let now = SystemTime::now();
    for status in w.servers {
        let s = &status.body;
        let announced = now - status.announced_ago;
        let stale = status.announced_ago > w.stale_after;
        let address = s
            .address
            .rsplit_once('@')
            .map(|(_, a)| a)
            .unwrap_or(&s.address);
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td><code title=\"{id}\">{}</code></td><td>{}</td>\
             <td class=\"{}\" title=\"{}\">{}</td><td>{}</td>\
             <td class=\"{}\" title=\"{}\">{} ago{}</td></tr>",
            escape_html(&s.nickname),
            escape_html(s.node_id.get(..12).unwrap_or(&s.node_id)),
            escape_html(address),
            if status.connected { "ok" } else { "bad" },
            escape_html(status.down_because.as_deref().unwrap_or("")),
            if status.connected {
                "connected"
            } else {
                "not connected"
            },
            s.available_space.map(size).unwrap_or_else(|| "?".into()),
            if stale { "bad stale" } else { "fresh" },
            date(epoch(announced)),
            ago(status.announced_ago),
            if stale { " (stale)" } else { "" },
            id = escape_html(&s.node_id),
        );
    }
    b.push_str("</tbody></table></section>\n");
    for section in [&w.maintenance, &w.storage].into_iter().flatten() {
        b.push_str(section);
    }
    if !w.checks.is_empty() {
        b.push_str(
            "<section aria-labelledby=\"checks-h\"><h2 id=\"checks-h\">Recent checks</h2>\n\
             <table id=\"checks\">",
        );
        b.push_str(OP_HEAD);
        b.push_str("<tbody>\n");
        for o in w.checks {
            b.push_str(&op_row(o));
        }
        b.push_str("</tbody></table></section>\n");
    }
    b.push_str(
        "<section aria-labelledby=\"tools-h\"><h2 id=\"tools-h\">Tools</h2>\n\
         <form method=\"get\" action=\"/uri\" class=\"row\"><label for=\"open-cap\">Open a cap</label> \
         <input id=\"open-cap\" name=\"uri\" required placeholder=\"URI:...\" spellcheck=\"false\"> \
         <button>Open</button></form>\n\
         <form method=\"post\" action=\"/uri?t=mkdir&amp;redirect_to_result=true\" class=\"row\">\
         <label for=\"new-format\">Create a directory</label> \
         <select id=\"new-format\" name=\"format\"><option value=\"sdmf\">SDMF</option>\
         <option value=\"mdmf\">MDMF</option></select> <button>Create</button></form>\n\
         <form method=\"post\" action=\"/uri?t=upload&amp;redirect_to_result=true\" \
         enctype=\"multipart/form-data\" class=\"row\">\
         <label for=\"welcome-file\">Upload a file (unlinked: keep its cap)</label> \
         <input id=\"welcome-file\" type=\"file\" name=\"file\" required> \
         <select name=\"format\" aria-label=\"Format\"><option value=\"chk\">immutable</option>\
         <option value=\"sdmf\">mutable (SDMF)</option><option value=\"mdmf\">mutable (MDMF)</option></select> \
         <button>Upload</button></form></section>\n",
    );
    layout("Welcome", &b)
}

/// A directory's type label for a listing.
fn kind_of(node: &Node) -> &'static str {
    match node.known() {
        Some(Cap::Dir(d)) if !d.is_mutable() => "DIR-IMM",
        Some(c @ Cap::Dir(_)) if !c.is_write() => "DIR-RO",
        Some(Cap::Dir(_)) => "DIR",
        Some(Cap::Lit(_)) => "LIT",
        Some(c) => format_of(c),
        None => "?",
    }
}

/// What a directory page shows.
pub struct DirPage<'a> {
    /// The cap in the URL and the names after it.
    pub root: &'a str,
    pub path: &'a [String],
    pub node: &'a Node,
    pub dir: &'a Directory,
    /// 1-based.
    pub page: usize,
}

pub fn directory(p: &DirPage<'_>) -> String {
    let here = uri_of(p.root, p.path);
    let writable = p.dir.is_writeable();
    let title = p.path.last().map(String::as_str).unwrap_or("Directory");
    let mut b = crumbs(p);
    b.push_str(&heading(p, title, writable));
    let total = p.dir.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = p.page.clamp(1, pages);
    b.push_str(&listing_head(total, page_no, pages));
    for (name, entry) in p
        .dir
        .entries()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
    {
        b.push_str(&entry_row(p, &here, writable, name, entry));
    }
    b.push_str("</tbody></table>\n");
    b.push_str(&pager(&here, page_no, pages));
    if writable {
        b.push_str(&forms(&here));
    }
    layout(title, &b)
}

/// The breadcrumb trail from the root to this directory.
fn crumbs(p: &DirPage<'_>) -> String {
    let mut b = String::new();
    b.push_str("<nav aria-label=\"Breadcrumb\" class=\"crumbs\"><ol>");
    let _ = write!(b, "<li><a href=\"{}\">root</a></li>", uri_of(p.root, &[]));
    for i in 0..p.path.len() {
        let _ = write!(
            b,
            "<li><a href=\"{}\"{}>{}</a></li>",
            uri_of(p.root, &p.path[..=i]),
            if i + 1 == p.path.len() {
                " aria-current=\"page\""
            } else {
                ""
            },
            escape_html(&p.path[i])
        );
    }
    b.push_str("</ol></nav>\n");
    b
}

/// The title, the directory's caps, and the entries that were skipped.
fn heading(p: &DirPage<'_>, title: &str, writable: bool) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>{}{}</h1>",
        escape_html(title),
        if writable {
            ""
        } else {
            " <span class=\"badge\">read-only</span>"
        }
    );
    b.push_str("<details class=\"caps\"><summary>Caps of this directory</summary>\n");
    if let Some(w) = &p.node.write {
        b.push_str(&cap_box("Read-write", "rw-cap", &w.to_string()));
    }
    if let Some(r) = &p.node.read {
        b.push_str(&cap_box("Read-only", "ro-cap", &r.to_string()));
    }
    b.push_str("<p class=\"note\">Anyone with a cap has its authority: share the read-only one to let others read.</p></details>\n");
    for s in p.dir.skipped() {
        let _ = writeln!(
            b,
            "<p class=\"warn\">An entry was skipped: {}: {}</p>",
            escape_html(&s.name),
            escape_html(&s.reason)
        );
    }
    b
}

/// The listing's table head, with which page this is.
fn listing_head(total: usize, page_no: usize, pages: usize) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<table id=\"entries\" class=\"listing\"><caption>{total} entr{}{}</caption>\
         <thead><tr><th scope=\"col\">Type</th><th scope=\"col\">Name</th>\
         <th scope=\"col\">Size</th><th scope=\"col\">Modified</th>\
         <th scope=\"col\">Actions</th></tr></thead><tbody>",
        if total == 1 { "y" } else { "ies" },
        if pages > 1 {
            format!(", page {page_no} of {pages}")
        } else {
            String::new()
        }
    );
    b
}

/// One entry's row: kind, name, size, time, and what can be done with it.
fn entry_row(p: &DirPage<'_>, here: &str, writable: bool, name: &str, entry: &Entry) -> String {
    let mut b = String::new();
    let node = p.dir.node_of(name, entry).unwrap_or_else(|_| Node {
        write: None,
        read: entry.read_cap().cloned(),
    });
    let mut path = p.path.to_vec();
    path.push(name.to_string());
    let url = uri_of(p.root, &path);
    let md = entry.metadata();
    let mtime = md
        .get("tahoe")
        .and_then(|t| t.get("linkmotime"))
        .or_else(|| md.get("mtime"))
        .and_then(serde_json::Value::as_f64)
        .map(date)
        .unwrap_or_default();
    let size = node
        .known()
        .and_then(size_of)
        .map(size)
        .unwrap_or_else(|| if node.is_dir() { "" } else { "?" }.into());
    let kind = kind_of(&node);
    let _ = write!(
        b,
        "<tr data-name=\"{n}\"><td>{kind}</td><td><a class=\"name\" href=\"{url}\">{n}{slash}</a></td>\
         <td class=\"num\">{size}</td><td>{mtime}</td><td class=\"actions\">",
        n = escape_html(name),
        slash = if node.is_dir() { "/" } else { "" },
    );
    if !node.is_dir() && node.known().is_some() {
        let _ = write!(
            b,
            "<a href=\"{url}?save=true\" download>download</a> <a href=\"{url}?t=info\">info</a> "
        );
    } else {
        let _ = write!(b, "<a href=\"{url}?t=info\">info</a> ");
    }
    if writable {
        let _ = write!(
            b,
            "<details class=\"inline\"><summary>rename</summary>\
             <form method=\"post\" action=\"{here}?t=rename\" class=\"rename\">\
             <input type=\"hidden\" name=\"from_name\" value=\"{n}\">\
             <input type=\"hidden\" name=\"when_done\" value=\"{here}\">\
             <label>New name <input name=\"to_name\" value=\"{n}\" required></label> \
             <button>Rename</button></form></details> \
             <details class=\"inline\"><summary>delete</summary>\
             <form method=\"post\" action=\"{here}?t=unlink\" class=\"delete\">\
             <input type=\"hidden\" name=\"name\" value=\"{n}\">\
             <input type=\"hidden\" name=\"when_done\" value=\"{here}\">\
             Unlink {n}{what}? <button class=\"danger\">Delete</button></form></details>",
            n = escape_html(name),
            what = if node.is_dir() {
                " (the directory stays reachable through its cap)"
            } else {
                ""
            },
        );
    }
    b.push_str("</td></tr>\n");
    b
}

/// Links to the previous and next pages, when there are several.
fn pager(here: &str, page_no: usize, pages: usize) -> String {
    let mut b = String::new();
    if pages > 1 {
        b.push_str("<nav aria-label=\"Pages\" class=\"pages\">");
        if page_no > 1 {
            let _ = write!(
                b,
                "<a rel=\"prev\" href=\"{here}?page={}\">previous</a> ",
                page_no - 1
            );
        }
        let _ = write!(b, "page {page_no} of {pages}");
        if page_no < pages {
            let _ = write!(
                b,
                " <a rel=\"next\" href=\"{here}?page={}\">next</a>",
                page_no + 1
            );
        }
        b.push_str("</nav>\n");
    }
    b
}

/// The form that checks the object at `url` (a file, or a directory's own
/// file), with verify and repair; for a directory also the deep check of
/// everything under it, started under a fresh handle whose page follows
/// it (`/operations/H`).
fn check_form(url: &str, dir: bool) -> String {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let deep = if dir {
        // Unique, not secret: a handle names an operation, it grants
        // nothing.
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            " <button formaction=\"{url}?t=start-deep-check&amp;ophandle=ui{at:x}n{n}\" \
             id=\"deep-check-button\">Deep check</button>"
        )
    } else {
        String::new()
    };
    format!(
        "<section aria-labelledby=\"check-h\"><h2 id=\"check-h\">Check</h2>\n\
         <form method=\"post\" action=\"{url}?t=check\" id=\"check-form\" class=\"row\">\
         <label><input type=\"checkbox\" name=\"verify\" value=\"true\"> verify every share</label> \
         <label><input type=\"checkbox\" name=\"repair\" value=\"true\"> repair</label> \
         <button id=\"check-button\">Check</button>{deep}</form></section>\n"
    )
}

/// The forms of a directory one may change: upload, new subdirectory,
/// attach a cap.
fn forms(here: &str) -> String {
    let mut b = check_form(here, true);
    let _ = write!(
        b,
        "<section aria-labelledby=\"upload-h\"><h2 id=\"upload-h\">Upload</h2>\n\
         <form method=\"post\" action=\"{here}?t=upload\" enctype=\"multipart/form-data\" \
         id=\"upload-form\" data-upload>\
         <input type=\"hidden\" name=\"when_done\" value=\"{here}\">\
         <div class=\"drop\" data-drop><label for=\"upload-files\">Files</label> \
         <input id=\"upload-files\" type=\"file\" name=\"file\" multiple required> \
         <span class=\"hint\" hidden>or drop files here</span></div> \
         <label><input type=\"checkbox\" name=\"mutable\" value=\"true\"> mutable</label> \
         <button id=\"upload-button\">Upload</button>\
         <ul class=\"progress\" id=\"upload-progress\" aria-live=\"polite\"></ul></form></section>\n\
         <section aria-labelledby=\"mkdir-h\"><h2 id=\"mkdir-h\">New subdirectory</h2>\n\
         <form method=\"post\" action=\"{here}?t=mkdir\" id=\"mkdir-form\" class=\"row\">\
         <input type=\"hidden\" name=\"when_done\" value=\"{here}\">\
         <label for=\"mkdir-name\">Name</label> <input id=\"mkdir-name\" name=\"name\" required> \
         <button>Create</button></form></section>\n\
         <section aria-labelledby=\"attach-h\"><h2 id=\"attach-h\">Attach a cap</h2>\n\
         <form method=\"post\" action=\"{here}?t=uri\" id=\"attach-form\" class=\"row\">\
         <input type=\"hidden\" name=\"when_done\" value=\"{here}\">\
         <label for=\"attach-name\">Name</label> <input id=\"attach-name\" name=\"name\" required> \
         <label for=\"attach-cap\">Cap</label> <input id=\"attach-cap\" name=\"uri\" required spellcheck=\"false\"> \
         <button>Attach</button></form></section>\n"
    );
    b
}

/// A file's (or directory's) page, `?t=info`.
pub fn info(name: Option<&str>, node: &Node, url: &str) -> String {
    let title = name.unwrap_or("File");
    let mut b = format!(
        "<h1>{}</h1>\n<dl class=\"facts\" id=\"info\">",
        escape_html(title)
    );
    let cap = node.known();
    let _ = write!(b, "<dt>Type</dt><dd>{}</dd>", kind_of(node));
    if let Some(c) = cap {
        if !node.is_dir() {
            let _ = write!(b, "<dt>Format</dt><dd>{}</dd>", format_of(c));
        }
        let _ = write!(
            b,
            "<dt>Size</dt><dd>{}</dd><dt>Mutable</dt><dd>{}</dd>",
            size_of(c)
                .map(|s| format!("{} ({s} bytes)", size(s)))
                .unwrap_or_else(|| "unknown until read".into()),
            if c.is_mutable() { "yes" } else { "no" }
        );
    }
    b.push_str("</dl>\n");
    if let Some(w) = &node.write {
        b.push_str(&cap_box("Read-write cap", "rw-cap", &w.to_string()));
    }
    if let Some(r) = &node.read {
        b.push_str(&cap_box("Read-only cap", "ro-cap", &r.to_string()));
    }
    if cap.is_some() {
        b.push_str(&check_form(url, node.is_dir()));
    }
    if node.is_dir() {
        let _ = write!(b, "<p><a href=\"{url}\">Open the directory</a></p>");
    } else if cap.is_some() {
        let named = name
            .map(|n| format!("&amp;filename={}", percent_encode(n)))
            .unwrap_or_default();
        let _ = write!(
            b,
            "<p><a id=\"open\" href=\"{url}\">Open in browser</a> \
             <a id=\"download\" href=\"{url}?save=true{named}\" download>Download</a></p>"
        );
    }
    layout(title, &b)
}

fn op_row(o: &Op) -> String {
    let (state, class) = match o.state() {
        OpState::Running => ("in progress".to_string(), ""),
        OpState::Done => match o.outcome() {
            Some(found) => (format!("done: {found}"), "ok"),
            None => ("done".to_string(), "ok"),
        },
        OpState::Failed(e) => (format!("failed: {e}"), "bad"),
    };
    let of = o
        .size()
        .map(|s| format!(" of {}", size(s)))
        .unwrap_or_default();
    format!(
        "<tr><td><a href=\"/status/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}{of}</td>\
         <td>{}/s</td><td>{}</td><td>{:.2} s</td><td class=\"{class}\">{}</td></tr>\n",
        o.kind.as_str(),
        escape_html(&o.name),
        size(o.bytes()),
        size(o.speed() as u64),
        o.servers(),
        o.elapsed().as_secs_f64(),
        escape_html(&state),
        id = o.id,
    )
}

const OP_HEAD: &str = "<thead><tr><th>#</th><th>Kind</th><th>Name</th><th>Bytes</th><th>Speed</th>\
    <th>Servers</th><th>Time</th><th>State</th></tr></thead>";

/// `/status`: operations in progress and recently done.
pub fn ops(list: &[std::sync::Arc<Op>]) -> String {
    let mut b = format!(
        "<h1>Operations</h1>\n<p>Uploads and downloads through this gateway, newest first.</p>\n\
         <table id=\"ops\">{OP_HEAD}<tbody>\n"
    );
    for o in list {
        b.push_str(&op_row(o));
    }
    b.push_str("</tbody></table>\n");
    layout("Operations", &b)
}

/// `/status/N`: one operation.
pub fn op(o: &Op) -> String {
    let mut b = format!(
        "<h1>{} {}</h1>\n<p>Started {}.</p><table id=\"op\">{OP_HEAD}<tbody>\n",
        escape_html(o.kind.as_str()),
        escape_html(&o.name),
        date(epoch(o.started_at))
    );
    b.push_str(&op_row(o));
    b.push_str("</tbody></table>\n");
    if o.state() == OpState::Running {
        b.push_str("<p><a href=\"\">Refresh</a></p>");
    }
    layout(&format!("{} {}", o.kind.as_str(), o.name), &b)
}

/// `/operations/H` for people: whether operation H is done; a deep
/// check's counts and unhealthy objects (each with its summary); and the
/// result as Tahoe's JSON.
pub fn handle_status(name: &str, result: &serde_json::Value, finished: bool) -> String {
    let state = if finished {
        "<p id=\"finished\">Finished.</p>"
    } else {
        "<p id=\"finished\">Still running. <a href=\"\">Refresh</a></p>"
    };
    let mut b = format!(
        "<h1>Operation {}</h1>\n{state}\n<p>Also as <a href=\"?output=JSON\">JSON</a>.</p>\n",
        escape_html(name)
    );
    if result.get("count-objects-checked").is_some() {
        b.push_str("<table id=\"deep-counts\"><tbody>\n");
        for (key, value) in result.as_object().into_iter().flatten() {
            if let Some(what) = key.strip_prefix("count-") {
                let _ = writeln!(
                    b,
                    "<tr><th>{}</th><td>{value}</td></tr>",
                    escape_html(&what.replace('-', " "))
                );
            }
        }
        b.push_str("</tbody></table>\n<h2>Unhealthy</h2>\n<ul id=\"unhealthy\">\n");
        for entry in result["list-unhealthy-files"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let path = crate::client::deep::path_of(&entry[0]);
            let shown = if path.is_empty() {
                "(the directory itself)".to_string()
            } else {
                path.join("/")
            };
            let _ = writeln!(
                b,
                "<li>{}: {}</li>",
                escape_html(&shown),
                escape_html(entry[1]["summary"].as_str().unwrap_or(""))
            );
        }
        b.push_str("</ul>\n");
    }
    let json = serde_json::to_string_pretty(result).unwrap_or_default();
    let _ = writeln!(b, "<pre id=\"result\">{}</pre>", escape_html(&json));
    layout(&format!("Operation {name}"), &b)
}

/// `/statistics` for people.
pub fn statistics(s: &Snapshot) -> String {
    let mut b = String::from(
        "<h1>Statistics</h1>\n<p>Also as <a href=\"/statistics?t=json\">JSON</a> and \
         <a href=\"/statistics?t=openmetrics\">OpenMetrics</a>.</p>\n\
         <table id=\"stats\"><thead><tr><th>Name</th><th>Value</th></tr></thead><tbody>\n",
    );
    for (k, v) in &s.counters {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"num\">{v}</td></tr>",
            escape_html(k)
        );
    }
    for (k, v) in &s.stats {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"num\">{v}</td></tr>",
            escape_html(k)
        );
    }
    b.push_str("</tbody></table>\n");
    layout("Statistics", &b)
}

/// An error, for a browser.
pub fn error(status: u16, reason: &str, message: &str) -> String {
    layout(
        &format!("{status} {reason}"),
        &format!(
            "<h1>{status} {}</h1>\n<p class=\"error\" id=\"error\">{}</p>\n\
             <p><a href=\"/\">Welcome page</a></p>",
            escape_html(reason),
            escape_html(message)
        ),
    )
}

/// The results page of `t=check` on `name` (Tahoe's "File Check Results"):
/// the summary, the counts, and which server holds which share.
pub fn check_results(name: &str, r: Option<&CheckResults>) -> String {
    layout("Check results", &check_body(name, r))
}

/// What [`check_results`] shows, without the page around it.
fn check_body(name: &str, r: Option<&CheckResults>) -> String {
    let Some(r) = r else {
        return format!(
            "<h1>Check results for {}</h1>\n<p id=\"summary\">Healthy: a literal \
             file, whose data is in its cap: nothing on the grid to check.</p>",
            escape_html(name)
        );
    };
    let si = crate::client::json::storage_index_text(&r.storage_index);
    let mut b = format!(
        "<h1>Check results for {}</h1>\n<p>Storage index <code>{si}</code></p>\n\
         <p id=\"summary\" class=\"{}\">{}</p>\n<dl class=\"facts\" id=\"counts\">",
        escape_html(name),
        if r.healthy { "healthy" } else { "unhealthy" },
        escape_html(&r.summary)
    );
    let facts: [(&str, String); 9] = [
        ("Healthy", r.healthy.to_string()),
        ("Recoverable", r.recoverable.to_string()),
        (
            "Good shares",
            format!(
                "{} (encoding is {}-of-{})",
                r.count_shares_good, r.count_shares_needed, r.count_shares_expected
            ),
        ),
        (
            "Servers holding good shares",
            r.count_good_share_hosts.to_string(),
        ),
        ("Happiness", r.count_happiness.to_string()),
        ("Wrong shares", r.count_wrong_shares.to_string()),
        ("Corrupt shares", r.corrupt_shares.len().to_string()),
        ("Needs rebalancing", r.needs_rebalancing.to_string()),
        (
            "Servers responding",
            format!(
                "{} of {}",
                r.servers_responding.len(),
                r.servers_responding.len() + r.servers_not_responding.len()
            ),
        ),
    ];
    for (k, v) in facts {
        let _ = write!(b, "<dt>{k}</dt><dd>{}</dd>", escape_html(&v));
    }
    b.push_str(
        "</dl>\n<h2>Share map</h2>\n<table id=\"sharemap\"><tr><th>Share</th><th>Servers</th></tr>",
    );
    for (share, servers) in &r.sharemap {
        let list: Vec<String> = servers.iter().map(|s| escape_html(s)).collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape_html(share),
            list.join("<br>")
        );
    }
    b.push_str("</table>\n");
    if !r.servers_not_responding.is_empty() {
        b.push_str("<h2>Servers not responding</h2>\n<ul>");
        for (s, why) in &r.servers_not_responding {
            let _ = write!(b, "<li>{}: {}</li>", escape_html(s), escape_html(why));
        }
        b.push_str("</ul>\n");
    }
    if !r.corrupt_shares.is_empty() {
        b.push_str("<h2>Corrupt shares</h2>\n<ul>");
        for c in &r.corrupt_shares {
            let _ = write!(
                b,
                "<li>{} share {}: {}</li>",
                escape_html(&c.server),
                c.shnum,
                escape_html(&c.reason)
            );
        }
        b.push_str("</ul>\n");
    }
    b
}

/// The results page of `t=check&repair=true`: what was decided or done,
/// then the check after and the check before.
pub fn repair_results(name: &str, r: Option<&RepairResults>) -> String {
    let Some(r) = r else {
        return check_results(name, None);
    };
    let verdict = match (r.attempted, r.successful) {
        (false, _) => "Repair not attempted",
        (true, true) => "Repair successful",
        (true, false) => "Repair failed",
    };
    let after = check_body(name, Some(&r.post));
    let before = check_body(name, Some(&r.pre));
    layout(
        "Repair results",
        &format!(
            "<h1>Repair results for {}</h1>\n<p id=\"repair\">{verdict}: {}</p>\n\
             <h2>After</h2>\n<div id=\"post\">{}</div>\n<h2>Before</h2>\n<div id=\"pre\">{}</div>",
            escape_html(name),
            escape_html(&r.note),
            after,
            before
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes_and_escaping() {
        assert_eq!(date(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_795_823_132.5), "2026-11-27 23:45:32 UTC");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            uri_of("URI:DIR2:a:b", &["a b".into()]),
            "/uri/URI%3ADIR2%3Aa%3Ab/a%20b"
        );
    }
}
