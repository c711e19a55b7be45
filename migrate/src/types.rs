//! Small value types: digests, nonces, app ids and labelled measurements.
//!
//! This crate never computes a measurement of code or state itself: the
//! analyzer computes them with `talos-cfg` / `talos-introspect` and hands
//! them over as opaque 32-byte [`Digest`]s labelled with a [`Scheme`].

use std::fmt;

use crate::codec;
use crate::error::{Error, Result};

/// An opaque 32-byte digest (blake3 output, a Merkle root, an id...).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        codec::hex(&self.0)
    }

    /// Parse 64 lowercase hex characters.
    pub fn from_hex(s: &str) -> Option<Digest> {
        codec::unhex32(s).map(Digest)
    }

    /// The first 8 bytes in hex, for people.
    pub fn short(&self) -> String {
        codec::hex(self.0.get(..8).unwrap_or_default())
    }

    /// blake3 in derive-key mode with the given context string.
    pub(crate) fn derive(context: &str, data: &[u8]) -> Digest {
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(data);
        Digest(*h.finalize().as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// A 32-byte random challenge nonce.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nonce(pub [u8; 32]);

impl Nonce {
    /// A fresh nonce from the operating system's random number generator.
    ///
    /// # Errors
    /// [`Error::Random`] when the OS generator fails.
    pub fn random() -> Result<Nonce> {
        let mut n = [0u8; 32];
        getrandom::fill(&mut n).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Nonce(n))
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        codec::hex(&self.0)
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

macro_rules! text_type {
    ($(#[$m:meta])* $name:ident, $what:literal, $max:expr, $ok:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validate and wrap `s`.
            ///
            /// # Errors
            /// [`Error::BadArgument`] when `s` is empty, too long or has a
            /// character outside the allowed set.
            pub fn new(s: &str) -> Result<$name> {
                Self::check(s).map_err(Error::BadArgument)
            }

            pub(crate) fn decode(cur: &mut &[u8], what: &'static str) -> Result<$name> {
                let s = codec::get_str8(cur, what)?;
                Self::check(s).map_err(|d| Error::malformed(what, d))
            }

            fn check(s: &str) -> std::result::Result<$name, String> {
                let ok: fn(&[u8]) -> bool = $ok;
                if s.is_empty() || s.len() > $max || !ok(s.as_bytes()) {
                    return Err(format!(
                        "{} {:?}: must be 1 to {} bytes of the allowed characters (see docs/migrate-protocol.md)",
                        $what, s.escape_debug().to_string(), $max
                    ));
                }
                Ok($name(s.to_owned()))
            }

            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                $name::new(s)
            }
        }
    };
}

fn app_id_ok(b: &[u8]) -> bool {
    b.first().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn version_ok(b: &[u8]) -> bool {
    b.iter().all(|c| (0x21..=0x7e).contains(c))
}

fn scheme_ok(b: &[u8]) -> bool {
    b.first().is_some_and(|c| c.is_ascii_lowercase())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'/' | b'_' | b'-')
        })
}

text_type!(
    /// An application id: 1 to 64 bytes of `[A-Za-z0-9._-]`, starting with a
    /// letter or digit.
    AppId, "app id", 64, app_id_ok
);

text_type!(
    /// An application version: 1 to 64 printable ASCII characters, no spaces.
    Version, "version", 64, version_ok
);

text_type!(
    /// The label of a measurement scheme, e.g. `blake3`, `talos.code/1`,
    /// `talos.cfg/1`, `talos.state/1`: 1 to 32 bytes of `[a-z0-9./_-]`,
    /// starting with a letter.
    Scheme, "scheme", 32, scheme_ok
);

/// A digest together with the scheme that produced it. Two measurements
/// match only if both the scheme and the digest are equal, so a change of
/// algorithm can never make different things compare equal.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Measurement {
    /// How the digest was computed.
    pub scheme: Scheme,
    /// The digest.
    pub digest: Digest,
}

impl Measurement {
    /// A measurement from a scheme label and a digest.
    ///
    /// # Errors
    /// [`Error::BadArgument`] when the scheme label is not valid.
    pub fn new(scheme: &str, digest: Digest) -> Result<Measurement> {
        Ok(Measurement {
            scheme: Scheme::new(scheme)?,
            digest,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        codec::put_str8(out, self.scheme.as_str());
        codec::put_32(out, &self.digest.0);
    }

    pub(crate) fn decode(cur: &mut &[u8], what: &'static str) -> Result<Measurement> {
        let scheme = Scheme::decode(cur, what)?;
        let digest = Digest(codec::get_32(cur, what)?);
        Ok(Measurement { scheme, digest })
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_validated() {
        for ok in ["a", "statekeeper", "acme.billing-v2_1", &"x".repeat(64)] {
            assert!(AppId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
            "a\n",
        ] {
            assert_eq!(
                AppId::new(bad).unwrap_err().code(),
                "bad-argument",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn schemes_and_versions_are_validated() {
        assert!(Scheme::new("talos.cfg/1").is_ok());
        assert!(Scheme::new("Talos").is_err());
        assert!(Scheme::new("1x").is_err());
        assert!(Version::new("1.2.3+build.7").is_ok());
        assert!(Version::new("1 2").is_err());
    }

    #[test]
    fn measurement_round_trip_and_decode_validates() {
        let m = Measurement::new("talos.state/1", Digest([7; 32])).unwrap();
        let mut out = Vec::new();
        m.encode(&mut out);
        let mut cur = out.as_slice();
        assert_eq!(Measurement::decode(&mut cur, "m").unwrap(), m);
        assert!(cur.is_empty());
        out[1] = b'T';
        assert_eq!(
            Measurement::decode(&mut out.as_slice(), "m")
                .unwrap_err()
                .code(),
            "malformed"
        );
        assert_eq!(m.to_string(), format!("talos.state/1:{}", "07".repeat(32)));
    }

    #[test]
    fn derive_is_domain_separated() {
        assert_ne!(
            Digest::derive("talos 2026-11 a v1", b"x"),
            Digest::derive("talos 2026-11 b v1", b"x")
        );
        assert_ne!(Nonce::random().unwrap(), Nonce::random().unwrap());
    }
}
