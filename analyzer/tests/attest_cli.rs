//! End-to-end tests of `talos attest` and of pinning migration peers by
//! attestation evidence (`talos migrate trust --evidence`), through the real
//! binary: the real DCAP quotes made on Intel hardware that `dcap-qvl`
//! ships (attest/tests/data), and Keystone reports from the test-only
//! builder (attest/tests/support), whose report data binds a host key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
#[path = "../../attest/tests/support/keystone_builder.rs"]
mod keystone_builder;
mod migrate_common;

use std::path::{Path, PathBuf};

use keystone_builder::{KeystoneKey, TestReport, hex};
use migrate_common::*;
use serde_json::Value;

fn data(name: &str) -> String {
    repo()
        .join("attest/tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

const INSIDE: &str = "2025-06-25T00:00:00Z";
const ENCLAVE: [u8; 64] = [0xe1; 64];

fn attest(args: &[&str]) -> (i32, Value) {
    let mut a = vec!["attest"];
    a.extend(args);
    a.extend(["--format", "json"]);
    parse(&common::talos(&a))
}

fn sgx(extra: &[&str]) -> (i32, Value) {
    let q = data("sgx_quote");
    let c = data("sgx_quote_collateral.json");
    let mut a = vec![q.as_str(), "--collateral", c.as_str()];
    a.extend(extra);
    attest(&a)
}

#[test]
fn sgx_sample_exit_codes_and_json() {
    // Default policy: the chain verifies, the TCB status is refused.
    let (code, v) = sgx(&["--at", INSIDE]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("tcb-not-accepted")),
        "{v:#}"
    );
    assert_eq!(v["schema"], "talos.attest/1");
    assert_eq!(v["verdict"], "refused");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("ConfigurationAndSWHardeningNeeded")
    );
    let e = &v["evidence"];
    assert_eq!(e["verified"], true);
    assert_eq!(e["tee"], "sgx");
    assert_eq!(e["tcb"]["status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(
        e["tcb"]["advisories"],
        serde_json::json!(["INTEL-SA-00289", "INTEL-SA-00615"])
    );
    assert_eq!(e["debug"], false);
    // Accepted once the status is accepted explicitly.
    let (code, v) = sgx(&[
        "--at",
        INSIDE,
        "--accept-tcb",
        "ConfigurationAndSWHardeningNeeded",
    ]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("accepted")),
        "{v:#}"
    );
    let mre = v["evidence"]["identity"]["mrenclave"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = std::fs::read(data("sgx_quote")).unwrap();
    assert_eq!(mre, hex(&q[112..144]));
    // Expected measurements.
    let (code, _) = sgx(&[
        "--at",
        INSIDE,
        "--accept-tcb",
        "ConfigurationAndSWHardeningNeeded",
        "--expect-mrenclave",
        &mre,
    ]);
    assert_eq!(code, 0);
    let wrong = format!("00{}", &mre[2..]);
    let (code, v) = sgx(&[
        "--at",
        INSIDE,
        "--accept-tcb",
        "ConfigurationAndSWHardeningNeeded",
        "--expect-mrenclave",
        &wrong,
    ]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("measurement-mismatch"))
    );
    // After the collateral's next update: cannot decide.
    let (code, v) = sgx(&["--at", "2025-08-01T00:00:00Z"]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (3, Some("collateral-not-valid")),
        "{v:#}"
    );
    assert_eq!(v["verdict"], "undecided");
    // No collateral: cannot decide.
    let (code, v) = attest(&[&data("sgx_quote"), "--at", INSIDE]);
    assert_eq!((code, v["reason"].as_str()), (3, Some("no-collateral")));
    // Text form.
    let out = common::talos(&[
        "attest",
        &data("sgx_quote"),
        "--collateral",
        &data("sgx_quote_collateral.json"),
        "--at",
        INSIDE,
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("attest: REFUSED (tcb-not-accepted)"),
        "{text}"
    );
    assert!(
        text.contains("advisories  INTEL-SA-00289, INTEL-SA-00615"),
        "{text}"
    );
}

#[test]
fn flipped_quote_bytes_and_garbage_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let mut q = std::fs::read(data("sgx_quote")).unwrap();
    q[120] ^= 1; // MRENCLAVE
    let f = tmp.path().join("q");
    std::fs::write(&f, &q).unwrap();
    let c = data("sgx_quote_collateral.json");
    let (code, v) = attest(&[f.to_str().unwrap(), "--collateral", &c, "--at", INSIDE]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("bad-signature")),
        "{v:#}"
    );
    // Unreadable and unrecognisable input: exit 2, nothing on stdout.
    for bad in [
        Path::new("/nonexistent"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    ] {
        let out = common::talos(&["attest", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let g = tmp.path().join("garbage");
    std::fs::write(&g, b"not evidence").unwrap();
    let out = common::talos(&["attest", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("not TEE evidence"),
        "{}",
        common::stderr(&out)
    );
    let out = common::talos(&[
        "attest",
        &data("sgx_quote"),
        "--collateral",
        g.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::talos(&["attest", &data("sgx_quote"), "--accept-tcb", "Fine"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tdx_samples_verify_as_tdx() {
    for (q, c, at) in [
        ("tdx_quote", "tdx_quote_collateral.json", INSIDE),
        (
            "tdx_quote_td15ex",
            "tdx_quote_td15ex_collateral.json",
            "2026-10-20T00:00:00Z",
        ),
    ] {
        let (code, v) = attest(&[&data(q), "--collateral", &data(c), "--at", at]);
        assert_eq!(code, 0, "{q}: {v:#}");
        assert_eq!(v["evidence"]["tee"], "tdx");
        assert_eq!(v["evidence"]["format"], "tdx-quote");
        assert!(v["evidence"]["identity"]["mrenclave"].is_null());
        assert_eq!(
            v["evidence"]["identity"]["mrtd"].as_str().unwrap().len(),
            96
        );
    }
}

/// A Keystone test device: the seed of its key and the file that pins it.
struct Device {
    seed: [u8; 32],
    root: PathBuf,
}

fn device(dir: &Path, name: &str, seed: u8) -> Device {
    let key = KeystoneKey::from_seed([seed; 32]);
    let root = dir.join(format!("{name}.root"));
    std::fs::write(&root, format!("{}\n", hex(&key.public()))).unwrap();
    Device {
        seed: [seed; 32],
        root,
    }
}

/// The report an enclave measuring `hash` on `dev` makes with `data`.
fn report(dir: &Path, name: &str, dev: &Device, hash: [u8; 64], data: &[u8]) -> PathBuf {
    let mut r = TestReport::new(hash, data);
    r.device_key = KeystoneKey::from_seed(dev.seed);
    let p = dir.join(name);
    std::fs::write(&p, r.build()).unwrap();
    p
}

/// The binding of a talos public key file, computed here from the
/// protocol's definition (not with talos).
fn binding(pubfile: &str) -> [u8; 64] {
    let text = std::fs::read_to_string(pubfile).unwrap();
    let hexkey = text.trim().strip_prefix("talos-public-key-v1 ").unwrap();
    let key: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hexkey[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&blake3::derive_key("talos 2026-11 tee binding v1", &key));
    out
}

#[test]
fn keystone_reports_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = device(tmp.path(), "dev", 0x44);
    let r = report(tmp.path(), "r", &dev, ENCLAVE, b"hello enclave");
    let root = dev.root.to_str().unwrap();
    let (code, v) = attest(&[r.to_str().unwrap(), "--keystone-root", root]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["evidence"]["tee"], "keystone");
    assert_eq!(v["evidence"]["identity"]["enclave_hash"], hex(&ENCLAVE));
    assert_eq!(v["evidence"]["report_data"], hex(b"hello enclave"));
    assert!(v["evidence"]["tcb"].is_null());
    let (code, _) = attest(&[
        r.to_str().unwrap(),
        "--keystone-root",
        root,
        "--expect-hash",
        &hex(&ENCLAVE),
    ]);
    assert_eq!(code, 0);
    // Flipped bytes: enclave hash, data, SM public key; another device.
    let good = std::fs::read(&r).unwrap();
    for (what, at, want) in [
        ("hash", 0, "bad-signature"),
        ("data", 72, "bad-signature"),
        ("sm key", 1224, "bad-signature"),
        ("device key", 1330, "untrusted-root"),
    ] {
        let mut b = good.clone();
        b[at] ^= 1;
        let f = tmp.path().join(what);
        std::fs::write(&f, &b).unwrap();
        let (code, v) = attest(&[f.to_str().unwrap(), "--keystone-root", root]);
        assert_eq!(
            (code, v["reason"].as_str()),
            (1, Some(want)),
            "{what}: {v:#}"
        );
    }
    let other = device(tmp.path(), "other", 0x99);
    let r2 = report(tmp.path(), "r2", &other, ENCLAVE, b"x");
    let (code, v) = attest(&[r2.to_str().unwrap(), "--keystone-root", root]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("untrusted-root")));
    // No pinned root: cannot decide.
    let (code, v) = attest(&[r.to_str().unwrap()]);
    assert_eq!((code, v["reason"].as_str()), (3, Some("no-device-root")));
    // --bind checks the binding of a host key.
    let w = World::new(&["A"]);
    let pubfile = format!("{}/host.pub", w.dir("A"));
    let bound = report(tmp.path(), "bound", &dev, ENCLAVE, &binding(&pubfile));
    let (code, _) = attest(&[
        bound.to_str().unwrap(),
        "--keystone-root",
        root,
        "--bind",
        &pubfile,
    ]);
    assert_eq!(code, 0);
    let (code, v) = attest(&[
        r.to_str().unwrap(),
        "--keystone-root",
        root,
        "--bind",
        &pubfile,
    ]);
    assert_eq!((code, v["reason"].as_str()), (1, Some("binding-mismatch")));
}

/// Two hosts that pin the owner only; a reference of statekeeper that
/// allows the Keystone enclave `ENCLAVE` (file `ref`); each host's device.
struct Attested {
    w: World,
    devs: Vec<(String, Device)>,
}

fn attested_world(c: Option<&Corpus>, hosts: &[&str]) -> Attested {
    let w = World::new(&[]);
    for h in hosts {
        w.host(h);
        w.run_ok(h, &["trust", "--role", "owner", &w.s("owner.pub")]);
    }
    let bin = match c {
        Some(c) => c.sk_bin(),
        None => PathBuf::from(talos_bin()),
    };
    let out = w.raw_global(&[
        "reference",
        bin.to_str().unwrap(),
        "--app",
        APP,
        "--key",
        &w.s("owner"),
        "--tee-measurement",
        &format!("keystone:{}", hex(&ENCLAVE)),
        "-o",
        &w.s("ref"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let devs = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| ((*h).to_owned(), device(w.tmp.path(), h, 0x50 + i as u8)))
        .collect();
    Attested { w, devs }
}

impl Attested {
    fn dev(&self, host: &str) -> &Device {
        &self.devs.iter().find(|(h, _)| h == host).unwrap().1
    }
    fn pubfile(&self, host: &str) -> String {
        format!("{}/host.pub", self.w.dir(host))
    }
    /// The report `host`'s gate enclave makes, binding its host key.
    fn evidence_of(&self, host: &str, hash: [u8; 64]) -> String {
        let b = binding(&self.pubfile(host));
        let p = report(
            self.w.tmp.path(),
            &format!("{host}-{}.report", hex(&hash[..4])),
            self.dev(host),
            hash,
            &b,
        );
        p.to_str().unwrap().to_owned()
    }
    /// `on` pins `peer` with `peer`'s evidence (`extra` args appended).
    fn trust(
        &self,
        on: &str,
        key_of: &str,
        evidence: &str,
        device_of: &str,
        extra: &[&str],
    ) -> (i32, Value) {
        let pubfile = self.pubfile(key_of);
        let mut a = vec![
            "trust",
            "--role",
            "peer",
            pubfile.as_str(),
            "--evidence",
            evidence,
            "--keystone-root",
            self.dev(device_of).root.to_str().unwrap(),
        ];
        a.extend(extra);
        self.w.run(on, &a)
    }
}

#[test]
fn trust_evidence_pins_a_bound_key_and_refuses_everything_else() {
    let a = attested_world(None, &["S", "T", "X"]);
    let w = &a.w;
    let r = w.s("ref");
    // `show host.pub` and `init` print the binding the enclave must use.
    let (code, v) = w.run_global_json(&["migrate", "show", &a.pubfile("S")]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["report-data"], hex(&binding(&a.pubfile("S"))));
    let (code, v) = w.run("Y", &["init"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["report-data"], hex(&binding(&a.pubfile("Y"))));
    let s_report = a.evidence_of("S", ENCLAVE);

    let before = w.ledger("T");
    // The report binds S's key: it cannot pin X's key.
    let (code, v) = a.trust("T", "X", &s_report, "S", &["--reference", &r]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("binding-mismatch")),
        "{v:#}"
    );
    // A measurement the reference does not allow.
    let other = a.evidence_of("S", [0x77; 64]);
    let (code, v) = a.trust("T", "S", &other, "S", &["--reference", &r]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("measurement-mismatch")),
        "{v:#}"
    );
    // Another device's root.
    let (code, v) = a.trust("T", "S", &s_report, "X", &["--reference", &r]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("untrusted-root")),
        "{v:#}"
    );
    // A reference by an owner T has not pinned.
    let o = w.raw_global(&["keygen", "-o", &w.s("stranger")]);
    assert!(o.status.success());
    let stranger_ref = w.s("stranger.ref");
    let o = w.raw_global(&[
        "reference",
        talos_bin(),
        "--app",
        APP,
        "--key",
        &w.s("stranger"),
        "--tee-measurement",
        &format!("keystone:{}", hex(&ENCLAVE)),
        "-o",
        &stranger_ref,
    ]);
    assert!(o.status.success(), "{o:?}");
    let (code, v) = a.trust("T", "S", &s_report, "S", &["--reference", &stranger_ref]);
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("untrusted-key")),
        "{v:#}"
    );
    // No device root pinned: cannot decide (exit 3).
    let (code, v) = w.run(
        "T",
        &[
            "trust",
            "--role",
            "peer",
            &a.pubfile("S"),
            "--evidence",
            &s_report,
            "--reference",
            &r,
        ],
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (3, Some("undecided")),
        "{v:#}"
    );
    // Real SGX evidence made on hardware: its report data is not a binding.
    let mre = {
        let q = std::fs::read(data("sgx_quote")).unwrap();
        hex(&q[112..144])
    };
    let (code, v) = w.run(
        "T",
        &[
            "trust",
            "--role",
            "peer",
            &a.pubfile("S"),
            "--evidence",
            &data("sgx_quote"),
            "--collateral",
            &data("sgx_quote_collateral.json"),
            "--at",
            INSIDE,
            "--accept-tcb",
            "ConfigurationAndSWHardeningNeeded",
            "--expect-mrenclave",
            &mre,
        ],
    );
    assert_eq!(
        (code, v["reason"].as_str()),
        (1, Some("binding-mismatch")),
        "{v:#}"
    );
    // Usage errors: evidence for an owner, no measurement to check, policy
    // flags without evidence.
    let o = w.raw(
        "T",
        &[
            "trust",
            "--role",
            "owner",
            &a.pubfile("S"),
            "--evidence",
            &s_report,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let (code, _) = a.trust("T", "S", &s_report, "S", &[]);
    assert_eq!(code, 2);
    let o = w.raw(
        "T",
        &["trust", "--role", "peer", &a.pubfile("S"), "--allow-debug"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(w.ledger("T"), before, "refusals write nothing");

    // The bound key with an allowed measurement is pinned as attested.
    let (code, v) = a.trust("T", "S", &s_report, "S", &["--reference", &r]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["pinned"], "attested");
    assert_eq!(v["measurement"], format!("keystone:{}", hex(&ENCLAVE)));
    // Again: nothing new.
    let (code, v) = a.trust("T", "S", &s_report, "S", &["--reference", &r]);
    assert_eq!((code, v["new"].as_bool()), (0, Some(false)), "{v:#}");
    // X pinned by hand.
    w.run_ok("T", &["trust", "--role", "peer", &a.pubfile("X")]);
    let st = w.status("T");
    let by_key = |k: &str| {
        st["trusted"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"].as_str().unwrap() == k)
            .unwrap()
            .clone()
    };
    let key_of = |h: &str| {
        std::fs::read_to_string(a.pubfile(h))
            .unwrap()
            .trim()
            .strip_prefix("talos-public-key-v1 ")
            .unwrap()
            .to_owned()
    };
    let s = by_key(&key_of("S"));
    assert_eq!(s["pinned"], "attested", "{st:#}");
    assert_eq!(s["attestation"]["tee"], "keystone");
    assert_eq!(s["attestation"]["tcb"], "not-applicable");
    assert_eq!(
        s["attestation"]["evidence"],
        hex(blake3::hash(&std::fs::read(&s_report).unwrap()).as_bytes())
    );
    assert_eq!(by_key(&key_of("X"))["pinned"], "by-hand");
    let text = String::from_utf8(w.raw("T", &["status"]).stdout).unwrap();
    assert!(text.contains("attested: keystone keystone:e1e1"), "{text}");
    assert!(text.contains("pinned by hand"), "{text}");
}

#[test]
fn the_migration_runs_with_both_peers_pinned_by_evidence() {
    let Some(c) = common::dumps::corpus() else {
        return;
    };
    let a = attested_world(Some(c), &["S", "T"]);
    let w = &a.w;
    let r = w.s("ref");
    // Each host's gate enclave proves its key; each host pins the other
    // only on that proof.
    let s_ev = a.evidence_of("S", ENCLAVE);
    let t_ev = a.evidence_of("T", ENCLAVE);
    let (code, v) = a.trust("T", "S", &s_ev, "S", &["--reference", &r]);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = a.trust("S", "T", &t_ev, "T", &["--reference", &r]);
    assert_eq!(code, 0, "{v:#}");
    for h in ["S", "T"] {
        let st = w.status(h);
        let peers: Vec<&Value> = st["trusted"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["role"] == "peer")
            .collect();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0]["pinned"], "attested", "{st:#}");
    }
    w.run_ok("S", &["register", "--app", APP]);
    let (code, v) = w.exchange_to_launch(c, "S", "T");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(w.app_status("T"), "launched");
    assert_eq!(w.app_status("S"), "migrated-away");
    // And back, with the same attested pins.
    w.seal_and_verify(c, "T", "S", "-back");
    let (code, v) = w.commit("T", "receipt-T-S-back", "release-T-S-back");
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = w.launch("S", "release-T-S-back");
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn reference_with_tee_measurements_and_show() {
    let w = World::new(&[]);
    let out = w.raw_global(&[
        "reference",
        talos_bin(),
        "--app",
        APP,
        "--key",
        &w.s("owner"),
        "--tee-measurement",
        &format!("sgx:{}", "ab".repeat(32)),
        "--tee-measurement",
        &format!("keystone-sm:{}", "cd".repeat(64)),
        "-o",
        &w.s("ref"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(w.p("ref")).unwrap();
    assert_eq!(
        bytes[8], 2,
        "a reference with TEE measurements is version 2"
    );
    let (code, v) = w.run_global_json(&["migrate", "show", &w.s("ref")]);
    assert_eq!(code, 0);
    let tees: Vec<String> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "tee")
        .map(|f| f["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tees,
        [
            format!("sgx:{}", "ab".repeat(32)),
            format!("keystone-sm:{}", "cd".repeat(64))
        ]
    );
    for bad in ["sgx:abcd", "tpm:00", "keystone"] {
        let out = w.raw_global(&[
            "reference",
            talos_bin(),
            "--app",
            APP,
            "--key",
            &w.s("owner"),
            "--tee-measurement",
            bad,
            "-o",
            &w.s("bad"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    // Without TEE measurements, a reference is the version 1 format.
    let out = w.raw_global(&[
        "reference",
        talos_bin(),
        "--app",
        APP,
        "--key",
        &w.s("owner"),
        "-o",
        &w.s("plain"),
    ]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(w.p("plain")).unwrap()[8], 1);
}

#[test]
fn reference_takes_mrenclave_from_a_verified_sigstruct() {
    let dir = repo().join("corpus/out/enclave");
    let sig = dir.join("gramine-clean.sig");
    if !sig.is_file() {
        let _ = std::fs::create_dir_all(repo().join("corpus/out"));
        let ok = std::process::Command::new("flock")
            .arg(repo().join("corpus/out/.enclave-build.lock"))
            .arg("bash")
            .arg(repo().join("corpus/enclave/build.sh"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !sig.is_file() {
            common::skip_or_fail("corpus/enclave/build.sh could not build gramine-clean.sig");
            return;
        }
    }
    let w = World::new(&[]);
    let bytes = std::fs::read(&sig).unwrap();
    // SIGSTRUCT (Intel SDM Vol. 3D §38.13): ENCLAVEHASH at offset 960.
    let mrenclave = hex(&bytes[960..992]);
    let make = |sigfile: &Path, out: &str| {
        w.raw_global(&[
            "reference",
            talos_bin(),
            "--app",
            APP,
            "--key",
            &w.s("owner"),
            "--tee-sigstruct",
            sigfile.to_str().unwrap(),
            "-o",
            &w.s(out),
            "--format",
            "json",
        ])
    };
    let out = make(&sig, "ref");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (_, v) = parse(&out);
    assert_eq!(
        v["tee"],
        serde_json::json!([format!("sgx:{mrenclave}")]),
        "{v:#}"
    );
    // A SIGSTRUCT whose signature does not verify is refused.
    let mut bad = bytes.clone();
    bad[960] ^= 1;
    let badfile = w.p("bad.sig");
    std::fs::write(&badfile, &bad).unwrap();
    let out = make(&badfile, "bad");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        common::stderr(&out).contains("SIGSTRUCT signature"),
        "{}",
        common::stderr(&out)
    );
}
