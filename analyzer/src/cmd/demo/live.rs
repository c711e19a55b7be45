//! The CRIU part of `talos demo`: a running counter (the embedded
//! `corpus/samples/counter.c`) really moves from host S to host T. S
//! freezes it with `criu dump --leave-stopped` and seals the image
//! directory; T verifies the images it received, refusing a tampered page
//! first; S commits and its frozen process goes; T restores the images
//! stopped, checks the restored process and lets it run, and it counts on
//! from where it was frozen. A replay of the image directory is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{common, must, register_and_challenge, say, step, write_exec};
use crate::Outcome;
use crate::cmd::migrate::{self, Cmd};
use crate::criu::{self, Criu};

/// The counting sample (`corpus/samples/counter.c`, built by
/// `corpus/samples/build.sh`).
pub const COUNTER: &[u8] = include_bytes!("../../../../corpus/samples/counter-x86_64");

const APP: &str = "counter";

/// CRIU, if it can run here (found, 4.1 or later, `criu check` passes, as
/// root); otherwise why not.
pub fn available() -> std::result::Result<Criu, String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("CRIU needs root, and talos does not run as root".into());
    }
    Criu::find(None).map_err(|e| format!("{e:#}"))
}

/// The counter, running as a session leader with no terminal (so `criu
/// dump` needs no `--shell-job`); killed on drop, whoever holds its pid
/// (the source, or the process restored under the same pid).
struct Counter {
    pid: u32,
    bin: PathBuf,
    out: PathBuf,
}

