//! The arguments of `talos migrate` and its subcommands (clap), apart from
//! what the commands do with them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use talos_migrate::Host;

use super::{attested, net};

/// Output format of verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One verdict line and details, for people.
    Text,
    /// One JSON object.
    Json,
}

/// Output formats of `talos migrate status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// The ledger, for people.
    Text,
    /// The ledger view as one JSON object.
    Json,
    /// One self-contained HTML page: the ledger and a timeline per app.
    Html,
}

/// Default challenge lifetime, seconds.
pub const DEFAULT_TTL: u64 = 600;

/// Arguments of `talos migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operation.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options every state-directory command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The host's state directory (keys and ledger).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Verdict format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl Common {
    /// The clock (test builds can set it: `talos_migrate::clock`).
    pub(super) fn now(&self) -> u64 {
        talos_migrate::clock::now()
    }

    pub(super) fn host(&self) -> Result<Host> {
        Host::open(&self.state_dir)
            .with_context(|| format!("{}: cannot open state directory", self.state_dir.display()))
    }
}

/// The subcommands of `talos migrate`.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a host: key pair (host.key 0600, host.pub) and empty ledger.
    Init(InitArgs),
    /// Pin a public key as an application owner or a peer host.
    Trust(TrustArgs),
    /// Register the first deployment of an app on this host (it runs here).
    Register(AppArgs),
    /// Target: issue a fresh challenge (nonce) for an app.
    Challenge(ChallengeArgs),
    /// Source: introspect the dump, freeze the app for the challenger and
    /// seal a bundle.
    Seal(SealArgs),
    /// Target: check a bundle, the binary to launch and the state received;
    /// sign a receipt.
    Verify(VerifyArgs),
    /// Source: on a receipt, give the app up for good and sign a release.
    Commit(CommitArgs),
    /// Target: on a release, mark the app launched here, then run COMMAND.
    Launch(LaunchArgs),
    /// Source: resume a frozen app here, only while no release exists.
    Abort(AppArgs),
    /// Write again the last message this host sent for an app (after a loss).
    Resend(ResendArgs),
    /// Print the ledger.
    Status(StatusArgs),
    /// Describe a message or ledger file (signature checked only against the
    /// key embedded in it).
    Show(ShowArgs),
    /// Target, network mode: run exchanges for peers that `send` to ADDR.
    Serve(net::ServeArgs),
    /// Source, network mode: migrate an app to the target serving at ADDR.
    Send(net::SendArgs),
    /// Source, network mode: freeze a running process with CRIU, seal it,
    /// stream it to the target, and on its receipt give it up for good.
    Live(net::LiveArgs),
}

/// `talos migrate init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `talos migrate trust`.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// What the key may sign: references (owner) or exchange messages (peer).
    #[arg(long, value_parser = ["owner", "peer"])]
    pub role: String,
    /// The public key file (host.pub of a peer, KEY.pub of an owner).
    #[arg(value_name = "PUBFILE")]
    pub key: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub attest: attested::EvidenceArgs,
}

/// Commands that name an app.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Application id.
    #[arg(long, value_name = "ID")]
    pub app: String,
}

/// `talos migrate challenge`.
#[derive(Debug, clap::Args)]
pub struct ChallengeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Application id.
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// Lifetime of the challenge, seconds (1 to 7 days).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TTL)]
    pub ttl: u64,
    /// The challenge file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `talos migrate seal`.
#[derive(Debug, clap::Args)]
pub struct SealArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Application id.
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// The owner-signed reference (from `talos reference`).
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,
    /// The frozen app: an ELF core (gcore with coredump_filter 0x7f, kernel
    /// core, or `talos snapshot`) or a CRIU image directory (`criu dump
    /// --leave-stopped -D DIR`).
    #[arg(long, value_name = "DUMP")]
    pub dump: PathBuf,
    /// The reference's binary, to compare the main module's code with
    /// (default: the file the dump names, on this host).
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// The target's challenge.
    #[arg(long, value_name = "FILE")]
    pub challenge: PathBuf,
    /// The bundle file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `talos migrate verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// The source's bundle.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The owner-signed reference.
    #[arg(long, value_name = "FILE")]
    pub reference: PathBuf,
    /// The binary that will be launched.
    #[arg(long, value_name = "BIN")]
    pub binary: PathBuf,
    /// The state received (the core or image directory the source sealed).
    #[arg(long, value_name = "DUMP")]
    pub state: PathBuf,
    /// The receipt file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `talos migrate commit`.
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// The target's receipt.
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// The release file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `talos migrate launch`.
#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// The source's release.
    #[arg(long, value_name = "FILE")]
    pub release: PathBuf,
    /// Restore this verified CRIU image directory (`criu restore -d
    /// --leave-stopped`), check the restored process against what was
    /// verified, and only then record the launch and let it run.
    #[arg(long, value_name = "DIR")]
    pub restore: Option<PathBuf>,
    /// The criu binary (default: criu on PATH).
    #[arg(long, value_name = "PATH", requires = "restore")]
    pub criu: Option<PathBuf>,
    /// The reference's binary, to compare the restored code with (default:
    /// the files the restored process maps).
    #[arg(long, value_name = "BIN", requires = "restore")]
    pub binary: Option<PathBuf>,
    /// Without --restore: a command to exec once the ledger has recorded
    /// the launch. With --restore: extra arguments for `criu restore`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `talos migrate resend`.
#[derive(Debug, clap::Args)]
pub struct ResendArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
    /// Application id.
    #[arg(long, value_name = "ID")]
    pub app: String,
    /// Where to write the message.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// `talos migrate status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The host's state directory (keys and ledger).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    /// Write to FILE instead of standard output (`--format html`).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl StatusArgs {
    /// The options every state-directory command takes.
    pub(super) fn common(&self) -> Common {
        Common {
            state_dir: self.state_dir.clone(),
            format: match self.format {
                StatusFormat::Json => Format::Json,
                StatusFormat::Text | StatusFormat::Html => Format::Text,
            },
        }
    }
}

/// `talos migrate show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A message (reference, challenge, bundle, receipt, release) or ledger.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl Cmd {
    pub(super) fn format(&self) -> Format {
        match self {
            Cmd::Init(a) => a.common.format,
            Cmd::Trust(a) => a.common.format,
            Cmd::Register(a) | Cmd::Abort(a) => a.common.format,
            Cmd::Challenge(a) => a.common.format,
            Cmd::Seal(a) => a.common.format,
            Cmd::Verify(a) => a.common.format,
            Cmd::Commit(a) => a.common.format,
            Cmd::Launch(a) => a.common.format,
            Cmd::Resend(a) => a.common.format,
            Cmd::Status(a) => a.common().format,
            Cmd::Show(a) => a.format,
            Cmd::Serve(a) => a.common.format,
            Cmd::Send(a) => a.common.format,
            Cmd::Live(a) => a.common.format,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Cmd::Init(_) => "init",
            Cmd::Trust(_) => "trust",
            Cmd::Register(_) => "register",
            Cmd::Challenge(_) => "challenge",
            Cmd::Seal(_) => "seal",
            Cmd::Verify(_) => "verify",
            Cmd::Commit(_) => "commit",
            Cmd::Launch(_) => "launch",
            Cmd::Abort(_) => "abort",
            Cmd::Resend(_) => "resend",
            Cmd::Status(_) => "status",
            Cmd::Show(_) => "show",
            Cmd::Serve(_) => "serve",
            Cmd::Send(_) => "send",
            Cmd::Live(_) => "live",
        }
    }
}
