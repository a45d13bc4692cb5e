//! Dataphin version numbers and the rules that decide which upgrade modes apply.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The three ways of upgrading the platform.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Backup, pre-upgrade, application upgrade, data update; logon returns after the application upgrade.
    SemiDowntime,
    /// Stop dispatching, force-stop running tasks, shut down, back up, upgrade, rerun, update data.
    Downtime,
    /// An automatic rolling upgrade; users stay logged on.
    ZeroDowntime,
}

impl Mode {
    /// Every mode, in the order the upgrade wizard lists them.
    pub const ALL: [Mode; 3] = [Mode::SemiDowntime, Mode::Downtime, Mode::ZeroDowntime];

    /// The kebab-case name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::SemiDowntime => "semi-downtime",
            Mode::Downtime => "downtime",
            Mode::ZeroDowntime => "zero-downtime",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most segments a version may have. Dataphin writes four; six leaves room for longer hotfix
/// numbers while still catching text that is plainly not a version (a pasted build id, say).
const MAX_SEGMENTS: usize = 6;

/// The most digits per segment; nine digits always fit in a `u32`, so parsing cannot overflow.
const MAX_DIGITS: usize = 9;

/// The segments that name a Dataphin release line. The upgrade wizard recommends semi-downtime
/// whenever these differ, whatever rules the runbooks declare.
const RELEASE_SEGMENTS: usize = 3;

/// The JSON-schema pattern; it must accept exactly what `Version::from_str` accepts (after the
/// surrounding whitespace that the parser trims).
const VERSION_PATTERN: &str = r"^[Vv]?[0-9]{1,9}(\.[0-9]{1,9}){0,5}$";

/// The hint for text that is not shaped like a version at all.
const SYNTAX_HINT: &str =
    "write it like V5.1.2.02 or 5.1.1: digits separated by dots, optionally prefixed by V";

/// A Dataphin version number as written ("V5.1.2.02", "5.1.1", "v5.2").
///
/// Comparison is numeric and ignores how the number was written: missing trailing segments count
/// as 0 and leading zeros do not matter, so `v5.2 == 5.2.0` and `V5.1.2.02 == 5.1.2.2`. The text
/// is kept so that messages quote the version the way the operator wrote it.
#[derive(Clone, Debug)]
pub struct Version {
    segments: Vec<u32>,
    raw: String,
}

impl Version {
    /// The numeric segments, as written (trailing zeros are kept, so `5.2.0` has three).
    pub fn segments(&self) -> &[u32] {
        &self.segments
    }

    /// Whether the first `n` segments of both versions are equal; a missing segment counts as 0,
    /// so `5.1` and `5.1.0.3` share their first three segments.
    pub fn same_leading_segments(&self, other: &Version, n: usize) -> bool {
        (0..n).all(|i| self.segment(i) == other.segment(i))
    }

    fn segment(&self, i: usize) -> u32 {
        self.segments.get(i).copied().unwrap_or(0)
    }

    /// Numeric equality must not depend on padding zeros, so hashing and equality both look only
    /// at this prefix.
    fn significant(&self) -> &[u32] {
        let len = self
            .segments
            .iter()
            .rposition(|&s| s != 0)
            .map_or(0, |i| i + 1);
        &self.segments[..len]
    }

    /// The first `n` segments as the operator wrote them, keeping the `V` prefix and padding with
    /// zeros, so that a refusal quotes exactly the part that had to match.
    fn leading_text(&self, n: usize) -> String {
        let (prefix, body) = split_prefix(&self.raw);
        let mut parts: Vec<&str> = body.split('.').take(n).collect();
        parts.resize(n, "0");
        format!("{prefix}{}", parts.join("."))
    }

    /// Built-in versions are known to be valid, so they skip parsing and cannot panic.
    fn from_parts(segments: &[u32]) -> Version {
        let raw = segments
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".");
        Version {
            segments: segments.to_vec(),
            raw,
        }
    }
}

