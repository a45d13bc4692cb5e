//! Gate questions asked on the operator's terminal.
//!
//! One reader of standard input for the whole run, and one question shown
//! at a time: a gate approved meanwhile with `runbook ack` from another
//! terminal leaves no reader behind to swallow the next answer typed here,
//! and a question is printed once, when it becomes the one being asked.

use std::collections::VecDeque;
use std::io::BufRead;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// The questions waiting for an answer typed at the terminal.
pub struct Terminal {
    lines: Option<UnboundedReceiver<String>>,
    /// Steps whose gate was asked here, oldest first; the head is shown.
    asked: VecDeque<String>,
}

impl Terminal {
    /// A terminal whose standard input is read only once a question is
    /// asked.
    pub fn new() -> Terminal {
        Terminal {
            lines: None,
            asked: VecDeque::new(),
        }
    }

    /// Queues `step`'s question; true when it is the one to show now.
    pub fn ask(&mut self, step: &str) -> bool {
        self.lines.get_or_insert_with(read_lines);
        if self.asked.iter().any(|s| s == step) {
            return false;
        }
        self.asked.push_back(step.to_owned());
        self.asked.len() == 1
    }

    /// The step whose question is shown, if any.
    pub fn current(&self) -> Option<&str> {
        self.asked.front().map(String::as_str)
    }

    /// `step` was answered (here or with `runbook ack`): it is no longer
    /// asked. Returns the next question to show when `step` was the one
    /// shown.
    pub fn answered(&mut self, step: &str) -> Option<String> {
        let was_shown = self.current() == Some(step);
        self.asked.retain(|s| s != step);
        if was_shown {
            self.current().map(str::to_owned)
        } else {
            None
        }
    }

    /// The next line typed, once a question was asked; pending forever
    /// otherwise (and after end of input).
    pub async fn next_line(&mut self) -> String {
        match self.lines.as_mut() {
            Some(lines) => match lines.recv().await {
                Some(line) => line,
                None => {
                    // End of input: nobody will type an answer here.
                    self.lines = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

/// Whether a typed line approves ("y" or "yes", any case).
pub fn approves(line: &str) -> bool {
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// Reads standard input line by line on a plain thread (a blocking read
/// must not hold a runtime worker), until end of input or the run ends.
fn read_lines() -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_question_is_shown_at_a_time_and_the_next_follows_an_answer() {
        let mut t = Terminal {
            lines: None,
            asked: VecDeque::new(),
        };
        t.asked.push_back("a".into());
        t.asked.push_back("b".into());
        assert_eq!(t.current(), Some("a"));
        // `b` approved with `runbook ack`: `a` stays the one shown.
        assert_eq!(t.answered("b"), None);
        assert_eq!(t.current(), Some("a"));
        t.asked.push_back("c".into());
        assert_eq!(t.answered("a"), Some("c".into()));
        assert_eq!(t.answered("c"), None);
        assert_eq!(t.current(), None);
    }

    #[test]
    fn only_y_or_yes_approves() {
        assert!(approves("y"));
        assert!(approves(" YES "));
        assert!(!approves(""));
        assert!(!approves("no"));
        assert!(!approves("yy"));
    }
}
