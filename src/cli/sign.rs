//! `storeflow sign [--secret S | --shop NAME [--previous]] FILE`: the Sellix signature of a file,
//! for testing with curl. The secret comes from `--secret` (or `SELLIX_WEBHOOK_SECRET`), else
//! from the config: `sources.sellix.secret`, or a listed shop's.

use crate::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::sources::sellix::Sellix;
use crate::sources::verify::sign_sha512_hex;
use crate::sources::{Source, DEFAULT_SHOP};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The webhook secret (or set SELLIX_WEBHOOK_SECRET, which keeps it out of `ps`); without
    /// it, the shop's secret from storeflow.yaml
    #[arg(long, env = "SELLIX_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Sign with this shop's secret from storeflow.yaml (`sources.sellix.shops`), even when
    /// SELLIX_WEBHOOK_SECRET is set
    #[arg(long)]
    pub shop: Option<String>,
    /// Sign with the shop's `previous_secret` (to test a rotation)
    #[arg(long)]
    pub previous: bool,
    /// The exact body to sign
    pub file: PathBuf,
}

pub fn run(config: &Config, args: SignArgs) -> anyhow::Result<ExitCode> {
    let from_config = args.shop.is_some() || args.previous;
    let secret = match args.secret.filter(|s| !s.is_empty() && !from_config) {
        Some(secret) => secret,
        None => {
            let shop = args.shop.as_deref().unwrap_or(DEFAULT_SHOP);
            configured_secret(config, shop, args.previous)?
        }
    };
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    outln!("{}", sign_sha512_hex(secret.as_bytes(), &body))?;
    Ok(ExitCode::SUCCESS)
}

fn configured_secret(config: &Config, shop: &str, previous: bool) -> anyhow::Result<String> {
    let sellix = Sellix::new(config.sources.sellix.clone());
    let Some(found) = sellix.shops().get(shop) else {
        let known = sellix
            .shops()
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>();
        anyhow::bail!(
            "no Sellix shop `{shop}` in the configuration (shops: {})",
            known.join(", ")
        );
    };
    let (secret, key) = if previous {
        (&found.previous, "previous_secret")
    } else {
        (&found.current, "secret")
    };
    if !secret.is_set() {
        anyhow::bail!(
            "no secret to sign with: pass --secret, set SELLIX_WEBHOOK_SECRET, or set the {key} \
             of Sellix shop `{shop}` in storeflow.yaml"
        );
    }
    Ok(secret.expose().to_string())
}