/// Splits off the optional `V` so that messages can quote it back with the operator's casing.
fn split_prefix(text: &str) -> (&str, &str) {
    match text.strip_prefix(['V', 'v']) {
        Some(body) => (&text[..1], body),
        None => ("", text),
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Version, VersionError> {
        let raw = text.trim();
        let refuse = |message: String, hint: &str| VersionError {
            message,
            hint: hint.to_owned(),
        };
        if raw.is_empty() {
            return Err(refuse(
                "an empty string is not a version number".to_owned(),
                SYNTAX_HINT,
            ));
        }
        let (prefix, body) = split_prefix(raw);
        if body.is_empty() {
            return Err(refuse(
                format!("`{raw}` has no digits after the {prefix}"),
                SYNTAX_HINT,
            ));
        }
        let parts: Vec<&str> = body.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for part in &parts {
            if part.is_empty() {
                let message = if body.starts_with('.') {
                    format!("`{raw}` has a dot before the first number")
                } else if body.ends_with('.') {
                    format!("`{raw}` ends with a dot")
                } else {
                    format!("`{raw}` has two dots in a row")
                };
                return Err(refuse(message, SYNTAX_HINT));
            }
            // `u32::from_str` would also take "+1", so the digits are checked by hand.
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                let message = if parts.len() == 1 {
                    format!("`{raw}` is not a version number")
                } else {
                    format!("`{raw}` is not a version number: `{part}` is not a decimal number")
                };
                return Err(refuse(message, SYNTAX_HINT));
            }
            if part.len() > MAX_DIGITS {
                return Err(refuse(
                    format!("`{raw}` has a segment longer than {MAX_DIGITS} digits (`{part}`)"),
                    "each segment has at most 9 digits, as in V5.1.2.02",
                ));
            }
            segments
                .push(part.parse::<u32>().map_err(|_| {
                    refuse(format!("`{raw}` is not a version number"), SYNTAX_HINT)
                })?);
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(refuse(
                format!(
                    "`{raw}` has {} segments; a version has at most {MAX_SEGMENTS}",
                    segments.len()
                ),
                "write at most six dot-separated numbers, as in V5.1.2.02",
            ));
        }
        Ok(Version {
            segments,
            raw: raw.to_owned(),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let len = self.segments.len().max(other.segments.len());
        (0..len)
            .map(|i| self.segment(i).cmp(&other.segment(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Version").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": VERSION_PATTERN,
            "description": "A Dataphin version number such as V5.1.2.02 or 5.1.1: an optional V, \
                then 1 to 6 dot-separated decimal segments of up to 9 digits each. Versions \
                compare numerically; missing trailing segments count as 0.",
            "examples": ["V5.1.2.02", "5.1.1"],
        })
    }
}

/// Why a version string, or an upgrade between two versions, was refused.
///
/// Both fields are lowercase English fragments so that callers can embed them in their own
/// sentences; `Display` joins them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {hint}")]
pub struct VersionError {
    /// What is wrong, quoting the offending text, e.g. "`5.x.1` is not a version number".
    pub message: String,
    /// What to do instead, e.g. "write it like V5.1.2.02 or 5.1.1: …".
    pub hint: String,
}

/// The rule that says when one upgrade mode can be used at all (a runbook declares one).
///
/// An empty rule (the default) allows the mode for every path.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct ModeRule {
    /// The current version must be at least this one (semi-downtime: 5.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_at_least: Option<Version>,
    /// The first N segments of current and target must be equal (zero-downtime: 3);
    /// N is 1 to 8.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "leading_segments"
    )]
    #[schemars(range(min = 1, max = 8))]
    pub same_leading_segments: Option<usize>,
    /// The target version must not declare itself incompatible with this mode (zero-downtime).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub target_must_be_compatible: bool,
}

/// One requested upgrade: where from, where to, and what the target version says about
/// zero-downtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpgradePath {
    /// The version installed now.
    pub current: Version,
    /// The version to upgrade to; always newer than `current` when built by `UpgradePath::new`.
    pub target: Version,
    /// What the target's version configuration declares about zero-downtime upgrades; `None`
    /// when it declares nothing, which does not rule zero-downtime out.
    pub zero_downtime_compatible: Option<bool>,
}

