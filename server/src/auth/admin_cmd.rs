//! `slipway admin create`: the first admin (or any user) from the command
//! line. The password is read from stdin, never from argv: piped, its first
//! line; on a terminal, typed twice without echo.

use std::{
    io::{BufRead, IsTerminal, Write},
    process::ExitCode,
};

use super::{
    password,
    users::{check_name, parse_role, UserError, UserStore},
};
use crate::config::Config;

/// Exit code for input the command refuses (as clap uses for bad arguments).
pub const EXIT_BAD_INPUT: u8 = 2;

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("slipway admin create: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Creates the user; exit code 2 on bad input (name, role, password, name
/// taken), 1 when the database fails.
pub async fn create(config: &Config, name: &str, role: &str) -> ExitCode {
    let role = match parse_role(role) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    if let Err(e) = check_name(name) {
        return bad_input(e);
    }
    let password = match read_password() {
        Ok(p) => p,
        Err(message) => return bad_input(message),
    };
    if let Err(e) = password::check_rules(&password) {
        return bad_input(e);
    }
    let db = match crate::db::open(&config.data_dir).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("slipway admin create: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match UserStore::new(db).create(name, &password, role).await {
        Ok(user) => {
            println!("created user {} (id {}, role {})", user.name, user.id, user.role.as_str());
            ExitCode::SUCCESS
        }
        Err(e) if is_bad_input(&e) => bad_input(e),
        Err(e) => {
            eprintln!("slipway admin create: {e}");
            ExitCode::FAILURE
        }
    }
}

fn is_bad_input(e: &UserError) -> bool {
    use password::PasswordError::{TooLong, TooShort};
    matches!(
        e,
        UserError::Invalid(_)
            | UserError::Fields(_)
            | UserError::NameTaken
            | UserError::BadRole
            | UserError::Password(TooShort | TooLong)
    )
}

fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let again = prompt_hidden("Repeat password: ")?;
        if first != again {
            return Err("the passwords differ".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    // One byte more than the rule allows is enough to refuse an over-long one.
    let mut limited = std::io::Read::take(stdin.lock(), password::MAX_PASSWORD_BYTES as u64 + 2);
    limited.read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
    if password.is_empty() {
        return Err("no password on stdin (pipe it in, e.g. `slipway admin create … < file`)".into());
    }
    Ok(password.to_string())
}

/// Reads one line from the terminal on stdin with echo off.
fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns terminal echo off on stdin until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then filled,
        // termios; failure (not a terminal) leaves echo as it was.
        unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
                return EchoOff(None);
            }
            let saved = term;
            term.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
