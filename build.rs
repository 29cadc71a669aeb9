//! Names the commit the `tahoe` binary is built from, for `tahoe
//! --version`: `TAHOE_COMMIT` from the environment when set (a package
//! built from a source tarball), else `git rev-parse --short=12 HEAD` of
//! this checkout, else `unknown`. A build is redone when HEAD moves.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TAHOE_COMMIT");
    let commit = std::env::var("TAHOE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".into());
    // Not under a `TAHOE_` name: cargo also sets this in the environment
    // of the tests and benches it runs, and the nodes they start would
    // read a `TAHOE_` variable as a setting (and warn that it is none).
    println!("cargo:rustc-env=BUILT_FROM_COMMIT={commit}");
}

fn git_head() -> Option<String> {
    let git_dir = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let git_dir = String::from_utf8(git_dir.stdout).ok()?.trim().to_string();
    // HEAD names a branch whose file moves with each commit (or, packed,
    // packed-refs does): watch those that exist (a missing one would make
    // every build run this again).
    let mut watched = vec![format!("{git_dir}/HEAD"), format!("{git_dir}/packed-refs")];
    if let Ok(head) = std::fs::read_to_string(format!("{git_dir}/HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        watched.push(format!("{git_dir}/{r}"));
    }
    for path in watched {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
