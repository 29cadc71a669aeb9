//! A program that embeds a tahoe client node as a library: it joins the
//! grid of a client base directory (made by `tahoe create-client`), uploads
//! a file, downloads it back and checks the bytes.
//!
//! Run: `cargo run --example embed -- BASEDIR FILE`

use std::path::Path;

use anyhow::{Context, ensure};
use tahoe::client::GridClient;
use tahoe::client::transfer::{self, PutKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [basedir, file] = args.as_slice() else {
        anyhow::bail!("usage: embed BASEDIR FILE")
    };
    // A session is a client of the grid: it finds the storage servers
    // through the queen named in BASEDIR and keeps its connections.
    let session = GridClient::open(Path::new(basedir)).await?;
    let cap = transfer::put(&session, Path::new(file), PutKind::from_args(false, None)?)
        .await?
        .context("no cap")?;
    println!("{cap}");
    let back = Path::new(file).with_extension("back");
    transfer::get(&session, &cap, Some(&back)).await?;
    ensure!(
        std::fs::read(&back)? == std::fs::read(file)?,
        "the bytes differ"
    );
    println!("downloaded {} and compared", back.display());
    Ok(())
}
