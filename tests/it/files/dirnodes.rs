//! Directories on an in-process grid: path operations, read-only and
//! immutable directories, hostile contents, and concurrent changes by
//! many clients losing nothing.

use std::sync::Arc;

use bytes::Bytes;
use tahoe_core::ErrorKind;
use tahoe_core::client::dirnode::{DirClient, split_path};
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{Directory, Metadata, Node, Replace};
use tahoe_core::format::ssk::MutableFormat;
use testkit::{MemGrid, rt};

fn lit(text: &str) -> Node {
    Node::from_cap(Cap::Lit(tahoe_core::format::cap::LitCap {
        data: text.as_bytes().to_vec(),
    }))
}

async fn file(c: &DirClient, data: &[u8]) -> Node {
    let cap = c
        .immutable
        .put(Arc::new(BytesSource(Bytes::copy_from_slice(data))))
        .await
        .unwrap();
    Node::from_cap(cap)
}

fn names(d: &Directory) -> Vec<String> {
    d.entries().map(|(n, _)| n.to_string()).collect()
}

#[test]
fn paths_add_remove_and_rename() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(5).await;
        let c = grid.dir_client(3, 5, 0..10);
        for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
            let root = c.create(format, Vec::new()).await.unwrap();
            assert!(c.read(&root).await.unwrap().is_empty());
            let docs = c
                .mkdir_p(&root, &split_path("docs/2026/").unwrap(), format)
                .await
                .unwrap();
            let big = file(&c, &[7u8; 5000]).await;
            c.add(&docs, "report.txt", big.clone(), None, Replace::Never)
                .await
                .unwrap();
            let found = c
                .resolve(&root, &split_path("docs/2026/report.txt").unwrap())
                .await
                .unwrap();
            assert_eq!(found, big);
            // mkdir -p again finds the same directory.
            let again = c
                .mkdir_p(&root, &split_path("docs/2026").unwrap(), format)
                .await
                .unwrap();
            assert_eq!(again, docs);
            // Rename within one directory, then across two.
            c.rename(&docs, "report.txt", &docs, "final.txt", Replace::Never)
                .await
                .unwrap();
            assert_eq!(names(&c.read(&docs).await.unwrap()), ["final.txt"]);
            c.rename(&docs, "final.txt", &root, "top.txt", Replace::Never)
                .await
                .unwrap();
            assert!(c.read(&docs).await.unwrap().is_empty());
            let top = c.read(&root).await.unwrap();
            assert_eq!(names(&top), ["docs", "top.txt"]);
            let md = top.get("top.txt").unwrap().metadata();
            assert!(md["tahoe"]["linkcrtime"].is_f64(), "{md:?}");
            // Remove gives back what was linked.
            assert_eq!(c.remove(&root, "top.txt").await.unwrap(), Some(big));
            let e = c.remove(&root, "top.txt").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
            // Errors name what is wrong.
            let e = c
                .resolve(&root, &split_path("docs/nope/x").unwrap())
                .await
                .unwrap_err();
            assert!(e.to_string().contains("\"nope\" in docs/"), "{e}");
            c.add(&root, "f", lit("x"), None, Replace::Never)
                .await
                .unwrap();
            let e = c
                .resolve(&root, &split_path("f/g").unwrap())
                .await
                .unwrap_err();
            assert!(e.to_string().contains("f is not a directory"), "{e}");
            let e = c
                .mkdir_p(&root, &split_path("f/g").unwrap(), format)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        }
    });
}

