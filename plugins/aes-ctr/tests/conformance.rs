//! aes-ctr against the cipher contract.

use tahoe_cipher_aes_ctr::AesCtr;
use tahoe_core::testing::cipher;

#[test]
fn conformance_aes128() {
    cipher::run(&AesCtr::aes128());
}

#[test]
fn conformance_aes256() {
    cipher::run(&AesCtr::aes256());
}
