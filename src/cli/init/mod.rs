//! `storeflow init [DIR]`: a ready-to-edit project (commented `storeflow.yaml`, the example
//! rules with their tests and fixtures, an email template, the shipped plugins). Everything is
//! compiled into the binary, so it works from an installed `storeflow` alone. It never
//! overwrites: when any file it would write exists, it writes nothing and names the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the project (created when missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Why `init` wrote nothing (or stopped part way on an I/O error).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{dir}: these files exist already, nothing was written (move them away or pick another DIR): {files}")]
    Exists { dir: PathBuf, files: String },
    #[error("cannot create {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The rule files' fixture paths point at the storeflow repository's `tests/fixtures/`; in an
/// initialised project they sit in `fixtures/` beside `rules/`.
const REPO_FIXTURES: &str = "../tests/fixtures/";
const FIXTURES: &str = "../fixtures/";

/// (path inside DIR, content). Rule files get their fixture paths rewritten by [`contents`].
const FILES: &[(&str, &str)] = &[
    ("storeflow.yaml", include_str!("storeflow.yaml")),
    (
        "rules/orders.yaml",
        include_str!("../../../rules/orders.yaml"),
    ),
    (
        "rules/disputes-and-stock.yaml",
        include_str!("../../../rules/disputes-and-stock.yaml"),
    ),
    (
        "fixtures/selldone/SentOrder.json",
        include_str!("../../../tests/fixtures/selldone/SentOrder.json"),
    ),
    (
        "fixtures/sellix/order_paid.json",
        include_str!("../../../tests/fixtures/sellix/order_paid.json"),
    ),
    (
        "fixtures/sellix/order_disputed.json",
        include_str!("../../../tests/fixtures/sellix/order_disputed.json"),
    ),
    (
        "fixtures/sellix/product_stock.json",
        include_str!("../../../tests/fixtures/sellix/product_stock.json"),
    ),
    (
        "templates/shipped.html",
        include_str!("../../../templates/shipped.html"),
    ),
    (
        "plugins/discord_plugin.rhai",
        include_str!("../../../plugins/discord_plugin.rhai"),
    ),
    (
        "plugins/discord_plugin.yaml",
        include_str!("../../../plugins/discord_plugin.yaml"),
    ),
    (
        "plugins/telegram.rhai",
        include_str!("../../../plugins/telegram.rhai"),
    ),
    (
        "plugins/telegram.yaml",
        include_str!("../../../plugins/telegram.yaml"),
    ),
];

/// The text written for `path`: rule files with their fixture paths pointed at `fixtures/`.
fn contents(path: &str, text: &str) -> String {
    if path.starts_with("rules/") {
        text.replace(REPO_FIXTURES, FIXTURES).replace(
            "storeflow simulate --source selldone tests/fixtures/",
            "storeflow simulate --source selldone fixtures/",
        )
    } else {
        text.to_string()
    }
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    write_project(&args.dir)?;
    crate::outln!("{}", next_steps(&args.dir))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every file of [`FILES`] under `dir`, or none when any of them exists.
pub fn write_project(dir: &Path) -> Result<(), InitError> {
    let existing: Vec<&str> = FILES
        .iter()
        .map(|(rel, _)| *rel)
        .filter(|rel| dir.join(rel).symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists {
            dir: dir.to_path_buf(),
            files: existing.join(", "),
        });
    }
    for (rel, text) in FILES {
        write_new(&dir.join(rel), &contents(rel, text))?;
    }
    Ok(())
}

/// Creates `path` (and its parents); never replaces a file that appeared meanwhile.
fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    use std::io::Write;
    let err = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)
}

fn next_steps(dir: &Path) -> String {
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("  cd {}\n", dir.display())
    };
    format!(
        "Created a storeflow project in {dir}: storeflow.yaml, rules/, fixtures/, templates/, plugins/.

Next steps:
{cd}  1. Set the secrets as environment variables (storeflow.yaml reads them as ${{VAR}}):
       export SELLIX_WEBHOOK_SECRET=...    # Sellix: Settings → Webhooks
       export SELLDONE_WEBHOOK_TOKEN=...   # a long random string, e.g. `openssl rand -hex 24`
       export SLACK_WEBHOOK_URL=...        # optional: where the slack action posts
       export STOREFLOW_ADMIN_TOKEN=...    # optional: guards /api, /ui and /metrics
  2. storeflow check     # every problem in the rules, with file:line:col
  3. storeflow test      # the rule tests in rules/*.yaml
  4. storeflow serve     # listens on 127.0.0.1:8080 (see `listen:`)
  5. Register the webhook URLs (behind HTTPS; Sellix only calls https:// URLs):
       Sellix:   https://YOUR-HOST/hooks/sellix
       Selldone: https://YOUR-HOST/hooks/selldone/$SELLDONE_WEBHOOK_TOKEN
  To run it as a service, see deploy/ in the storeflow repository (systemd unit, Dockerfile).",
        dir = dir.display()
    )
}