impl UpgradePath {
    /// Builds a path, refusing a downgrade or a target that is already installed: neither is an
    /// upgrade, and going back is a restore from backup, not something a runbook should attempt.
    pub fn new(
        current: Version,
        target: Version,
        zero_downtime_compatible: Option<bool>,
    ) -> Result<UpgradePath, VersionError> {
        match target.cmp(&current) {
            Ordering::Less => Err(VersionError {
                message: format!(
                    "target {target} is older than the current version {current}: \
                     runbook does not downgrade"
                ),
                hint: format!(
                    "choose a target newer than {current}, or restore the backup taken \
                     before the upgrade to go back to {target}"
                ),
            }),
            Ordering::Equal => Err(VersionError {
                message: if target.raw == current.raw {
                    format!("target {target} is already installed")
                } else {
                    format!("target {target} is already installed (as {current})")
                },
                hint: format!("choose a target newer than {current}"),
            }),
            Ordering::Greater => Ok(UpgradePath {
                current,
                target,
                zero_downtime_compatible,
            }),
        }
    }

    fn shares_release(&self) -> bool {
        self.current
            .same_leading_segments(&self.target, RELEASE_SEGMENTS)
    }
}

/// "first three segments": the reasons are read by operators, so small counts are spelled out.
/// The most leading segments a rule may compare: it sizes a loop and the
/// text of an error, so a huge number must be refused where it is written.
pub const MAX_LEADING_SEGMENTS: usize = 8;

fn leading_segments<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = <u64 as serde::Deserialize>::deserialize(d)?;
    match usize::try_from(n) {
        Ok(n @ 1..=MAX_LEADING_SEGMENTS) => Ok(Some(n)),
        _ => Err(serde::de::Error::custom(format!(
            "same_leading_segments must be between 1 and {MAX_LEADING_SEGMENTS}, not {n} (a version has at most that many segments worth comparing)"
        ))),
    }
}

fn leading_segments_phrase(n: usize) -> String {
    const WORDS: [&str; 9] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    ];
    match n {
        1 => "first segment".to_owned(),
        n if n < WORDS.len() => format!("first {} segments", WORDS[n]),
        n => format!("first {n} segments"),
    }
}

impl ModeRule {
    /// Ok(()) when `mode` may be used for `path`, else every unmet condition as one sentence an
    /// operator understands, e.g. "semi-downtime needs the current version to be 5.1.1 or later;
    /// it is V5.0.3". `mode` only names the mode in that sentence.
    pub fn check(&self, mode: Mode, path: &UpgradePath) -> Result<(), String> {
        let mut reasons = Vec::new();
        if let Some(minimum) = &self.current_at_least {
            if path.current < *minimum {
                reasons.push(format!(
                    "{mode} needs the current version to be {minimum} or later; it is {}",
                    path.current
                ));
            }
        }
        if let Some(n) = self.same_leading_segments {
            if !path.current.same_leading_segments(&path.target, n) {
                reasons.push(format!(
                    "{mode} needs the {} of current and target to be equal ({} vs {})",
                    leading_segments_phrase(n),
                    path.current.leading_text(n),
                    path.target.leading_text(n)
                ));
            }
        }
        // Only an explicit "incompatible" blocks: most version configurations say nothing.
        if self.target_must_be_compatible && path.zero_downtime_compatible == Some(false) {
            reasons.push(format!(
                "the target version {} declares itself incompatible with {mode} upgrades",
                path.target
            ));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    /// Dataphin's own rule for each mode: semi-downtime needs 5.1.1 or later, downtime has no
    /// condition, zero-downtime needs the first three segments equal and a compatible target.
    pub fn dataphin(mode: Mode) -> ModeRule {
        match mode {
            Mode::SemiDowntime => ModeRule {
                current_at_least: Some(Version::from_parts(&[5, 1, 1])),
                ..ModeRule::default()
            },
            Mode::Downtime => ModeRule::default(),
            Mode::ZeroDowntime => ModeRule {
                same_leading_segments: Some(RELEASE_SEGMENTS),
                target_must_be_compatible: true,
                ..ModeRule::default()
            },
        }
    }
}

/// What the upgrade wizard would show for a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeAdvice {
    /// Every mode, in `Mode::ALL` order, with whether it can be used.
    pub modes: Vec<ModeOption>,
    /// The mode preselected in the wizard: zero-downtime when available, otherwise downtime.
    pub default: Mode,
    /// The mode Dataphin recommends: semi-downtime when the first three segments differ,
    /// zero-downtime when they are equal; falling back to semi-downtime, then downtime.
    pub recommended: Mode,
    /// One or two sentences explaining `default` and `recommended`, citing the versions.
    pub why: String,
}

/// One mode as the wizard lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeOption {
    /// The mode.
    pub mode: Mode,
    /// Whether its rule allows it for the path.
    pub available: bool,
    /// Why it is unavailable; `None` when it is available.
    pub reason: Option<String>,
}

