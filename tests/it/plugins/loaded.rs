//! Plugins loaded from shared libraries: the example backend against the
//! storage conformance suite, and libraries that misbehave on purpose
//! (tests/fixtures/misbehaving-plugin), which the node must refuse or
//! contain with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tahoe_core::error::ErrorKind;
use tahoe_core::kinds::storage::{ShareKind, StorageBackend, StorageIndex};
use tahoe_core::plugin::loader::open_storage;
use tahoe_core::testing::{built_library, storage};
use testkit::rt;

use crate::EXE;

fn dirstore() -> PathBuf {
    built_library("tahoe_example_dirstore")
}

fn misbehaving() -> PathBuf {
    built_library("tahoe_test_misbehaving_plugin")
}

/// The storage conformance suite and `run_persistent` against the backend
/// `open(section, dir)` opens, in a fresh temporary root.
fn conformance(
    open: impl Fn(&str, &Path) -> tahoe_core::Result<Arc<dyn StorageBackend>> + Clone + 'static,
) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    rt().block_on(async {
        storage::run(|| {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = root.path().join(format!("fresh-{n}"));
            let open = open.clone();
            async move {
                std::fs::create_dir_all(&dir).unwrap();
                open("path = \"shares\"", &dir)
            }
        })
        .await;
        let same = root.path().join("persistent");
        std::fs::create_dir_all(&same).unwrap();
        storage::run_persistent(|| {
            let (open, same) = (open.clone(), same.clone());
            async move { open("", &same) }
        })
        .await;
    });
    root
}

#[test]
fn the_example_backend_library_passes_the_storage_conformance_suite() {
    let lib = dirstore();
    let root = conformance(move |section, dir| open_storage(&lib, section, dir));
    // The layout is the example's own: ROOT/<si hex>/<shnum>.imm.
    assert!(root.path().join("persistent/dirstore").is_dir());
}

/// The same backend compiled in (`tahoe_core::plugin::loader::linked`) passes the
/// same suite, and a library offering a name it took is refused.
#[test]
fn the_example_backend_linked_in_passes_the_suite_too() {
    use tahoe_core::plugin::loader::linked::register_storage;
    use tahoe_core::plugin::registry::{PluginContext, Registry};
    type DirStore = tahoe_example_dirstore::DirStore;
    let root = conformance(|section, dir| {
        let mut r = Registry::new();
        register_storage::<DirStore>(&mut r)?;
        let ctx = PluginContext {
            config: tahoe_core::plugin::config::PluginConfig::from_toml(
                "storage.dirstore",
                section,
            ),
            basedir: dir.to_path_buf(),
        };
        r.storage("dirstore", &ctx)
    });
    assert!(root.path().join("persistent/dirstore").is_dir());
    let mut r = Registry::new();
    register_storage::<DirStore>(&mut r).unwrap();
    let e = tahoe_core::plugin::loader::load(&mut r, &dirstore(), root.path()).unwrap_err();
    assert!(e.to_string().contains("cannot be registered"), "{e}");
    assert!(register_storage::<DirStore>(&mut r).is_err());
}

/// `examples/static-backend`, the `tahoe` binary with `dirstore` compiled
/// in: it lists the backend among its built-ins and takes `backend =
/// "dirstore"` with no `[plugins] load`; loading the library as well is
/// refused as a clash, naming the file.
#[test]
fn the_static_backend_example_offers_dirstore_built_in() {
    let exe = tahoe_core::testing::built("examples/static-backend");
    let list = Command::new(&exe).arg("plugins").output().unwrap();
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(out.contains("  dirstore "), "{out}");
    assert!(out.contains("  fs "), "{out}");
    let o = check_config_with(&exe, "[storage]\nbackend = \"dirstore\"\n", &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("storage:   dirstore"), "{out}");
    assert!(!out.contains("loaded:"), "{out}");
    let lib = dirstore();
    let o = check_config_with(
        &exe,
        &format!("[storage]\nbackend = \"dirstore\"\n\n{}", load(&lib)),
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(lib.to_str().unwrap()) && err.contains("cannot be registered"),
        "{err}"
    );
}

