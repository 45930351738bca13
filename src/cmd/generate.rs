//! `infermon completions SHELL` (shell completion script on standard output) and the hidden
//! `infermon manpages DIR` (one roff man page per command), both generated from the same clap
//! command the binary parses, so they cannot drift from the real flags. The Debian package
//! (`scripts/package-deb.sh`) ships their output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// `infermon completions`
#[derive(Args, Debug)]
#[command(after_help = "Install, e.g.:\n  \
                  bash: infermon completions bash > ~/.local/share/bash-completion/completions/infermon\n  \
                  zsh:  infermon completions zsh > ~/.zfunc/_infermon  (with fpath+=~/.zfunc before compinit)\n  \
                  fish: infermon completions fish > ~/.config/fish/completions/infermon.fish\n\
                  The Debian package installs all three system-wide.")]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells a completion script is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash (bash-completion).
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

impl CompletionShell {
    fn shell(self) -> Shell {
        match self {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

/// `infermon manpages` (hidden: used by packaging)
#[derive(Args, Debug)]
pub struct ManpagesArgs {
    /// Directory to write infermon.1 and infermon-SUBCOMMAND.1 into (created if missing).
    pub dir: PathBuf,
}

/// Writes the completion script for `args.shell` to standard output.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let name = cmd.get_name().to_string();
    // Rendered into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell.shell(), &mut cmd, name, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes one man page per visible command into `args.dir` and prints their paths.
pub fn manpages(args: ManpagesArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    for page in write_manpages(&args.dir, cmd)? {
        println!("{}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The man pages of `cmd` and its visible subcommands (nested ones as `infermon-history-export.1`),
/// written into `dir`; returns their paths, sorted. Hidden commands get none.
fn write_manpages(dir: &Path, cmd: clap::Command) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(cmd: clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let path = dir.join(man.get_filename());
        let mut roff = Vec::new();
        man.render(&mut roff)
            .with_context(|| format!("cannot render \"{}\"", path.display()))?;
        std::fs::write(&path, roff)
            .with_context(|| format!("cannot write \"{}\"", path.display()))?;
        out.push(path);
        Ok(())
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create man page directory \"{}\"", dir.display()))?;
    // As clap_mangen::generate_to does: no `help` pseudo-command, and built so that
    // subcommands carry their display names (`infermon-agent`).
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(cmd, dir, &mut pages)?;
    pages.sort();
    Ok(pages)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    #[command(name = "demo", version, about = "Demo tool")]
    struct Demo {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(Subcommand)]
    enum Sub {
        /// Run it.
        Run {
            /// Where to listen.
            #[arg(long)]
            listen: Option<String>,
        },
        /// Nested.
        Nest {
            #[command(subcommand)]
            inner: Inner,
        },
        #[command(hide = true)]
        Secret,
    }

    #[derive(Subcommand)]
    enum Inner {
        /// Inner leaf.
        Leaf,
    }

    #[test]
    fn one_page_per_visible_command_hidden_ones_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_manpages(dir.path(), <Demo as clap::CommandFactory>::command()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["demo-nest-leaf.1", "demo-nest.1", "demo-run.1", "demo.1"]
        );
        let run = std::fs::read_to_string(dir.path().join("demo-run.1")).unwrap();
        assert!(run.contains(".TH demo-run 1"), "{run}");
        assert!(run.contains("listen"), "{run}");
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = write_manpages(&file, <Demo as clap::CommandFactory>::command()).unwrap_err();
        assert!(
            format!("{err:#}").contains(&file.display().to_string()),
            "{err:#}"
        );
    }
}
