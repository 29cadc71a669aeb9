//! The production upload sink (`HappySink`) on its own: placement,
//! happiness by location, per-server secrets, and servers that lie or fail.

use std::sync::Arc;

use bytes::Bytes;
use tahoe_core::ErrorKind;
use tahoe_core::client::immutable::placement::HappySink;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::BytesSource;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::vectors::chk;
use testkit::{Fault, MemGrid, rt};

fn source(data: &[u8]) -> Arc<BytesSource> {
    Arc::new(BytesSource(Bytes::copy_from_slice(data)))
}

#[test]
fn every_server_gets_secrets_of_its_own_and_leases_stay_renewable() {
    rt().block_on(async {
        let grid = MemGrid::new(5).await;
        let secret = ClientSecret::from_bytes([3; 32]);
        let sink = HappySink::new(grid.refs(), 2, 5, 5, secret.clone());
        let data = pseudo_random_bytes(1, 10_000);
        let cap = grid
            .uploader(2, 5, 4096)
            .upload(source(&data), &sink)
            .await
            .unwrap();
        let mut seen: Vec<_> = grid
            .servers
            .iter()
            .flat_map(|s| s.upload_secrets.lock().unwrap().clone())
            .collect();
        assert_eq!(seen.len(), 5);
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            5,
            "two servers were given the same upload secret"
        );
        // The client can make its lease secrets again and renew, which
        // keeps one lease rather than adding another.
        let si = chk(&cap).storage_index();
        let file = secret.for_file(&si);
        for (i, s) in grid.refs().iter().enumerate() {
            let mine = file.for_server(&s.id);
            s.service
                .add_lease(si, mine.renew, mine.cancel)
                .await
                .unwrap();
            let leases = grid.storage[i].backend().leases(&si).await.unwrap();
            assert_eq!(leases.len(), 1, "server {i}: renewal added a lease");
            assert_eq!(leases[0].renew_secret, mine.renew);
        }
    });
}

#[test]
fn ids_at_one_location_count_once() {
    rt().block_on(async {
        let grid = MemGrid::new(3).await;
        let mut refs = grid.refs();
        // Two more ids announced at server 0's address.
        for i in 0..2 {
            let mut sybil = refs[0].clone();
            sybil.id = format!("sybil-{i}");
            refs.push(sybil);
        }
        let sink = HappySink::new(refs, 2, 4, 5, ClientSecret::random().unwrap());
        let e = grid
            .uploader(2, 5, 4096)
            .upload(source(&pseudo_random_bytes(2, 5000)), &sink)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unhappy, "{e}");
        assert!(e.to_string().contains("only 3 server(s)"), "{e}");
    });
}

#[test]
fn claimed_shares_count_only_when_they_check_out() {
    rt().block_on(async {
        let grid = MemGrid::new(5).await;
        let data = pseudo_random_bytes(3, 20_000);
        // A liar claims every share it is offered.
        grid.set_fault(4, Fault::ClaimAll);
        let e = grid
            .uploader(2, 5, 4096)
            .upload(source(&data), &grid.sink(2, 5))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unhappy, "{e}");
        assert!(e.to_string().contains("claimed share"), "{e}");
        // Honest claims (a second upload of the same file) do count.
        grid.clear_faults();
        let cap = grid.upload(&data, 2, 5, 4096).await;
        let again = grid.upload(&data, 2, 5, 4096).await;
        assert_eq!(cap, again);
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}

#[test]
fn a_server_failing_mid_upload_is_dropped_while_happiness_holds() {
    rt().block_on(async {
        let grid = MemGrid::new(5).await;
        let data = pseudo_random_bytes(4, 20_000);
        grid.set_fault(2, Fault::FailWrites);
        let sink = HappySink::new(grid.refs(), 2, 4, 5, ClientSecret::random().unwrap());
        let cap = grid
            .uploader(2, 5, 4096)
            .upload(source(&data), &sink)
            .await
            .unwrap();
        grid.clear_faults();
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
        assert_eq!(
            grid.storage[2].pending_uploads(),
            0,
            "the failed bucket was aborted"
        );
        // With every server needed, the same failure fails the upload.
        grid.set_fault(2, Fault::FailWrites);
        let sink = HappySink::new(grid.refs(), 2, 5, 5, ClientSecret::random().unwrap());
        let mut up = grid.uploader(2, 5, 4096);
        up.key_mode = tahoe_core::client::immutable::KeyMode::Random;
        let e = up.upload(source(&data), &sink).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unhappy, "{e}");
    });
}
