//! `tahoe plugins`, run as a real process.

use std::process::Output;

use testkit::tahoe;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lists_every_default_plugin_by_kind() {
    let o = tahoe(&["plugins"], &[], 120);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let section = |kind: &str| -> Vec<String> {
        text.split(&format!("{kind}:\n"))
            .nth(1)
            .unwrap_or("")
            .lines()
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(section("codec"), ["crs", "leopard", "reed-solomon"]);
    assert_eq!(section("cipher"), ["aes-ctr"]);
    assert_eq!(section("storage"), ["fs", "memory", "s3"]);
    assert_eq!(section("transport"), ["memory", "tarpc-tcp"]);
}

#[test]
fn validates_a_good_config_and_names_the_plugins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tahoe.toml"),
        "[encoding]\nk = 4\nhappy = 5\nn = 6\n[codec]\nname = \"leopard\"\n[cipher.aes-ctr]\nkey_bits = 256\n[storage]\nbackend = \"memory\"\n[storage.memory]\ncapacity = 1000\n[transport]\nname = \"memory\"\n",
    )
    .unwrap();
    let o = tahoe(
        &["plugins", "--config", dir.path().to_str().unwrap()],
        &[],
        120,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("codec:     leopard"), "{text}");
    assert!(text.contains("4-of-6"), "{text}");
    assert!(text.contains("aes-ctr (256-bit keys)"), "{text}");
    assert!(text.contains("storage:   memory"), "{text}");
}

#[test]
fn bad_configs_fail_with_the_key_and_the_choices() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "[codec]\nname = \"zfec\"\n",
            &["codec.name", "tahoe.toml", "crs, leopard, reed-solomon"],
        ),
        (
            "[storage.fs]\npth = \"x\"\n",
            &["storage.fs.pth", "path", "tahoe.toml"],
        ),
        (
            "[storage.fss]\npath = \"x\"\n",
            &["storage.fss", "fs, memory"],
        ),
        (
            "[encoding]\nk = 11\n",
            &["encoding.k", "tahoe.toml", "between 1 and n=10"],
        ),
        ("[codec]\nname = \"leopard\"\n", &["leopard", "n - k <= k"]),
    ];
    for (toml, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tahoe.toml"), toml).unwrap();
        let o = tahoe(
            &["plugins", "--config", dir.path().to_str().unwrap()],
            &[],
            120,
        );
        assert!(!o.status.success(), "accepted bad config {toml:?}");
        let err = stderr(&o);
        for n in needles {
            assert!(err.contains(n), "error for {toml:?} lacks {n:?}: {err}");
        }
    }
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tahoe.toml"),
        "[codec]\nname = \"reed-solomon\"\n[transport]\nname = \"memory\"\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let o = tahoe(
        &["plugins", "--config", path],
        &[("TAHOE_CODEC__NAME", "crs")],
        120,
    );
    assert!(stdout(&o).contains("codec:     crs"), "{}", stderr(&o));
    let o = tahoe(
        &["plugins", "--config", path],
        &[("TAHOE_CODEC__NAME", "nope")],
        120,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TAHOE_"), "{}", stderr(&o));
}

#[test]
fn missing_basedir_is_an_error() {
    let o = tahoe(&["plugins", "--config", "/nonexistent/node"], &[], 120);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/node"));
}

#[test]
fn a_library_that_cannot_be_loaded_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tahoe.toml"),
        "[plugins]\nload = [\"libmystore.so\"]\n[transport]\nname = \"memory\"\n",
    )
    .unwrap();
    let o = tahoe(
        &["plugins", "--config", dir.path().to_str().unwrap()],
        &[],
        120,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("libmystore.so"), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be loaded"), "{}", stderr(&o));
}

/// Every configuration in examples/configs is valid (with the memory
/// transport, which needs no node key; the plugin node with the example
/// library in its plugins/ directory).
#[test]
fn the_example_configs_are_valid() {
    let lib = tahoe_core::testing::built_library("tahoe_example_dirstore");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let base = tempfile::tempdir().unwrap();
        std::fs::copy(&path, base.path().join("tahoe.toml")).unwrap();
        std::fs::create_dir_all(base.path().join("plugins")).unwrap();
        std::fs::copy(
            &lib,
            base.path().join("plugins/libtahoe_example_dirstore.so"),
        )
        .unwrap();
        let o = tahoe(
            &["plugins", "--config", base.path().to_str().unwrap()],
            &[("TAHOE_TRANSPORT__NAME", "memory")],
            120,
        );
        assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
        seen += 1;
    }
    assert!(seen >= 4, "{seen} example configs");
}
