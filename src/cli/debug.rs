//! `tahoe debug`: tools that need no grid (the cap a file would get, the
//! caps a private key makes).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use tahoe_core::plugin::registry::PluginKind;

use super::args::DebugCommand;
use super::runtime;

/// Run a `tahoe debug` command.
pub fn run(command: DebugCommand, out: &mut dyn Write) -> Result<()> {
    match command {
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
    }
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