/// `tahoe plugins --config BASEDIR` on a base directory whose tahoe.toml
/// is `toml`, with `env`.
fn check_config(toml: &str, env: &[(&str, &str)]) -> Output {
    check_config_with(Path::new(EXE), toml, env)
}

/// [`check_config`] with the program `exe`.
fn check_config_with(exe: &Path, toml: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    // The memory transport: no node key needed to check a config.
    let toml = format!("{toml}\n[transport]\nname = \"memory\"\n");
    std::fs::write(dir.path().join("tahoe.toml"), toml).unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["plugins", "--config", dir.path().to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn load(lib: &Path) -> String {
    format!("[plugins]\nload = [{:?}]\n", lib.to_str().unwrap())
}

#[test]
fn tahoe_plugins_shows_a_loaded_library_and_its_origin() {
    let lib = dirstore();
    let o = check_config(
        &format!("[storage]\nbackend = \"dirstore\"\n\n{}", load(&lib)),
        &[],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("storage:   dirstore"), "{out}");
    assert!(
        out.contains(&format!(
            "loaded:    storage plugin `dirstore` from {}",
            lib.display()
        )),
        "{out}"
    );
    // Its section is checked by the plugin itself.
    let o = check_config(
        &format!(
            "[storage]\nbackend = \"dirstore\"\n\n[storage.dirstore]\ncolour = \"red\"\n\n{}",
            load(&lib)
        ),
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("unknown field `colour`"), "{err}");
}

/// A library of this process's own C library: it exists on every Linux
/// machine and exports no tahoe entry point.
fn libc_path() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("libc.so"))
        })
        .map(PathBuf::from)
        .expect("this process maps a libc.so")
}

