//! Writing to the operator's terminal without ever panicking, with
//! control characters escaped on a terminal. The `outln!`, `errln!` and
//! `errs!` macros write through it; a failed write makes the command end
//! with exit code 70 (see `main.rs`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output or standard error failed; `main`
/// then ends with exit code 70 whatever the command returned.
static WRITE_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether any write to standard output or standard error failed.
pub fn write_failed() -> bool {
    WRITE_FAILED.load(Ordering::SeqCst)
}

/// Writes to standard output without ever panicking (`println!` panics on
/// a full disk or a closed pipe). A failed write (a full device, a closed
/// pipe) is said once on standard error and returns exit code 70; the
/// command's work in the store is not undone by it.
pub fn print_out(text: &str) -> u8 {
    write_out(text.as_bytes())
}

/// [`print_out`] for bytes (a stored file given back as it was; to a
/// terminal, with its control characters escaped).
pub fn write_out(bytes: &[u8]) -> u8 {
    use std::io::IsTerminal;
    let mut stdout = std::io::stdout().lock();
    let shown;
    let bytes = if stdout.is_terminal() {
        shown = terminal_safe(&String::from_utf8_lossy(bytes)).into_owned();
        shown.as_bytes()
    } else {
        bytes
    };
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            if !WRITE_FAILED.swap(true, Ordering::SeqCst) {
                print_err(&format!("error: cannot write to standard output: {e}\n"));
            }
            crate::exit::INTERNAL
        }
    }
}

/// Writes to standard error without ever panicking (`eprintln!` panics
/// when standard error is full); a failed write returns exit code 70 and
/// makes the command end with it.
pub fn print_err(text: &str) -> u8 {
    use std::io::IsTerminal;
    let mut stderr = std::io::stderr().lock();
    let text = if stderr.is_terminal() {
        terminal_safe(text)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    match stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush())
    {
        Ok(()) => crate::exit::OK,
        Err(_) => {
            WRITE_FAILED.store(true, Ordering::SeqCst);
            crate::exit::INTERNAL
        }
    }
}

/// `text` with every control character but newline and tab escaped (`\u{1b}`
/// for ESC): what a file or a platform says cannot move the operator's
/// cursor, clear the screen or retitle the window.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Standard error for the tracing subscriber: writes through
/// [`print_err`], so a failed write never panics and still ends the
/// command with exit code 70.
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        print_err(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `println!` that never panics: see [`print_out`] (which gives the exit
/// code of the write, where it matters).
#[macro_export]
macro_rules! outln {
    () => {{ $crate::console::print_out("\n"); }};
    ($($arg:tt)*) => {{ $crate::console::print_out(&format!("{}\n", format_args!($($arg)*))); }};
}

/// `eprintln!` that never panics: see [`print_err`].
#[macro_export]
macro_rules! errln {
    () => {{ $crate::console::print_err("\n"); }};
    ($($arg:tt)*) => {{ $crate::console::print_err(&format!("{}\n", format_args!($($arg)*))); }};
}

/// `eprint!` that never panics: see [`print_err`].
#[macro_export]
macro_rules! errs {
    ($($arg:tt)*) => {{ $crate::console::print_err(&format!($($arg)*)); }};
}
