//! Request signing: HMAC-SHA256 over the exact body bytes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Header carrying `sha256=<hex HMAC-SHA256 of the raw body>`.
pub const SIGNATURE_HEADER: &str = "X-Infermon-Signature";
/// Header carrying the Unix time (seconds) the request was sent.
pub const TIMESTAMP_HEADER: &str = "X-Infermon-Timestamp";
/// Header carrying a stable id of the alert (the same on every retry).
pub const DELIVERY_HEADER: &str = "X-Infermon-Delivery";

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the value of [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    format!("sha256={}", hex(&mac))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// A stable 32-hex-digit id for a dedup key (always a valid header value).
pub(crate) fn delivery_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        assert_eq!(delivery_id("a:opened:x"), delivery_id("a:opened:x"));
        assert_ne!(delivery_id("a:opened:x"), delivery_id("a:resolved:x"));
        assert_eq!(delivery_id("x").len(), 32);
    }
}
