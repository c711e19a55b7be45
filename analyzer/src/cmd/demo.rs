//! `talos demo`: the main job on an embedded sample, for a first look: its
//! control-flow graph, then a whole migration between two temporary hosts.
//! With CRIU (4.1 or later, as root) a running counter really moves from S
//! to T and counts on ([`live`]); without it the demo says why and runs the
//! dump-only exchange: a real memory dump of the running sample, and
//! replays the gate refuses.

mod live;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Outcome;
use crate::cmd::migrate::{self, AppArgs, Cmd, Common, Format, Verdict};

/// The sample trusted application (`corpus/samples/demo.c`, built by
/// `corpus/samples/build.sh`).
pub const SAMPLE: &[u8] = include_bytes!("../../../corpus/samples/demo-x86_64");

/// The app id the demo migrates.
const APP: &str = "vault";

/// Arguments of `talos demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the temporary directory (keys, ledgers, dump, messages) and
    /// print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Show the exchange on a memory dump even when CRIU could move the
    /// running program.
    #[arg(long)]
    pub no_criu: bool,
}

pub(crate) fn say(s: &str) -> Result<()> {
    crate::output::emit(None, s.as_bytes())
}

/// Run `talos demo`.
///
/// # Errors
/// When the embedded sample cannot be analysed (a build problem) or the
/// temporary directory cannot be used.
pub fn run(args: Args) -> Result<Outcome> {
    cfg_part()?;
    let dir = temp_dir()?;
    let criu = if args.no_criu {
        Err("--no-criu".to_string())
    } else {
        live::available()
    };
    let r = match criu {
        Ok(criu) => live::migration(&dir, &criu),
        Err(why) => {
            say(&format!(
                "
CRIU cannot run here ({why}): the running program cannot be moved, so the demo shows the exchange on a memory dump instead.
"
            ))?;
            migration(&dir)
        }
    };
    if args.keep {
        say(&format!("\n(kept {})\n", dir.display()))?;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn cfg_part() -> Result<()> {
    let image = talos_cfg::load(SAMPLE).context("embedded sample: cannot load")?;
    let cfg = talos_cfg::analyze(&image, &talos_cfg::Options::default())
        .context("embedded sample: cannot analyse")?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "talos demo: the embedded sample trusted application (corpus/samples/demo.c)\n"
    );
    let _ = writeln!(s, "step 1: recover its control-flow graph (talos cfg)");
    let _ = writeln!(
        s,
        "  {} {} binary, {} functions, {} basic blocks, {} edges, {} jump table(s), {} unresolved indirect jumps",
        cfg.arch.name(),
        cfg.format.name(),
        cfg.stats.functions,
        cfg.stats.blocks,
        cfg.stats.edges,
        cfg.jump_tables.len(),
        cfg.stats.unresolved_indirect
    );
    let _ = writeln!(s, "  graph digest {}", cfg.digest);
    if let Ok(f) = cfg.find_function("dispatch") {
        let _ = writeln!(
            s,
            "  dispatch() at {:#x}: {} blocks; its switch is a jump table with {} targets",
            f.addr,
            f.blocks.len(),
            f.edges()
                .filter(|e| e.kind == talos_cfg::EdgeKind::JumpTable)
                .count()
        );
    }
    let noreturn: Vec<String> = cfg
        .functions
        .iter()
        .filter(|f| f.noreturn)
        .map(talos_cfg::Function::display_name)
        .collect();
    let _ = writeln!(s, "  functions that never return: {}", noreturn.join(", "));
    say(&s)
}

fn temp_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("talos-demo-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(dir)
}

/// The sample, running and blocked: it is stopped in `write(2)` at exit,
/// flushing its output into a pipe that a filler thread has made full, so
/// its whole state (the vault slots in .bss, its heap, its stack) is still
/// in memory for as long as the demo needs.
struct Running {
    child: Child,
    filler: Option<std::thread::JoinHandle<()>>,
    reader: Option<std::io::PipeReader>,
}

impl Running {
    fn start(bin: &Path) -> Result<Running> {
        use std::os::fd::AsRawFd as _;
        let (reader, writer) = std::io::pipe().context("creating a pipe")?;
        let mut fill = writer.try_clone().context("duplicating a pipe")?;
        let fd = fill.as_raw_fd();
        // Fill the pipe until a write blocks; it ends with EPIPE when the
        // reader is dropped.
        let filler = std::thread::spawn(move || {
            let chunk = [b'.'; 4096];
            while fill.write_all(&chunk).is_ok() {}
        });
        // The pipe is full once one of our threads sleeps in write(2) on
        // it (`/proc/self/task/*/syscall`: "1 0x<fd> ..."). Without that
        // file, give the filler a moment.
        let want = format!("1 {fd:#x} ");
        let start = Instant::now();
        let mut seen_file = false;
        loop {
            let mut full = false;
            if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
                for t in tasks.flatten() {
                    if let Ok(sc) = std::fs::read_to_string(t.path().join("syscall")) {
                        seen_file = true;
                        full |= sc.starts_with(&want);
                    }
                }
            }
            if full || (!seen_file && start.elapsed() > Duration::from_millis(200)) {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                bail!("could not fill a pipe for the sample's output");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let child = Command::new(bin)
            // put 42 in slot 3, add 100 to it, and multiply 7 by 6
            .args(["0", "3", "42", "2", "3", "100", "6", "7", "6"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("{}: cannot start the sample", bin.display()))?;
        Ok(Running {
            child,
            filler: Some(filler),
            reader: Some(reader),
        })
    }

    /// Wait until the sample sleeps in `write(2)` (syscall 1).
    fn wait_blocked(&mut self) -> Result<()> {
        let pid = self.child.id();
        let start = Instant::now();
        let mut asleep_since: Option<Instant> = None;
        while start.elapsed() < Duration::from_secs(5) {
            if let Some(status) = self.child.try_wait()? {
                bail!("the sample exited ({status}) before it could be dumped");
            }
            let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall"));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let sleeping = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'));
            match syscall {
                Ok(sc) if sleeping && sc.starts_with("1 ") => return Ok(()),
                Ok(_) => asleep_since = None,
                // No syscall file: asleep for 100 ms is blocked.
                Err(_) if sleeping => {
                    let since = *asleep_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(100) {
                        return Ok(());
                    }
                }
                Err(_) => asleep_since = None,
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bail!("the sample did not block in write(2) within 5 s")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.reader.take());
        if let Some(f) = self.filler.take() {
            let _ = f.join();
        }
    }
}

/// Dump the running sample's memory to `core` (through ptrace and
/// `/proc/PID/mem`, as `talos snapshot` does).
fn dump_sample(bin: &Path, core: &Path) -> Result<Result<String, String>> {
    let mut running = Running::start(bin)?;
    running.wait_blocked()?;
    let pid = running.child.id();
    let dump = match talos_introspect::live::read(pid, &talos_introspect::live::Options::default())
    {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("cannot read process {pid}: {e}"))),
    };
    let mut bytes = Vec::new();
    talos_introspect::snapshot::write_core(&dump, &mut bytes)
        .with_context(|| format!("{}: cannot write", core.display()))?;
    crate::output::write_atomic(core, &bytes)?;
    Ok(Ok(format!(
        "process {pid} stopped in write(2) at exit; {} regions, {} thread(s), {} bytes of memory -> {}",
        dump.regions.len(),
        dump.threads.len(),
        dump.bytes_held(),
        core.display()
    )))
}

pub(crate) fn common(dir: &Path) -> Common {
    Common {
        state_dir: dir.to_path_buf(),
        format: Format::Text,
    }
}

pub(crate) fn step(n: &mut u32, title: &str, v: &Verdict) -> Result<()> {
    *n += 1;
    // The verdict line, and the details that tell the story.
    const SHOWN: [&str; 6] = ["code", "flow", "state", "rseq", "binary", "cfg"];
    let mut s = format!("\nstep {n}: {title}\n");
    for (i, line) in v.to_text().lines().enumerate() {
        let key = line.split_whitespace().next().unwrap_or_default();
        if i == 0 || SHOWN.contains(&key) {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
    }
    say(&s)
}

/// Run a gate step that must be accepted.
/// The first steps of both demos: host S registers `app` (`title` says how
/// it came to be there), then host T writes its challenge to `chal`.
pub(crate) fn register_and_challenge(
    n: &mut u32,
    title: &str,
    app: &str,
    (s, t): (&Common, &Common),
    chal: &Path,
) -> Result<()> {
    must(
        n,
        title,
        &Cmd::Register(AppArgs {
            common: s.clone(),
            app: app.into(),
        }),
    )?;
    must(
        n,
        "host T: talos migrate challenge",
        &Cmd::Challenge(migrate::ChallengeArgs {
            common: t.clone(),
            app: app.into(),
            ttl: migrate::DEFAULT_TTL,
            output: chal.to_path_buf(),
        }),
    )?;
    Ok(())
}

pub(crate) fn must(n: &mut u32, title: &str, cmd: &Cmd) -> Result<Verdict> {
    let v = migrate::execute(cmd)?;
    step(n, title, &v)?;
    if !v.accepted {
        bail!("the demo expected step {n} ({title}) to be accepted");
    }
    Ok(v)
}

/// Write an executable file (mode 0755) that must not exist yet.
pub(crate) fn write_exec(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", path.display()))
}

fn migration(dir: &Path) -> Result<Outcome> {
    let bin = dir.join("vault");
    write_exec(&bin, SAMPLE)?;
    let (s_dir, t_dir) = (dir.join("source"), dir.join("target"));
    let core = dir.join("vault.core");
    let owner = dir.join("owner.key");
    let refp = dir.join("vault.ref");
    let chal = dir.join("challenge");
    let bundle = dir.join("bundle");
    let receipt = dir.join("receipt");
    let release = dir.join("release");
    say(&format!(
        "\nstep 2: migrate the running sample from host S to host T\n  (two state directories under {}; the same steps as `talos migrate ...`, see docs/migrate-cli.md)\n",
        dir.display()
    ))?;
    let mut n = 2u32;

    n += 1;
    say(&format!(
        "\nstep {n}: run the sample and take a real memory dump of it\n"
    ))?;
    match dump_sample(&bin, &core)? {
        Ok(line) => say(&format!("  {line}\n"))?,
        Err(why) => {
            say(&format!(
                "  this machine does not let talos read the sample's memory: {why}\n  (ptrace and /proc/PID/mem of a child are needed; the migration part of the demo cannot run here)\n"
            ))?;
            return Ok(Outcome::Unproven);
        }
    }

    n += 1;
    let public = crate::cmd::keygen::generate(&owner)?;
    let r = crate::cmd::reference::build(&bin, APP, "1.0", &owner)?;
    crate::output::write_atomic(&refp, &r.encode())?;
    let b = r.body();
    say(&format!(
        "\nstep {n}: the owner makes a key (talos keygen) and signs the reference of the binary (talos reference)\n  owner key {}\n  binary {}\n  code   {}\n  cfg    {}\n",
        public.id().short(),
        b.binary,
        b.code,
        b.cfg
    ))?;

    let s = common(&s_dir);
    let t = common(&t_dir);
    for (host, c) in [("S", &s), ("T", &t)] {
        must(
            &mut n,
            &format!("host {host}: talos migrate init"),
            &Cmd::Init(migrate::InitArgs { common: c.clone() }),
        )?;
    }
    let pubkey = |d: &Path| d.join(talos_migrate::HOST_PUB_FILE);
    for (host, c, role, key) in [
        ("S", &s, "owner", talos_migrate::public_path_for(&owner)),
        ("T", &t, "owner", talos_migrate::public_path_for(&owner)),
        ("S", &s, "peer", pubkey(&t_dir)),
        ("T", &t, "peer", pubkey(&s_dir)),
    ] {
        must(
            &mut n,
            &format!("host {host}: talos migrate trust --role {role}"),
            &Cmd::Trust(migrate::TrustArgs {
                common: c.clone(),
                role: role.to_owned(),
                key,
                attest: Default::default(),
            }),
        )?;
    }
    register_and_challenge(
        &mut n,
        "host S: talos migrate register (the app was first deployed on S)",
        APP,
        (&s, &t),
        &chal,
    )?;
    must(
        &mut n,
        "host S: talos migrate seal (introspect the dump: code, flow; state digest; freeze)",
        &Cmd::Seal(migrate::SealArgs {
            common: s.clone(),
            app: APP.into(),
            reference: refp.clone(),
            dump: core.clone(),
            binary: Some(bin.clone()),
            challenge: chal.clone(),
            output: bundle.clone(),
        }),
    )?;
    let verify = Cmd::Verify(migrate::VerifyArgs {
        common: t.clone(),
        bundle: bundle.clone(),
        reference: refp.clone(),
        binary: bin.clone(),
        state: core.clone(),
        output: receipt.clone(),
    });
    must(
        &mut n,
        "host T: talos migrate verify (signatures, nonce, epoch, binary, CFG, state)",
        &verify,
    )?;
    must(
        &mut n,
        "host S: talos migrate commit (S gives the app up for good)",
        &Cmd::Commit(migrate::CommitArgs {
            common: s.clone(),
            receipt: receipt.clone(),
            output: release.clone(),
        }),
    )?;
    // Run twice: the second time is an attack (below).
    let launch = Cmd::Launch(migrate::LaunchArgs {
        common: t.clone(),
        release: release.clone(),
        restore: None,
        criu: None,
        binary: None,
        command: Vec::new(),
    });
    must(
        &mut n,
        "host T: talos migrate launch (the app may now run on T, and only there)",
        &launch,
    )?;

    // Attacks: the gate must refuse each with its one reason.
    let mut refused = 0;
    let replay = migrate::execute(&verify)?;
    step(&mut n, "attack: replay the bundle to T", &replay)?;
    refused += u32::from(replay.reason_code() == Some("already-accepted"));
    let resume = migrate::execute(&Cmd::Abort(AppArgs {
        common: s.clone(),
        app: APP.into(),
    }))?;
    step(
        &mut n,
        "attack: resume the app on S after the release",
        &resume,
    )?;
    refused += u32::from(resume.reason_code() == Some("migrated-away"));
    let relaunch = migrate::execute(&launch)?;
    step(
        &mut n,
        "attack: launch T a second time with the same release",
        &relaunch,
    )?;
    refused += u32::from(relaunch.reason_code() == Some("already-accepted"));
    if refused != 3 {
        bail!("the demo expected all three attacks to be refused");
    }
    say(
        "\nThe app ran on S, then on T, never on both; each replay was refused with one stable reason.\nNext: talos migrate --help, docs/migrate-cli.md; talos cfg /usr/bin/bash, or --format json|dot.\n",
    )?;
    Ok(Outcome::Ok)
}
