//! `infermon`: see what your LLM inference hardware and engines are really doing.

mod cli;
mod cmd;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("infermon: {e:#}");
            ExitCode::from(1)
        }
    }
}