#[test]
fn replace_rules_and_failed_changes_leave_the_directory_alone() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(5).await;
        let c = grid.dir_client(3, 5, 10..20);
        let root = c.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
        let sub = c
            .mkdir_p(&root, &["sub".to_string()], MutableFormat::Sdmf)
            .await
            .unwrap();
        c.add(&root, "f", lit("one"), None, Replace::Never)
            .await
            .unwrap();
        let DirCap::Write(w) = &root else { panic!() };
        let before = c.mutable.stat(&w.read_cap()).await.unwrap();
        for (name, replace) in [("f", Replace::Never), ("sub", Replace::OnlyFiles)] {
            let e = c
                .add(&root, name, lit("two"), None, replace)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        }
        let e = c
            .modify(&root, |d, _| {
                d.remove("f")?;
                Err::<(), _>(tahoe_core::Error::invalid_input("changed my mind"))
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("changed my mind"));
        let after = c.mutable.stat(&w.read_cap()).await.unwrap();
        assert_eq!(after.seqnum, before.seqnum, "a failed change published");
        assert_eq!(after.root_hash, before.root_hash);
        c.add(&root, "f", lit("two"), None, Replace::OnlyFiles)
            .await
            .unwrap();
        c.add(&root, "sub", lit("three"), None, Replace::Always)
            .await
            .unwrap();
        let d = c.read(&root).await.unwrap();
        assert_eq!(d.node("f").unwrap(), Some(lit("two")));
        assert_eq!(d.node("sub").unwrap(), Some(lit("three")));
        // The directory that was replaced still exists on its own.
        assert!(c.read(&sub).await.unwrap().is_empty());
    });
}

#[test]
fn read_only_caps_see_no_write_caps_and_change_nothing() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(5).await;
        let c = grid.dir_client(3, 5, 20..30);
        let root = c.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
        let sub = c
            .mkdir_p(&root, &["sub".to_string()], MutableFormat::Mdmf)
            .await
            .unwrap();
        let mutable_file = c
            .mutable
            .create(
                MutableFormat::Sdmf,
                Arc::new(BytesSource(Bytes::from_static(b"m"))),
            )
            .await
            .unwrap();
        c.add(
            &root,
            "m",
            Node::from_cap(Cap::SskWrite(mutable_file.clone())),
            None,
            Replace::Never,
        )
        .await
        .unwrap();
        let Cap::Dir(ro) = Cap::Dir(root.clone()).read_only() else {
            panic!()
        };
        let d = c.read(&ro).await.unwrap();
        for (name, e) in d.entries() {
            let n = d.node_of(name, e).unwrap();
            assert!(
                n.write.is_none(),
                "{name} shows a write cap to a read-only holder"
            );
        }
        let m = d.node("m").unwrap().unwrap();
        assert_eq!(m.known(), Some(&Cap::SskRead(mutable_file.read_cap())));
        // Paths through a read-only directory stay read-only.
        let s = c.resolve(&ro, &["sub".to_string()]).await.unwrap();
        assert_eq!(
            s.dir_cap(),
            Some(&match Cap::Dir(sub.clone()).read_only() {
                Cap::Dir(d) => d,
                _ => unreachable!(),
            })
        );
        let e = c
            .add(&ro, "x", lit("x"), None, Replace::Always)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        // With the write cap, the child's write cap is there.
        let rw = c.read(&root).await.unwrap();
        assert_eq!(
            rw.node("m").unwrap().unwrap().known(),
            Some(&Cap::SskWrite(mutable_file))
        );
        // A verify cap cannot list.
        let Cap::Dir(DirCap::Read(r)) = Cap::Dir(root.clone()).read_only() else {
            panic!()
        };
        let e = c.read(&DirCap::Verify(r.verifier())).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn immutable_directories() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(5).await;
        let c = grid.dir_client(3, 5, 30..31);
        let empty = c.create_immutable(Vec::new()).await.unwrap();
        assert_eq!(Cap::Dir(empty.clone()).to_string(), "URI:DIR2-LIT:");
        let big = file(&c, &[1u8; 3000]).await;
        let mut children = vec![("small".to_string(), lit("hi"), Metadata::new())];
        for i in 0..5 {
            children.push((format!("big{i}"), big.clone(), Metadata::new()));
        }
        let dir = c.create_immutable(children).await.unwrap();
        assert!(matches!(dir, DirCap::Chk(_)), "{dir:?}");
        let d = c.read(&dir).await.unwrap();
        assert_eq!(d.len(), 6);
        assert_eq!(d.node("big3").unwrap(), Some(big));
        let e = c
            .add(&dir, "x", lit("x"), None, Replace::Always)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
        // Nothing mutable goes into an immutable directory.
        let m = c.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
        let e = c
            .create_immutable(vec![(
                "m".into(),
                Node::from_cap(Cap::Dir(m)),
                Metadata::new(),
            )])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
    });
}

