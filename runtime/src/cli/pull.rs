//! `rwasm pull` / `rwasm image pull`: the command line over
//! [`rwasm::engine::image::pull`], printing what `docker pull` prints: one line per layer
//! and status when stdout is not a terminal, a progress bar per layer (indicatif) when it is.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use rwasm::engine::image::pull::{LayerStatus, Progress};

use super::Cli;

/// `rwasm pull` / `rwasm image pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]; `latest` when neither is given, Docker Hub when no registry is.
    pub reference: String,
    /// Reach this registry (HOST[:PORT]) over plain HTTP, as if it were listed under
    /// `insecure-registries` in registries.toml (loopback registries always are).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Take credentials from this Docker-style auth file (default: $REGISTRY_AUTH_FILE,
    /// $DOCKER_CONFIG/config.json, ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Resolve a multi-platform image to OS/ARCH (default: linux and this machine's
    /// architecture).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Print only the final reference.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rwasm pull REF`, with Docker's output: `Using default tag: latest`, `TAG: Pulling from
/// PATH`, a line per layer and status (a progress bar per layer on a terminal), `Digest:`,
/// `Status: Downloaded newer image for REF` or `Status: Image is up to date for REF`, and
/// the fully qualified reference.
pub fn pull(cli: &Cli, a: &PullArgs) -> anyhow::Result<()> {
    use rwasm::engine::image::pull::PullOptions;
    use rwasm::engine::image::registry::{Insecure, default_auth_file};
    rwasm::engine::image::reference::Reference::parse(&a.reference)?;
    let name = a.reference.rsplit('/').next().unwrap_or(&a.reference);
    let defaulted = !name.contains(':') && !name.contains('@');
    if let Some(p) = &a.platform {
        let ok = matches!(p.split('/').collect::<Vec<_>>()[..], [o, arch] if !o.is_empty() && !arch.is_empty());
        if !ok {
            anyhow::bail!("--platform {p:?}: expected OS/ARCH, e.g. linux/arm64");
        }
    }
    let options = PullOptions {
        platform: a.platform.clone(),
        insecure: Insecure::load(&cli.data_root, &a.insecure_registries)?,
        auth_file: a.authfile.clone().or_else(default_auth_file),
    };
    if defaulted && !a.quiet {
        outln!("Using default tag: latest");
    }
    let sink = if a.quiet { Sink::Quiet } else { Sink::Stdout };
    let full = fetch(cli, &a.reference, &options, sink)?;
    outln!("{full}");
    Ok(())
}

/// Where a pull's report goes: `rwasm pull` writes it on stdout, `run` and `create` on
/// stderr (as `docker run` does when it pulls a missing image), `pull -q` nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Nowhere.
    Quiet,
}

impl Sink {
    fn line(self, text: std::fmt::Arguments<'_>) {
        match self {
            Sink::Stdout => outln!("{text}"),
            Sink::Stderr => errln!("{text}"),
            Sink::Quiet => {}
        }
    }

    fn is_terminal(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Sink::Stdout => std::io::stdout().is_terminal(),
            Sink::Stderr => std::io::stderr().is_terminal(),
            Sink::Quiet => false,
        }
    }
}

