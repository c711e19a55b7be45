//! Unit tests of the message encodings (kept apart so message.rs stays
//! readable).

use super::*;

pub(crate) fn m(scheme: &str, b: u8) -> Measurement {
    Measurement::new(scheme, Digest([b; 32])).unwrap()
}

pub(crate) fn sample_reference(owner: &SecretKey) -> Reference {
    Reference::sign(
        ReferenceBody {
            app: AppId::new("statekeeper").unwrap(),
            version: Version::new("1.0.0").unwrap(),
            binary: m("blake3", 1),
            code: m("talos.code/1", 2),
            cfg: m("talos.cfg/1", 3),
            tee: BTreeSet::new(),
        },
        owner,
    )
}

#[test]
fn round_trip_and_header_layout() {
    let owner = SecretKey::from_seed(&[9; 32]);
    let r = sample_reference(&owner);
    let bytes = r.encode();
    assert_eq!(&bytes[..8], b"TALOSMSG");
    assert_eq!(bytes[8], 1);
    assert_eq!(bytes[9], 1);
    assert_eq!(
        &bytes[bytes.len() - 96..bytes.len() - 64],
        &owner.public().to_bytes()
    );
    let back = Reference::decode(&bytes).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.encode(), bytes);
    back.verify_signature().unwrap();
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        Message::Reference(r.clone())
    );
    // Deterministic signing: same body, same bytes.
    assert_eq!(sample_reference(&owner).encode(), bytes);
}

#[test]
fn kind_confusion_is_refused() {
    let owner = SecretKey::from_seed(&[9; 32]);
    let bytes = sample_reference(&owner).encode();
    let e = Bundle::decode(&bytes).unwrap_err();
    assert_eq!(e.code(), "malformed");
    assert!(
        e.to_string().contains("expected a bundle, got a reference"),
        "{e}"
    );
    // Relabelling the kind byte breaks the body parse or the signature.
    let mut relabelled = bytes.clone();
    relabelled[9] = MessageKind::Challenge.tag();
    assert!(
        Message::decode(&relabelled).is_err_and(|e| e.code() == "malformed")
            || Message::decode(&relabelled)
                .unwrap()
                .verify_signature()
                .is_err()
    );
}

#[test]
fn size_limit_is_checked_before_parsing() {
    let mut big = MESSAGE_MAGIC.to_vec();
    big.resize(MAX_MESSAGE_LEN + 1, 0);
    let e = Message::decode(&big).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    assert!(Message::decode(b"").is_err());
    assert!(
        Message::decode(b"TALOSMSG\x02\x03")
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
    assert!(
        Message::decode(b"TALOSMSG\x03\x01")
            .unwrap_err()
            .to_string()
            .contains("version 3")
    );
    assert!(
        Message::decode(b"TALOSMSG\x01\x09")
            .unwrap_err()
            .to_string()
            .contains("unknown kind")
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let owner = SecretKey::from_seed(&[9; 32]);
    let mut bytes = sample_reference(&owner).encode();
    bytes.push(0);
    assert!(
        Reference::decode(&bytes)
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    bytes.truncate(bytes.len() - 2);
    assert!(Reference::decode(&bytes).is_err());
}

#[test]
fn signature_domain_separation_between_kinds() {
    // A signature made for one kind never verifies as another, even over
    // the same payload bytes after the header.
    let k = SecretKey::from_seed(&[4; 32]);
    let payload = b"same bytes";
    let s = k.sign(&signing_input(MessageKind::Receipt, payload));
    assert!(
        k.public()
            .verify(&signing_input(MessageKind::Receipt, payload), &s)
    );
    assert!(
        !k.public()
            .verify(&signing_input(MessageKind::Release, payload), &s)
    );
}

#[test]
fn ids_cover_payload_not_signature() {
    let owner = SecretKey::from_seed(&[9; 32]);
    let r = sample_reference(&owner);
    assert_eq!(
        r.id(),
        Digest::derive("talos 2026-11 reference id v1", &r.payload())
    );
    let other = SecretKey::from_seed(&[8; 32]);
    assert_ne!(
        sample_reference(&other).id(),
        r.id(),
        "signer key is in the payload"
    );
}

#[test]
fn describe_reports_invalid_signature() {
    let owner = SecretKey::from_seed(&[9; 32]);
    let mut bytes = sample_reference(&owner).encode();
    let d = Message::decode(&bytes).unwrap().describe();
    assert_eq!(d.kind, "reference");
    assert!(d.to_string().contains("statekeeper"));
    assert!(
        d.fields
            .iter()
            .any(|f| f.name == "signature" && f.value.starts_with("valid"))
    );
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let d = Message::decode(&bytes).unwrap().describe();
    assert!(
        d.fields
            .iter()
            .any(|f| f.name == "signature" && f.value == "INVALID")
    );
}