#[test]
fn libraries_that_do_not_fit_are_refused_at_start_up_with_what_was_expected() {
    let bad = misbehaving();
    let name = bad.display().to_string();
    let libc = libc_path();
    let missing = Path::new("/nonexistent/libnothing.so");
    let cases: Vec<(&Path, &str, Vec<String>)> = vec![
        (
            &bad,
            "old-abi",
            vec![
                name.clone(),
                "built for plugin ABI version 0".into(),
                format!("this node speaks version {}", tahoe_api::ABI_VERSION),
            ],
        ),
        (
            &bad,
            "wrong-kind",
            vec![
                name.clone(),
                "offers `misbehaving`, a plugin of unknown kind 7".into(),
                "expected a storage backend, a codec or a cipher".into(),
            ],
        ),
        (
            &bad,
            "short-table",
            vec![
                name.clone(),
                "storage plugin `misbehaving` with a function table of".into(),
                "this node's storage table is".into(),
            ],
        ),
        (
            &bad,
            "clash",
            vec![
                name.clone(),
                "offers storage plugin `fs`".into(),
                "already registered".into(),
            ],
        ),
        (
            &libc,
            "",
            vec![
                libc.display().to_string(),
                "has no `tahoe_plugin_entry` symbol".into(),
            ],
        ),
        (
            missing,
            "",
            vec![
                "/nonexistent/libnothing.so".into(),
                "cannot be loaded".into(),
            ],
        ),
    ];
    for (lib, mode, wanted) in cases {
        let o = check_config(&load(lib), &[("MISBEHAVING_PLUGIN", mode)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{mode}: a bad library was accepted");
        assert_eq!(o.status.code(), Some(1), "{mode}: {err}");
        for w in &wanted {
            assert!(err.contains(w.as_str()), "{mode}: {w:?} not in: {err}");
        }
        assert!(!err.contains("panicked"), "{mode}: {err}");
    }
    // The same library, untouched, loads.
    let o = check_config(&load(&bad), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_library_other_users_could_have_written_is_not_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let lib = dir.path().join("libdirstore.so");
    std::fs::copy(dirstore(), &lib).unwrap();
    let config = format!("[storage]\nbackend = \"dirstore\"\n\n{}", load(&lib));
    for (file, folder, refused) in [
        (
            0o666,
            0o755,
            Some("can be written by other users (mode 666)"),
        ),
        (
            0o664,
            0o755,
            Some("can be written by other users (mode 664)"),
        ),
        (
            0o644,
            0o777,
            Some("which other users can write to (mode 777)"),
        ),
        (0o644, 0o1777, None),
        (0o755, 0o755, None),
    ] {
        chmod(&lib, file);
        chmod(dir.path(), folder);
        let o = check_config(&config, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        match refused {
            Some(why) => {
                assert!(!o.status.success(), "{file:o} in {folder:o} was loaded");
                assert!(err.contains(why) && err.contains("not loaded"), "{err}");
            }
            None => assert!(o.status.success(), "{file:o} in {folder:o}: {err}"),
        }
    }
    chmod(dir.path(), 0o755);
}

fn si() -> StorageIndex {
    StorageIndex([9; 16])
}

#[test]
fn a_panicking_or_lying_backend_is_contained() {
    let lib = misbehaving();
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        // Opening panics: an error for the node, which goes on.
        let e = open_storage(&lib, "mode = \"panic-open\"", dir.path())
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        assert!(
            e.to_string()
                .contains("panicked: misbehaving on purpose while opening"),
            "{e}"
        );
        // Every call panics: every call is an error, again and again.
        let b = open_storage(&lib, "mode = \"panic\"", dir.path()).unwrap();
        for _ in 0..3 {
            let errors = [
                b.create(&si(), 0, 10).await.err().unwrap(),
                b.read(&si(), 0, ShareKind::Immutable, 0, 10)
                    .await
                    .unwrap_err(),
                b.list(&si()).await.unwrap_err(),
                b.delete(&si(), 0).await.unwrap_err(),
                b.leases(&si()).await.unwrap_err(),
                b.test_and_write(&si(), 0, &[], &[], None)
                    .await
                    .unwrap_err(),
            ];
            for e in errors {
                assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
                assert!(e.to_string().contains("the plugin panicked"), "{e}");
            }
        }
        // Lengths that lie are caught before anything uses them.
        let b = open_storage(&lib, "mode = \"garbage\"", dir.path()).unwrap();
        let mut w = b.create(&si(), 1, 5).await.unwrap();
        w.write(0, bytes::Bytes::from_static(b"hello"))
            .await
            .unwrap();
        w.seal().await.unwrap();
        let e = b
            .read(&si(), 1, ShareKind::Immutable, 0, 3)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("for a read of at most 3"), "{e}");
        let e = b.list(&si()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("a share listed twice"), "{e}");
        // Writes past the size given at creation never reach the plugin.
        let mut w = b.create(&si(), 2, 4).await.unwrap();
        let e = w
            .write(2, bytes::Bytes::from_static(b"abc"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // Nor do mutable writes beyond the share limit.
        let huge = tahoe_core::kinds::storage::WriteVector {
            offset: u64::MAX - 1,
            data: bytes::Bytes::from_static(b"ab"),
        };
        let e = b
            .test_and_write(&si(), 3, &[], &[huge], None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn the_example_codec_library_meets_the_codec_contract_for_1_of_n() {
    use tahoe_core::kinds::codec::CodecParams;
    use tahoe_core::plugin::registry::{PluginContext, PluginKind, Registry};
    let lib = built_library("tahoe_example_replicate");
    let mut registry = Registry::new();
    let (kind, name) =
        tahoe_core::plugin::loader::load(&mut registry, &lib, Path::new(".")).unwrap();
    assert_eq!((kind, name.as_str()), (PluginKind::Codec, "replicate"));
    let ctx = PluginContext::empty(PluginKind::Codec, "replicate", Path::new("."));
    for n in [1, 2, 3, 10] {
        let codec = registry
            .codec("replicate", CodecParams::new(1, n).unwrap(), &ctx)
            .unwrap();
        tahoe_core::testing::codec::check_params(codec.as_ref());
    }
    let e = registry
        .codec("replicate", CodecParams::new(3, 5).unwrap(), &ctx)
        .err()
        .unwrap();
    assert!(e.to_string().contains("k = 3 cannot be"), "{e}");
}
