//! `signet init DIR`: scaffold a gate directory — the secure default config,
//! an env example, a .gitignore, an empty plugins directory, an OpenAI SDK
//! client and a README — so that `cd DIR && signet serve --dev` works at once.
//!
//! Never overwrites: every file is created with `create_new` (which also
//! refuses to write through a symlink), and an existing one is kept and
//! reported. There is deliberately no `--force`.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Arguments of `signet init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to scaffold (created if missing; existing files in it are kept).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// The files `signet init` writes, relative to DIR, with their content.
fn files() -> [(&'static str, &'static str); 6] {
    [
        ("signet.toml", crate::config::DEFAULT_CONFIG_TOML),
        (".env.example", include_str!("scaffold/env.example")),
        (".gitignore", include_str!("scaffold/gitignore")),
        (
            "plugins/README.txt",
            include_str!("scaffold/plugins_README.txt"),
        ),
        (
            "client_example.py",
            include_str!("scaffold/client_example.py"),
        ),
        ("README.md", include_str!("scaffold/README.md")),
    ]
}

/// What happened to one file.
enum Outcome {
    Created,
    Kept,
}

fn write_new(path: &Path, content: &str) -> anyhow::Result<Outcome> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(content.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(Outcome::Created)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Outcome::Kept),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

pub(super) fn run(a: Args) -> anyhow::Result<u8> {
    let dir = &a.dir;
    let plugins = dir.join("plugins");
    let dir_existed = dir.is_dir();
    std::fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    if !dir_existed {
        println!("created {}/", dir.display());
    }
    let (mut created, mut kept) = (0, 0);
    for (name, content) in files() {
        let path = dir.join(name);
        match write_new(&path, content)? {
            Outcome::Created => {
                created += 1;
                println!("created {}", path.display());
            }
            Outcome::Kept => {
                kept += 1;
                println!("kept existing {} (not overwritten)", path.display());
            }
        }
    }
    println!();
    println!(
        "{created} file(s) created, {kept} existing file(s) kept. Next, in {}:",
        dir.display()
    );
    println!(
        "  signet serve --dev            # the gate on http://127.0.0.1:8443 with a demo upstream"
    );
    println!("  python client_example.py      # in another terminal (pip install openai)");
    println!("  signet audit verify audit.jsonl --hmac-secret <the secret serve printed>");
    println!("README.md explains each step and how to move a check from audit to enforce.");
    Ok(0)
}