/// Evaluates `rules` (one per mode, e.g. from the shipped runbooks; a mode missing from the slice
/// uses `ModeRule::dataphin`, and the first entry wins if a mode appears twice) for the path.
pub fn advise(path: &UpgradePath, rules: &[(Mode, ModeRule)]) -> ModeAdvice {
    let modes: Vec<ModeOption> = Mode::ALL
        .iter()
        .map(|&mode| {
            let verdict = match rules.iter().find(|(m, _)| *m == mode) {
                Some((_, rule)) => rule.check(mode, path),
                None => ModeRule::dataphin(mode).check(mode, path),
            };
            ModeOption {
                mode,
                available: verdict.is_ok(),
                reason: verdict.err(),
            }
        })
        .collect();
    let available = |mode: Mode| modes.iter().any(|o| o.mode == mode && o.available);
    let span = format!("from {} to {}", path.current, path.target);

    if !Mode::ALL.iter().any(|&m| available(m)) {
        // The wizard still needs a preselection; downtime is the one Dataphin falls back to.
        let why = format!("No upgrade mode is available {span}; each mode gives its reason.");
        return ModeAdvice {
            modes,
            default: Mode::Downtime,
            recommended: Mode::Downtime,
            why,
        };
    }

    // Custom rules may even rule out downtime; then the wizard preselects what is left.
    let default = [Mode::ZeroDowntime, Mode::Downtime, Mode::SemiDowntime]
        .into_iter()
        .find(|&m| available(m))
        .unwrap_or(Mode::Downtime);
    let default_why = match default {
        Mode::ZeroDowntime => {
            format!("The default is zero-downtime because it is available {span}.")
        }
        _ => format!("The default is {default} because zero-downtime is not available {span}."),
    };

    let shares = path.shares_release();
    let first_choice = if shares {
        Mode::ZeroDowntime
    } else {
        Mode::SemiDowntime
    };
    let mut preference = vec![first_choice];
    for mode in [Mode::SemiDowntime, Mode::Downtime, Mode::ZeroDowntime] {
        if !preference.contains(&mode) {
            preference.push(mode);
        }
    }
    let rank = preference
        .iter()
        .position(|&m| available(m))
        .unwrap_or(preference.len() - 1);
    let recommended = preference[rank];
    let relation = if shares { "are equal" } else { "differ" };
    let cause = format!(
        "the {} of {} and {} {relation}",
        leading_segments_phrase(RELEASE_SEGMENTS),
        path.current,
        path.target
    );
    let recommended_why = if rank == 0 {
        format!("Dataphin recommends {recommended} because {cause}.")
    } else {
        let skipped: Vec<&str> = preference[..rank].iter().map(|m| m.as_str()).collect();
        let verb = if skipped.len() == 1 { "is" } else { "are" };
        format!(
            "Dataphin recommends {recommended}: {cause}, which calls for {first_choice}, \
             but {} {verb} not available.",
            skipped.join(" and ")
        )
    };

    ModeAdvice {
        modes,
        default,
        recommended,
        why: format!("{default_why} {recommended_why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn v(text: &str) -> Version {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn path(current: &str, target: &str, compatible: Option<bool>) -> UpgradePath {
        UpgradePath::new(v(current), v(target), compatible)
            .unwrap_or_else(|e| panic!("{current} -> {target} should be an upgrade: {e}"))
    }

    #[test]
    fn parses_accepted_versions() {
        let table: &[(&str, &[u32], &str)] = &[
            ("V5.1.2.02", &[5, 1, 2, 2], "V5.1.2.02"),
            ("5.1.1", &[5, 1, 1], "5.1.1"),
            ("v5.2", &[5, 2], "v5.2"),
            (" V5.1.2.02 ", &[5, 1, 2, 2], "V5.1.2.02"),
            ("\tV5.1.1\n", &[5, 1, 1], "V5.1.1"),
            ("5", &[5], "5"),
            ("1.2.3.4.5.6", &[1, 2, 3, 4, 5, 6], "1.2.3.4.5.6"),
            (
                "999999999.000000000",
                &[999_999_999, 0],
                "999999999.000000000",
            ),
            ("007.1", &[7, 1], "007.1"),
        ];
        for &(text, segments, shown) in table {
            let version = v(text);
            assert_eq!(version.segments(), segments, "segments of {text:?}");
            assert_eq!(version.to_string(), shown, "display of {text:?}");
        }
    }

    #[test]
    fn refuses_malformed_versions() {
        let table: &[(&str, &str)] = &[
            ("", "an empty string is not a version number"),
            ("   ", "an empty string is not a version number"),
            ("V", "`V` has no digits after the V"),
            (" v ", "`v` has no digits after the v"),
            ("5..1", "`5..1` has two dots in a row"),
            ("5.1.", "`5.1.` ends with a dot"),
            (".5.1", "`.5.1` has a dot before the first number"),
            ("V.5", "`V.5` has a dot before the first number"),
            (
                "5.1.x",
                "`5.1.x` is not a version number: `x` is not a decimal number",
            ),
            (
                "5.x.1",
                "`5.x.1` is not a version number: `x` is not a decimal number",
            ),
            ("-1", "`-1` is not a version number"),
            (
                "+5.1",
                "`+5.1` is not a version number: `+5` is not a decimal number",
            ),
            (
                "V 5.1",
                "`V 5.1` is not a version number: ` 5` is not a decimal number",
            ),
            ("VV5", "`VV5` is not a version number"),
            ("5,1", "`5,1` is not a version number"),
            (
                "V5.1.2-rc1",
                "`V5.1.2-rc1` is not a version number: `2-rc1` is not a decimal number",
            ),
            (
                "\u{0665}.1",
                "`\u{0665}.1` is not a version number: `\u{0665}` is not a decimal number",
            ),
            (
                "5.1.1.1.1.1.1",
                "`5.1.1.1.1.1.1` has 7 segments; a version has at most 6",
            ),
            (
                "5.1234567890",
                "`5.1234567890` has a segment longer than 9 digits (`1234567890`)",
            ),
        ];
        for &(text, message) in table {
            let err = text
                .parse::<Version>()
                .expect_err(&format!("{text:?} should be refused"));
            assert_eq!(err.message, message, "message for {text:?}");
            assert!(!err.hint.is_empty(), "hint for {text:?}");
        }
        let err = "5.x.1".parse::<Version>().unwrap_err();
        assert_eq!(err.hint, SYNTAX_HINT);
        assert_eq!(
            err.to_string(),
            "`5.x.1` is not a version number: `x` is not a decimal number; write it like \
             V5.1.2.02 or 5.1.1: digits separated by dots, optionally prefixed by V"
        );
    }

    #[test]
    fn orders_numerically() {
        let table: &[(&str, &str, Ordering)] = &[
            ("V5.1.2.02", "V5.1.2.04", Ordering::Less),
            ("5.1.10", "5.1.9", Ordering::Greater),
            ("v5.2", "5.2.0", Ordering::Equal),
            ("5.1.1", "V5.1.1", Ordering::Equal),
            ("V5.1.2.02", "5.1.2.2", Ordering::Equal),
            ("5.1", "5.1.0.1", Ordering::Less),
            ("5.2", "5.1.9.9", Ordering::Greater),
            ("10", "9.9.9", Ordering::Greater),
        ];
        for &(a, b, expected) in table {
            let (a_v, b_v) = (v(a), v(b));
            assert_eq!(a_v.cmp(&b_v), expected, "{a} vs {b}");
            assert_eq!(b_v.cmp(&a_v), expected.reverse(), "{b} vs {a}");
            assert_eq!(a_v == b_v, expected == Ordering::Equal, "{a} == {b}");
        }
    }

    #[test]
    fn hash_agrees_with_equality() {
        let set: HashSet<Version> = ["v5.2", "5.2.0", "5.2.0.0", "V5.2", "5.2.0.1"]
            .into_iter()
            .map(v)
            .collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&v("5.2.0.0.0")));
        assert!(set.contains(&v("5.2.0.01")));
    }

    #[test]
    fn compares_leading_segments() {
        let table: &[(&str, &str, usize, bool)] = &[
            ("V5.1.2.02", "V5.1.2.04", 3, true),
            ("V5.1.2.02", "V5.1.3.01", 3, false),
            ("V5.1.2.02", "V5.1.3.01", 2, true),
            ("5.1", "5.1.0.3", 3, true),
            ("5.1", "5.1.1", 3, false),
            ("5", "6", 0, true),
            ("V5.1.2.02", "5.1.2.2", 6, true),
        ];
        for &(a, b, n, expected) in table {
            assert_eq!(
                v(a).same_leading_segments(&v(b), n),
                expected,
                "{a} / {b} / {n}"
            );
        }
    }

    #[test]
    fn upgrade_path_refuses_downgrade_and_reinstall() {
        let err = UpgradePath::new(v("V5.1.2"), v("V5.1.0"), None).unwrap_err();
        assert_eq!(
            err.message,
            "target V5.1.0 is older than the current version V5.1.2: runbook does not downgrade"
        );
        assert_eq!(
            err.hint,
            "choose a target newer than V5.1.2, or restore the backup taken before the upgrade \
             to go back to V5.1.0"
        );

        let err = UpgradePath::new(v("V5.1.2"), v("V5.1.2"), Some(true)).unwrap_err();
        assert_eq!(err.message, "target V5.1.2 is already installed");
        assert_eq!(err.hint, "choose a target newer than V5.1.2");

        let err = UpgradePath::new(v("V5.1.2.2"), v("V5.1.2.02"), None).unwrap_err();
        assert_eq!(
            err.message,
            "target V5.1.2.02 is already installed (as V5.1.2.2)"
        );

        let ok = UpgradePath::new(v("5.1.9"), v("5.1.10"), Some(true)).unwrap();
        assert_eq!(ok.current, v("5.1.9"));
        assert_eq!(ok.target, v("5.1.10"));
        assert_eq!(ok.zero_downtime_compatible, Some(true));
    }

    const SEMI_TOO_OLD_503: &str =
        "semi-downtime needs the current version to be 5.1.1 or later; it is V5.0.3";

    struct Case {
        current: &'static str,
        target: &'static str,
        compatible: Option<bool>,
        /// Reasons for semi-downtime, downtime, zero-downtime; `None` means available.
        reasons: [Option<&'static str>; 3],
        default: Mode,
        recommended: Mode,
        why: &'static str,
    }

    #[test]
    fn advises_with_dataphin_rules() {
        let table = [
            // The zero-downtime page's own example.
            Case {
                current: "V5.1.2.02",
                target: "V5.1.2.04",
                compatible: None,
                reasons: [None, None, None],
                default: Mode::ZeroDowntime,
                recommended: Mode::ZeroDowntime,
                why: "The default is zero-downtime because it is available from V5.1.2.02 to \
                      V5.1.2.04. Dataphin recommends zero-downtime because the first three \
                      segments of V5.1.2.02 and V5.1.2.04 are equal.",
            },
            Case {
                current: "V5.0.3",
                target: "V5.1.0",
                compatible: None,
                reasons: [
                    Some(SEMI_TOO_OLD_503),
                    None,
                    Some(
                        "zero-downtime needs the first three segments of current and target \
                         to be equal (V5.0.3 vs V5.1.0)",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::Downtime,
                why: "The default is downtime because zero-downtime is not available from \
                      V5.0.3 to V5.1.0. Dataphin recommends downtime: the first three segments \
                      of V5.0.3 and V5.1.0 differ, which calls for semi-downtime, but \
                      semi-downtime is not available.",
            },
            Case {
                current: "5.1.1",
                target: "5.2.0",
                compatible: Some(true),
                reasons: [
                    None,
                    None,
                    Some(
                        "zero-downtime needs the first three segments of current and target \
                         to be equal (5.1.1 vs 5.2.0)",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::SemiDowntime,
                why: "The default is downtime because zero-downtime is not available from \
                      5.1.1 to 5.2.0. Dataphin recommends semi-downtime because the first \
                      three segments of 5.1.1 and 5.2.0 differ.",
            },
            Case {
                current: "V5.1.2.02",
                target: "V5.1.2.04",
                compatible: Some(false),
                reasons: [
                    None,
                    None,
                    Some(
                        "the target version V5.1.2.04 declares itself incompatible with \
                         zero-downtime upgrades",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::SemiDowntime,
                why: "The default is downtime because zero-downtime is not available from \
                      V5.1.2.02 to V5.1.2.04. Dataphin recommends semi-downtime: the first \
                      three segments of V5.1.2.02 and V5.1.2.04 are equal, which calls for \
                      zero-downtime, but zero-downtime is not available.",
            },
            // Both zero-downtime conditions fail: the operator gets both.
            Case {
                current: "V5.1.2.02",
                target: "V5.1.3.01",
                compatible: Some(false),
                reasons: [
                    None,
                    None,
                    Some(
                        "zero-downtime needs the first three segments of current and target \
                         to be equal (V5.1.2 vs V5.1.3); the target version V5.1.3.01 \
                         declares itself incompatible with zero-downtime upgrades",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::SemiDowntime,
                why: "The default is downtime because zero-downtime is not available from \
                      V5.1.2.02 to V5.1.3.01. Dataphin recommends semi-downtime because the \
                      first three segments of V5.1.2.02 and V5.1.3.01 differ.",
            },
            // Below 5.1.1 zero-downtime is still offered within a release line.
            Case {
                current: "V5.0.3.01",
                target: "V5.0.3.02",
                compatible: Some(true),
                reasons: [
                    Some(
                        "semi-downtime needs the current version to be 5.1.1 or later; \
                         it is V5.0.3.01",
                    ),
                    None,
                    None,
                ],
                default: Mode::ZeroDowntime,
                recommended: Mode::ZeroDowntime,
                why: "The default is zero-downtime because it is available from V5.0.3.01 to \
                      V5.0.3.02. Dataphin recommends zero-downtime because the first three \
                      segments of V5.0.3.01 and V5.0.3.02 are equal.",
            },
            Case {
                current: "V5.0.3.01",
                target: "V5.0.3.02",
                compatible: Some(false),
                reasons: [
                    Some(
                        "semi-downtime needs the current version to be 5.1.1 or later; \
                         it is V5.0.3.01",
                    ),
                    None,
                    Some(
                        "the target version V5.0.3.02 declares itself incompatible with \
                         zero-downtime upgrades",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::Downtime,
                why: "The default is downtime because zero-downtime is not available from \
                      V5.0.3.01 to V5.0.3.02. Dataphin recommends downtime: the first three \
                      segments of V5.0.3.01 and V5.0.3.02 are equal, which calls for \
                      zero-downtime, but zero-downtime and semi-downtime are not available.",
            },
            // Missing segments are zeros, and the quoted prefix keeps the operator's spelling.
            Case {
                current: "v5.1",
                target: "5.1.1.3",
                compatible: None,
                reasons: [
                    Some(
                        "semi-downtime needs the current version to be 5.1.1 or later; it is v5.1",
                    ),
                    None,
                    Some(
                        "zero-downtime needs the first three segments of current and target \
                         to be equal (v5.1.0 vs 5.1.1)",
                    ),
                ],
                default: Mode::Downtime,
                recommended: Mode::Downtime,
                why: "The default is downtime because zero-downtime is not available from \
                      v5.1 to 5.1.1.3. Dataphin recommends downtime: the first three segments \
                      of v5.1 and 5.1.1.3 differ, which calls for semi-downtime, but \
                      semi-downtime is not available.",
            },
        ];
        for case in table {
            let label = format!(
                "{} -> {} ({:?})",
                case.current, case.target, case.compatible
            );
            let upgrade = path(case.current, case.target, case.compatible);
            let advice = advise(&upgrade, &[]);
            let expected: Vec<ModeOption> = Mode::ALL
                .iter()
                .zip(case.reasons)
                .map(|(&mode, reason)| ModeOption {
                    mode,
                    available: reason.is_none(),
                    reason: reason.map(str::to_owned),
                })
                .collect();
            assert_eq!(advice.modes, expected, "{label}");
            assert_eq!(advice.default, case.default, "default for {label}");
            assert_eq!(
                advice.recommended, case.recommended,
                "recommended for {label}"
            );
            assert_eq!(advice.why, case.why, "why for {label}");
            for (&mode, reason) in Mode::ALL.iter().zip(case.reasons) {
                assert_eq!(
                    ModeRule::dataphin(mode).check(mode, &upgrade),
                    reason.map_or(Ok(()), |r| Err(r.to_owned())),
                    "{mode} for {label}"
                );
            }
        }
    }

    #[test]
    fn runbook_rules_override_dataphin_rules() {
        let upgrade = path("5.1.1", "5.1.3", None);
        let relaxed = ModeRule {
            same_leading_segments: Some(2),
            ..ModeRule::default()
        };
        let advice = advise(&upgrade, &[(Mode::ZeroDowntime, relaxed)]);
        assert!(advice.modes.iter().all(|o| o.available));
        assert_eq!(advice.default, Mode::ZeroDowntime);
        // The recommendation follows Dataphin's release line, not the runbook's rule.
        assert_eq!(advice.recommended, Mode::SemiDowntime);

        let strict = ModeRule {
            same_leading_segments: Some(1),
            current_at_least: Some(v("V6")),
            target_must_be_compatible: false,
        };
        let upgrade = path("5.1.1", "6.0.0", None);
        let rules: Vec<(Mode, ModeRule)> = Mode::ALL.iter().map(|&m| (m, strict.clone())).collect();
        let advice = advise(&upgrade, &rules);
        assert_eq!(
            advice.modes[1].reason.as_deref(),
            Some(
                "downtime needs the current version to be V6 or later; it is 5.1.1; downtime \
                 needs the first segment of current and target to be equal (5 vs 6)"
            )
        );
        assert!(advice.modes.iter().all(|o| !o.available));
        assert_eq!(advice.default, Mode::Downtime);
        assert_eq!(advice.recommended, Mode::Downtime);
        assert_eq!(
            advice.why,
            "No upgrade mode is available from 5.1.1 to 6.0.0; each mode gives its reason."
        );
    }

    #[test]
    fn serde_round_trips_as_text() {
        let version: Version = serde_json::from_str("\" V5.1.2.02 \"").unwrap();
        assert_eq!(version.segments(), &[5, 1, 2, 2]);
        assert_eq!(serde_json::to_string(&version).unwrap(), "\"V5.1.2.02\"");

        let err = serde_json::from_str::<Version>("\"5.x.1\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`5.x.1` is not a version number: `x` is not a decimal number; write it like V5.1.2.02"),
            "{err}"
        );
        assert!(serde_json::from_str::<Version>("5.1").is_err());

        let rule: ModeRule = toml::from_str(
            "current_at_least = \"V5.1.1\"\nsame_leading_segments = 3\n\
             target_must_be_compatible = true\n",
        )
        .unwrap();
        assert_eq!(
            rule,
            ModeRule {
                current_at_least: Some(v("5.1.1")),
                same_leading_segments: Some(3),
                target_must_be_compatible: true,
            }
        );
        let err = toml::from_str::<ModeRule>("current_at_least = \"5..1\"\n").unwrap_err();
        assert!(
            err.to_string().contains("`5..1` has two dots in a row"),
            "{err}"
        );

        assert_eq!(serde_json::to_string(&ModeRule::default()).unwrap(), "{}");
        assert_eq!(
            serde_json::to_string(&ModeRule::dataphin(Mode::SemiDowntime)).unwrap(),
            "{\"current_at_least\":\"5.1.1\"}"
        );

        let advice = advise(&path("V5.1.2.02", "V5.1.2.04", None), &[]);
        let json = serde_json::to_value(&advice).unwrap();
        assert_eq!(json["default"], "zero-downtime");
        assert_eq!(json["modes"][0]["mode"], "semi-downtime");
        assert_eq!(json["modes"][0]["reason"], serde_json::Value::Null);
    }

    #[test]
    fn schema_describes_versions_and_rules() {
        let schema = serde_json::to_value(schemars::schema_for!(ModeRule)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let version = &schema["$defs"]["Version"];
        assert_eq!(version["type"], "string");
        assert_eq!(version["pattern"], VERSION_PATTERN);
        assert!(
            version["description"]
                .as_str()
                .unwrap()
                .contains("V5.1.2.02")
        );
        assert_eq!(
            schema["properties"]["same_leading_segments"]["description"],
            "The first N segments of current and target must be equal (zero-downtime: 3);\nN is 1 to 8."
        );
        assert_eq!(schema["properties"]["same_leading_segments"]["maximum"], 8);
    }
}
