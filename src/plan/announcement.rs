//! The maintenance announcement in its three forms.
//!
//! The template (`templates/announcement.md.hbs`, or a site's or upgrade
//! file's own) renders Markdown; the plain text the platform's front end
//! shows and the HTML fragment for mail and intranet pages are derived
//! from it with a Markdown parser, so the three always say the same thing.
//! Raw HTML in the Markdown (from a template or a value) is escaped in the
//! fragment, never passed through.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

/// One announcement, rendered three ways.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Plain text: what `enter_maintenance` hands the platform.
    pub text: String,
    /// Markdown, as the template rendered it.
    pub markdown: String,
    /// An HTML fragment (no document around it).
    pub html: String,
}

impl Announcement {
    /// All three forms from the rendered Markdown.
    pub fn from_markdown(markdown: &str) -> Announcement {
        Announcement {
            text: text(markdown),
            markdown: markdown.to_owned(),
            html: html(markdown),
        }
    }
}

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH)
}

/// The HTML fragment: Markdown rendered, raw HTML escaped.
pub fn html(markdown: &str) -> String {
    let events = parser(markdown).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Plain text: markup dropped, list items as "- ", paragraphs apart.
pub fn text(markdown: &str) -> String {
    let mut out = String::new();
    for event in parser(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) => out.push_str("- "),
            Event::End(TagEnd::Item) => out.push('\n'),
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_)) => out.push_str("\n\n"),
            Event::End(TagEnd::List(_)) => out.push('\n'),
            _ => {}
        }
    }
    // A list item's paragraph ends with a blank line of its own.
    let mut text = out.replace("\n\n- ", "\n- ");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    match text.trim_end() {
        "" => String::new(),
        t => format!("{t}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "**Planned maintenance**\n\nEstimated completion: **2026-03-02 04:00**.\n\nWhat this means for you:\n- You cannot log on.\n- Alerting is off.\n\nContact: ops@example.com, +86 571 8888-0000.\n";

    #[test]
    fn text_drops_markup_and_keeps_the_list() {
        assert_eq!(
            text(SAMPLE),
            "Planned maintenance\n\nEstimated completion: 2026-03-02 04:00.\n\nWhat this means for you:\n- You cannot log on.\n- Alerting is off.\n\nContact: ops@example.com, +86 571 8888-0000.\n"
        );
    }

    #[test]
    fn no_announcement_is_empty_in_every_form() {
        assert_eq!(Announcement::from_markdown(""), Announcement::default());
    }

    #[test]
    fn html_is_a_fragment_with_raw_html_escaped() {
        let html = html("Contact: <script>alert(1)</script> *now*\n");
        assert_eq!(
            html,
            "<p>Contact: &lt;script&gt;alert(1)&lt;/script&gt; <em>now</em></p>\n"
        );
        let sample = super::html(SAMPLE);
        assert!(sample.contains("<li>You cannot log on.</li>"), "{sample}");
        assert!(!sample.contains("<html"));
    }
}