/// A writer with the directory's write cap stores hostile entries; readers
/// skip them with reasons, and the next change keeps the good entries.
#[test]
fn hostile_contents_are_skipped_and_reported() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(5).await;
        let c = grid.dir_client(3, 5, 31..32);
        let root = c.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
        c.add(&root, "good", lit("fine"), None, Replace::Never)
            .await
            .unwrap();
        let DirCap::Write(w) = &root else { panic!() };
        let mut good = Vec::new();
        c.mutable
            .read(&w.read_cap(), 0..u64::MAX, &mut good)
            .await
            .unwrap();
        let net = tahoe_core::format::hash::netstring;
        let hostile = |name: &[u8], ro: &str| {
            let mut body = net(name);
            body.extend(net(ro.as_bytes()));
            body.extend(net(b""));
            body.extend(net(b"{}"));
            net(&body)
        };
        let mut data = good.clone();
        data.extend(hostile(b"good", "URI:LIT:mfrgg")); // a duplicate
        data.extend(hostile(b"../up", "URI:LIT:mfrgg"));
        data.extend(hostile(b"clear", &Cap::SskWrite(w.clone()).to_string()));
        data.extend(hostile(b"badcap", "URI:CHK:nope"));
        c.mutable
            .overwrite(w, Arc::new(BytesSource(Bytes::from(data))))
            .await
            .unwrap();
        let d = c.read(&root).await.unwrap();
        assert_eq!(names(&d), ["good"]);
        assert_eq!(d.node("good").unwrap(), Some(lit("fine")));
        let reasons: Vec<String> = d
            .skipped()
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("same name")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("in the clear")),
            "{reasons:?}"
        );
        c.add(&root, "new", lit("new"), None, Replace::Never)
            .await
            .unwrap();
        let d = c.read(&root).await.unwrap();
        assert_eq!(names(&d), ["good", "new"]);
        assert!(d.skipped().is_empty());
        // Garbage in place of the entries is an error, not an answer.
        c.mutable
            .overwrite(w, Arc::new(BytesSource(Bytes::from_static(b"9999:x"))))
            .await
            .unwrap();
        let e = c.read(&root).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let e = c
            .add(&root, "x", lit("x"), None, Replace::Always)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
    });
}

/// Ten clients add an entry each to one directory at the same moment, and
/// three make the same path: afterwards every client sees all ten entries
/// and the one directory.
#[test]
fn ten_clients_at_once_lose_no_update() {
    let rt = rt();
    rt.block_on(async {
        let grid = MemGrid::new(10).await;
        let first = grid.dir_client(3, 10, 40..41);
        let root = first.create(MutableFormat::Sdmf, Vec::new()).await.unwrap();
        let clients: Vec<DirClient> = (0..10)
            .map(|i| grid.dir_client(3, 10, 50 + 3 * i..53 + 3 * i))
            .collect();
        let mut tasks = Vec::new();
        for (i, c) in clients.iter().cloned().enumerate() {
            let root = root.clone();
            tasks.push(tokio::spawn(async move {
                c.add(
                    &root,
                    &format!("entry-{i}"),
                    lit(&format!("#{i}")),
                    None,
                    Replace::Never,
                )
                .await
                .unwrap();
                if i < 3 {
                    Some(
                        c.mkdir_p(
                            &root,
                            &split_path("shared/dir").unwrap(),
                            MutableFormat::Sdmf,
                        )
                        .await
                        .unwrap(),
                    )
                } else {
                    None
                }
            }));
        }
        let mut made = Vec::new();
        for t in tasks {
            made.extend(t.await.unwrap());
        }
        assert_eq!(made.len(), 3);
        assert!(
            made.iter().all(|d| *d == made[0]),
            "two clients made different directories"
        );
        let mut want: Vec<String> = (0..10).map(|i| format!("entry-{i}")).collect();
        want.push("shared".into());
        want.sort();
        for c in &clients {
            let d = c.read(&root).await.unwrap();
            assert_eq!(names(&d), want);
            for i in 0..10 {
                assert_eq!(
                    d.node(&format!("entry-{i}")).unwrap(),
                    Some(lit(&format!("#{i}")))
                );
            }
            assert_eq!(
                c.resolve_dir(&root, &split_path("shared/dir").unwrap())
                    .await
                    .unwrap(),
                made[0]
            );
        }
    });
}
