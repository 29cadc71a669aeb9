//! `tahoe debug`: tools that need no grid (the cap a file would get, the
//! caps a private key makes), and what a storage node holds for a file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use tahoe_core::plugin::registry::PluginKind;

use super::args::DebugCommand;
use super::runtime;

/// Run a `tahoe debug` command.
pub fn run(basedir: &Path, command: DebugCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        DebugCommand::Leases { target } => leases(basedir, &target, out),
        DebugCommand::ChkCap {
            file,
            k,
            n,
            segment_size,
            convergence,
            codec,
        } => {
            let secret = base64::engine::general_purpose::STANDARD
                .decode(convergence.trim())
                .context("--convergence must be base64")?;
            let cap = runtime()?.block_on(chk_cap(&file, k, n, segment_size, secret, &codec))?;
            writeln!(out, "{cap}")?;
            Ok(())
        }
        DebugCommand::MutableCap { key, format } => mutable_caps(&key, &format, out),
        DebugCommand::DistFiles { outdir } => dist_files(&outdir, out),
    }
}

/// The man pages and shell completions of the command line as clap defines
/// it: made from the same definitions as `--help`, so they cannot drift.
fn dist_files(outdir: &Path, out: &mut dyn Write) -> Result<()> {
    use clap::CommandFactory as _;
    use clap_complete::Shell;
    let man = outdir.join("man");
    let completions = outdir.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    // No pages for `tahoe help …`: it only repeats the other pages.
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    clap_mangen::generate_to(cmd.clone(), &man).context("writing the man pages")?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "tahoe", &completions)
            .with_context(|| format!("writing the {shell} completions"))?;
    }
    writeln!(out, "man pages in {}", man.display())?;
    writeln!(out, "completions in {}", completions.display())?;
    Ok(())
}

/// The write, read and verify caps (one a line) of the mutable file the
/// private key in `key` signs.
fn mutable_caps(key: &Path, format: &str, out: &mut dyn Write) -> Result<()> {
    let format = tahoe_core::format::ssk::MutableFormat::parse(format)?;
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let signing = tahoe_core::client::mutable::rsa::SigningKey::from_pem(&pem)
        .with_context(|| format!("reading the key in {}", key.display()))?;
    let write = signing.write_cap(format);
    let read = write.read_cap();
    writeln!(out, "{write}")?;
    writeln!(out, "{read}")?;
    writeln!(out, "{}", read.verifier())?;
    Ok(())
}

/// The cap of a file under the given parameters (see `tahoe debug chk-cap`).
pub async fn chk_cap(
    file: &Path,
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

/// `tahoe debug leases`: the shares and leases of one storage index on the
/// node in `basedir`, from its web API (`GET /storage/SI?t=json`), so that
/// whatever backend it stores into answers.
fn leases(basedir: &Path, target: &str, out: &mut dyn Write) -> Result<()> {
    use tahoe_core::client::check::CheckTarget;
    use tahoe_core::format::cap::Cap;
    use tahoe_core::kinds::storage::StorageIndex;

    let si: StorageIndex = match target.parse::<Cap>() {
        Ok(cap) => CheckTarget::of(&cap)
            .storage_index()
            .context("a literal cap holds its data: no server stores it")?,
        Err(_) => target
            .parse()
            .context("give a storage index (base32) or a cap")?,
    };
    let base = crate::web::base_url(basedir)?;
    let body = http_get(&base, &format!("/storage/{si}?t=json"))?;
    let v: serde_json::Value = serde_json::from_slice(&body).context("the node's answer")?;
    writeln!(out, "storage index: {si}")?;
    let shares = v["shares"].as_array().cloned().unwrap_or_default();
    if shares.is_empty() {
        writeln!(out, "no shares here")?;
    }
    for s in &shares {
        writeln!(
            out,
            "share {}: {} bytes, {}",
            s["shnum"],
            s["size"],
            s["kind"].as_str().unwrap_or("?")
        )?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (i, l) in v["leases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = l["expires-at"].as_u64().unwrap_or(0);
        let when = if at > now {
            format!(
                "in {}",
                crate::web::ago(std::time::Duration::from_secs(at - now))
            )
        } else {
            format!(
                "{} ago",
                crate::web::ago(std::time::Duration::from_secs(now - at))
            )
        };
        writeln!(
            out,
            "lease {}: expires {} ({when}), tag {}",
            i + 1,
            crate::web::date(at as f64),
            l["tag"].as_str().unwrap_or("?")
        )?;
    }
    Ok(())
}

/// One GET to the node's own web server: its body, or the error it gave.
fn http_get(base: &str, path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let host = base.trim_start_matches("http://");
    let host = host.replace("0.0.0.0:", "127.0.0.1:");
    let mut conn = std::net::TcpStream::connect(host.as_str())
        .with_context(|| format!("connecting to the node at {host} (is it running?)"))?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the node's answer has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        anyhow::bail!(
            "the node answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(body)
}
