//! Authenticity checks shared by the sources: HMAC signatures and secret tokens, both compared in
//! constant time, and the [`Verified`] typestate that only this module can build.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::shops::{SecretUsed, DEFAULT_SHOP};

type HmacSha512 = Hmac<Sha512>;

/// A request body whose authenticity a source has checked. Only the verifiers in this module can
/// build one, so normalization (and the journal) cannot be reached with an unchecked body.
#[derive(Debug, Clone)]
pub struct Verified {
    body: Bytes,
    /// The event name from a header, when the platform sends one.
    kind_hint: Option<String>,
    /// The shop whose secret verified it.
    shop: String,
    /// Which of the shop's secrets matched.
    secret: SecretUsed,
}

impl Verified {
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    pub fn kind_hint(&self) -> Option<&str> {
        self.kind_hint.as_deref()
    }
    pub fn shop(&self) -> &str {
        &self.shop
    }
    pub fn secret(&self) -> SecretUsed {
        self.secret
    }
}

/// Lowercase hex HMAC-SHA512 of `body` keyed with `secret`: what Sellix sends.
pub fn sign_sha512_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha512::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `body` against each candidate hex signature in constant time; true if any matches.
/// Candidates that are not hex never match (and are not echoed anywhere). The MAC of the body is
/// computed once, however many candidates there are, and candidates are decoded on the stack.
pub fn hmac_sha512_matches(secret: &[u8], body: &[u8], candidates: &[&str]) -> bool {
    if candidates.is_empty() {
        return false;
    }
    let mut mac = HmacSha512::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    candidates.iter().any(|sig| {
        let mut given = [0u8; 64];
        // A candidate of another length or with a non-hex character does not decode: no match.
        hex::decode_to_slice(sig.trim(), &mut given).is_ok()
            && bool::from(given.ct_eq(expected.as_slice()))
    })
}

/// Compares two secrets in constant time. Hashing first keeps the length of the expected token
/// from leaking through timing.
pub fn token_matches(expected: &str, given: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.ct_eq(&b).into()
}

/// A body read from a local file the user named (`storeflow simulate`, rule tests): trusted
/// because it never came over the network. The intake server never calls this.
pub fn local_file(body: Bytes, kind_hint: Option<String>) -> Verified {
    Verified {
        body,
        kind_hint,
        shop: DEFAULT_SHOP.into(),
        secret: SecretUsed::None,
    }
}

/// Builds a [`Verified`] once a source's checks for `shop` have passed with `secret`.
pub(super) fn verified(
    body: Bytes,
    kind_hint: Option<String>,
    shop: &str,
    secret: SecretUsed,
) -> Verified {
    Verified {
        body,
        kind_hint,
        shop: shop.into(),
        secret,
    }
}

/// Hex SHA-256 of the parts, separated so `("ab","c")` and `("a","bc")` differ.
pub fn digest_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &[u8] = br#"{"event":"order:paid","data":{"uniqid":"7a31c2-9f0e4b6d21-58c0d3","status":"COMPLETED"}}"#;
    const MINIMAL_SIG: &str = "5a576f7538e089eb97d167e358fa9de81a6a7cb31282822edde5084348bd3cb3c1b014f138a540031cf0d65a1bd41caa17517f0aab0d6b6f842c5777ff28f059";

    #[test]
    fn signs_the_documented_test_vector() {
        assert_eq!(sign_sha512_hex(b"whsec_test", MINIMAL), MINIMAL_SIG);
    }

    #[test]
    fn accepts_any_matching_candidate_and_rejects_others() {
        assert!(hmac_sha512_matches(
            b"whsec_test",
            MINIMAL,
            &["nothex", MINIMAL_SIG]
        ));
        assert!(hmac_sha512_matches(
            b"whsec_test",
            MINIMAL,
            &[&MINIMAL_SIG.to_uppercase()]
        ));
        assert!(!hmac_sha512_matches(b"other", MINIMAL, &[MINIMAL_SIG]));
        assert!(!hmac_sha512_matches(b"whsec_test", b"{}", &[MINIMAL_SIG]));
        assert!(!hmac_sha512_matches(b"whsec_test", MINIMAL, &[]));
    }

    #[test]
    fn signatures_of_another_length_never_match() {
        let short = &MINIMAL_SIG[..MINIMAL_SIG.len() - 2];
        let long = format!("{MINIMAL_SIG}00");
        assert!(!hmac_sha512_matches(b"whsec_test", MINIMAL, &[short]));
        assert!(!hmac_sha512_matches(b"whsec_test", MINIMAL, &[&long]));
        assert!(!hmac_sha512_matches(b"whsec_test", MINIMAL, &[""]));
        assert!(hmac_sha512_matches(
            b"whsec_test",
            MINIMAL,
            &[short, &format!(" {MINIMAL_SIG} ")]
        ));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abcd"));
        assert!(!token_matches("abc", ""));
    }
}