/// Pull `reference` into the store with `options`, reporting to `sink` as Docker does
/// (`TAG: Pulling from PATH`, the layers, `Digest:`, `Status:`); returns the fully
/// qualified reference. The one pull of `rwasm pull`, `run` and `create`.
pub(super) fn fetch(
    cli: &Cli,
    reference: &str,
    options: &rwasm::engine::image::pull::PullOptions,
    sink: Sink,
) -> anyhow::Result<String> {
    use rwasm::engine::image::reference::Reference;
    let r = Reference::parse(reference)?;
    let what = match (&r.tag, &r.digest) {
        (_, Some(d)) => d.clone(),
        (Some(t), None) => t.clone(),
        (None, None) => "latest".into(),
    };
    let progress: Box<dyn Progress> = match sink {
        Sink::Quiet => Box::new(Quiet),
        s if s.is_terminal() => Box::new(Bars::new(what, s)),
        s => Box::new(Lines::new(what, s)),
    };
    let pulled = super::image::images(cli).pull(reference, options, progress.as_ref())?;
    drop(progress);
    let shown = match (&pulled.reference.tag, &pulled.reference.digest) {
        (_, Some(_)) | (None, None) => pulled.reference.to_string(),
        (Some(t), None) => format!("{}:{t}", pulled.reference.repository),
    };
    sink.line(format_args!("Digest: {}", pulled.digest));
    if pulled.downloaded {
        sink.line(format_args!("Status: Downloaded newer image for {shown}"));
    } else {
        sink.line(format_args!("Status: Image is up to date for {shown}"));
    }
    Ok(pulled.reference.full())
}

/// The words Docker prints for a status.
fn words(s: LayerStatus) -> &'static str {
    match s {
        LayerStatus::AlreadyExists => "Already exists",
        LayerStatus::Pulling => "Pulling fs layer",
        LayerStatus::Waiting => "Waiting",
        LayerStatus::Downloading { .. } => "Downloading",
        LayerStatus::Verifying => "Verifying Checksum",
        LayerStatus::DownloadComplete => "Download complete",
        LayerStatus::Extracting => "Extracting",
        LayerStatus::PullComplete => "Pull complete",
    }
}

/// `-q`: nothing but the final reference.
struct Quiet;

impl Progress for Quiet {
    fn pulling(&self, _from: &str) {}
    fn layer(&self, _id: &str, _status: LayerStatus) {}
}

/// Not a terminal: Docker's plain lines (`ID: STATUS`), without the byte counts.
struct Lines {
    what: String,
    sink: Sink,
}

impl Lines {
    fn new(what: String, sink: Sink) -> Self {
        Lines { what, sink }
    }
}

impl Progress for Lines {
    fn pulling(&self, from: &str) {
        self.sink
            .line(format_args!("{}: Pulling from {from}", self.what));
    }

    fn layer(&self, id: &str, status: LayerStatus) {
        if !matches!(
            status,
            LayerStatus::Downloading { .. } | LayerStatus::Extracting
        ) {
            self.sink.line(format_args!("{id}: {}", words(status)));
        }
    }
}

/// A terminal: one bar per layer, in manifest order, drawn on the sink's terminal.
struct Bars {
    what: String,
    sink: Sink,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, (ProgressBar, bool)>>,
}

impl Bars {
    fn new(what: String, sink: Sink) -> Self {
        let target = if sink == Sink::Stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        };
        Bars {
            what,
            sink,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for Bars {
    fn pulling(&self, from: &str) {
        self.sink
            .line(format_args!("{}: Pulling from {from}", self.what));
    }

    fn layer(&self, id: &str, status: LayerStatus) {
        let plain = ProgressStyle::with_template("{prefix}: {msg}").expect("static template");
        let bytes =
            ProgressStyle::with_template("{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> ");
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let (bar, counting) = bars.entry(id.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(0));
            b.set_style(plain.clone());
            b.set_prefix(id.to_string());
            (b, false)
        });
        if let LayerStatus::Downloading { done, total } = status {
            if !*counting {
                bar.set_style(bytes);
                bar.set_length(total);
                *counting = true;
            }
            bar.set_position(done);
        } else if *counting {
            bar.set_style(plain);
            *counting = false;
        }
        bar.set_message(words(status));
        if matches!(
            status,
            LayerStatus::AlreadyExists | LayerStatus::PullComplete
        ) {
            bar.finish();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for (b, _) in bars.values() {
            if !b.is_finished() {
                b.abandon();
            }
        }
        if !bars.is_empty() {
            // indicatif leaves the cursor at the end of the last bar.
            self.sink.line(format_args!(""));
        }
    }
}
