//! Notifications: `[[notify]]` tables in the upgrade file, the runbook and
//! site overlays tell someone (a program, or a URL) when an unattended
//! upgrade needs attention or ends.
//!
//! A notification never holds up the upgrade: [`Notifier::notify`] starts
//! the delivery in the background and returns at once. Each delivery is
//! tried `attempts` times with a growing pause between tries, each try
//! bounded by `timeout` and all of them by `deadline`. How it went comes
//! back through a channel the engine reads in its loop and journals as
//! `notify-delivered` or `notify-failed`; a failure is a warning in the
//! report and in `runbook status`, never a failure of the upgrade.

mod deliver;
mod journal;

pub use crate::runbook::notify::*;
pub use deliver::{Delivery, Notifier};
pub use journal::{DELIVERED, FAILED, notify_now, settle, warnings};