impl Counter {
    fn start(bin: &Path, out: &Path) -> Result<Counter> {
        // Its stdin is an empty file of the demo's, not /dev/null: CRIU
        // restores a regular file only at the size it had when dumped.
        let empty = out.with_extension("in");
        std::fs::write(&empty, b"").with_context(|| format!("{}", empty.display()))?;
        let o = Command::new("sh")
            .arg("-c")
            .arg(r#"setsid "$0" 50 <"$2" >"$1" 2>&1 & echo $!"#)
            .arg(bin)
            .arg(out)
            .arg(&empty)
            .output()
            .context("starting the counter")?;
        let pid: u32 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .context("the counter's pid")?;
        let c = Counter {
            pid,
            bin: bin.to_path_buf(),
            out: out.to_path_buf(),
        };
        c.wait_ticks(2)?;
        Ok(c)
    }

    /// (tick, heap hash) of every line printed so far.
    fn ticks(&self) -> Vec<(u64, String)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, h) = l.split_once(' ')?;
                Some((
                    t.strip_prefix("tick=")?.parse().ok()?,
                    h.strip_prefix("heap=")?.to_string(),
                ))
            })
            .collect()
    }

    fn wait_ticks(&self, n: usize) -> Result<()> {
        let end = Instant::now() + Duration::from_secs(10);
        while self.ticks().len() < n {
            if Instant::now() > end {
                bail!("the counter printed {} ticks in 10 s", self.ticks().len());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn ours(&self) -> bool {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).is_ok_and(|e| e == self.bin)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if self.ours() {
            let _ = criu::kill_all(&[self.pid], Duration::from_secs(5));
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<u64> {
    std::fs::create_dir_all(to).with_context(|| format!("{}: cannot create", to.display()))?;
    let mut n = 0;
    for e in std::fs::read_dir(from).with_context(|| format!("{}: cannot list", from.display()))? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".img") {
            n += std::fs::copy(e.path(), to.join(e.file_name()))
                .with_context(|| format!("{}: cannot copy", e.path().display()))?;
        }
    }
    Ok(n)
}

/// The demo's migration with CRIU.
///
/// # Errors
/// When a step the demo expects to pass does not.
pub fn migration(dir: &Path, criu: &Criu) -> Result<Outcome> {
    let bin = dir.join("counter");
    write_exec(&bin, COUNTER)?;
    let (s_dir, t_dir) = (dir.join("source"), dir.join("target"));
    let owner = dir.join("owner.key");
    let refp = dir.join("counter.ref");
    let (chal, bundle, receipt, release) = (
        dir.join("challenge"),
        dir.join("bundle"),
        dir.join("receipt"),
        dir.join("release"),
    );
    let (images_s, images_t, tampered) = (
        dir.join("images-on-S"),
        dir.join("images-on-T"),
        dir.join("images-tampered"),
    );
    say(&format!(
        "\nstep 2: move a running program from host S to host T with CRIU {} ({})\n  (two state directories under {}; the same steps as `talos migrate ...`, see docs/migrate-cli.md)\n",
        criu.version,
        criu.path.display(),
        dir.display()
    ))?;
    let mut n = 2u32;

    n += 1;
    let counter = Counter::start(&bin, &dir.join("counter.out"))?;
    say(&format!(
        "\nstep {n}: run the counter on S (the embedded corpus/samples/counter.c: a counter and a 1 MiB heap buffer whose hash it prints every 50 ms)\n  pid {}, tick {}\n",
        counter.pid,
        counter.ticks().last().map_or(0, |t| t.0)
    ))?;

    n += 1;
    let public = crate::cmd::keygen::generate(&owner)?;
    let r = crate::cmd::reference::build(&bin, APP, "1.0", &owner)?;
    crate::output::write_atomic(&refp, &r.encode())?;
    say(&format!(
        "\nstep {n}: the owner makes a key and signs the reference of the binary\n  owner key {}\n  code {}\n",
        public.id().short(),
        r.body().code
    ))?;
    let s = common(&s_dir);
    let t = common(&t_dir);
    for c in [&s, &t] {
        migrate::execute(&Cmd::Init(migrate::InitArgs { common: c.clone() }))?;
    }
    let pubkey = |d: &Path| d.join(talos_migrate::HOST_PUB_FILE);
    for (c, role, key) in [
        (&s, "owner", talos_migrate::public_path_for(&owner)),
        (&t, "owner", talos_migrate::public_path_for(&owner)),
        (&s, "peer", pubkey(&t_dir)),
        (&t, "peer", pubkey(&s_dir)),
    ] {
        migrate::execute(&Cmd::Trust(migrate::TrustArgs {
            common: c.clone(),
            role: role.to_owned(),
            key,
            attest: Default::default(),
        }))?;
    }
    register_and_challenge(
        &mut n,
        "hosts S and T: init, trust the owner and each other; S: register (the counter was deployed on S)",
        APP,
        (&s, &t),
        &chal,
    )?;

    n += 1;
    std::fs::create_dir(&images_s)
        .with_context(|| format!("{}: cannot create", images_s.display()))?;
    criu.dump(counter.pid, &images_s, &[])?;
    let frozen_at = counter.ticks().last().map_or(0, |t| t.0);
    say(&format!(
        "\nstep {n}: host S: criu dump --leave-stopped (the freeze)\n  the counter is stopped at tick {frozen_at} (state {:?}); images in {}\n",
        criu::state(counter.pid).unwrap_or('?'),
        images_s.display()
    ))?;
    must(
        &mut n,
        "host S: talos migrate seal --dump IMAGES (code against the reference, flow, state digest; freeze)",
        &Cmd::Seal(migrate::SealArgs {
            common: s.clone(),
            app: APP.into(),
            reference: refp.clone(),
            dump: images_s.clone(),
            binary: Some(bin.clone()),
            challenge: chal.clone(),
            output: bundle.clone(),
        }),
    )?;
    n += 1;
    let bytes = copy_dir(&images_s, &images_t)?;
    say(&format!(
        "\nstep {n}: the image directory travels to T ({bytes} bytes; `talos migrate live` streams it, checked as it arrives)\n"
    ))?;

    // Attack 1: one byte of a stored heap page changed on the way.
    copy_dir(&images_t, &tampered)?;
    let pages = tampered.join("pages-1.img");
    let mut b = std::fs::read(&pages).context("pages-1.img")?;
    let mid = b.len() / 2;
    if let Some(x) = b.get_mut(mid) {
        *x ^= 0x01;
    }
    std::fs::write(&pages, &b).context("pages-1.img")?;
    let verify_of = |state: &Path| {
        Cmd::Verify(migrate::VerifyArgs {
            common: t.clone(),
            bundle: bundle.clone(),
            reference: refp.clone(),
            binary: bin.clone(),
            state: state.to_path_buf(),
            output: receipt.clone(),
        })
    };
    let mut refused = 0;
    let v = migrate::execute(&verify_of(&tampered))?;
    step(
        &mut n,
        "attack: T receives the images with one byte of a heap page flipped",
        &v,
    )?;
    refused += u32::from(v.reason_code() == Some("state-mismatch"));
    must(
        &mut n,
        "host T: talos migrate verify --state IMAGES (signatures, nonce, epoch, binary, CFG, state)",
        &verify_of(&images_t),
    )?;
    must(
        &mut n,
        "host S: talos migrate commit (S gives the counter up for good)",
        &Cmd::Commit(migrate::CommitArgs {
            common: s.clone(),
            receipt: receipt.clone(),
            output: release.clone(),
        }),
    )?;
    n += 1;
    let left = criu::kill_all(&[counter.pid], Duration::from_secs(10));
    if !left.is_empty() {
        bail!("the frozen counter {left:?} did not go");
    }
    say(&format!(
        "\nstep {n}: host S: the frozen counter (pid {}) is killed: it will never run here again\n",
        counter.pid
    ))?;
    let launch = Cmd::Launch(migrate::LaunchArgs {
        common: t.clone(),
        release: release.clone(),
        restore: Some(images_t.clone()),
        criu: Some(criu.path.clone()),
        binary: Some(bin.clone()),
        command: Vec::new(),
    });
    let v = must(
        &mut n,
        "host T: talos migrate launch --restore IMAGES (criu restore, stopped; check code, registers, flow and memory; then run)",
        &launch,
    )?;
    if let Some(line) = v
        .to_text()
        .lines()
        .find(|l| l.trim_start().starts_with("pids"))
    {
        say(&format!("  {}\n", line.trim()))?;
    }
    n += 1;
    let before = counter.ticks().len();
    counter.wait_ticks(before + 3)?;
    let t_now = counter.ticks();
    let after: Vec<String> = t_now
        .iter()
        .skip_while(|x| x.0 <= frozen_at)
        .take(3)
        .map(|x| x.0.to_string())
        .collect();
    let one_hash = t_now
        .iter()
        .all(|x| Some(&x.1) == t_now.first().map(|f| &f.1));
    say(&format!(
        "\nstep {n}: on T the counter counts on from tick {frozen_at}: {} ... (heap hash {} throughout: {})\n",
        after.join(", "),
        t_now.first().map_or("-", |f| f.1.as_str()),
        if one_hash { "unchanged" } else { "CHANGED" }
    ))?;
    if after.first().map(String::as_str) != Some(&(frozen_at + 1).to_string()) || !one_hash {
        bail!("the restored counter did not go on from tick {frozen_at}");
    }

    // Attack 2: the image directory replayed after the launch.
    let v = migrate::execute(&verify_of(&images_t))?;
    step(
        &mut n,
        "attack: replay the image directory to T (verify)",
        &v,
    )?;
    refused += u32::from(v.reason_code() == Some("already-accepted"));
    let v = migrate::execute(&launch)?;
    step(
        &mut n,
        "attack: replay the image directory to T (launch --restore)",
        &v,
    )?;
    refused += u32::from(v.reason_code() == Some("already-accepted"));
    if refused != 3 {
        bail!("the demo expected the three attacks to be refused");
    }
    drop(counter);
    say(
        "\nThe counter ran on S, then on T from the same tick, never on both; the tampered page and the replays were refused.\n(the demo stops the counter now)\nNext: talos migrate live --help, docs/migrate-cli.md.\n",
    )?;
    Ok(Outcome::Ok)
}
