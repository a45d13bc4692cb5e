//! Inline SVG charts for the HTML report: the instance status distribution
//! as a donut and the 7-day instance counts as stacked columns.
//!
//! The SVG is generated here, from numbers and the fixed status names, and
//! handed to the template as trusted markup; the few text labels are still
//! escaped so that a site's data can never inject markup through them.

use std::fmt::Write as _;

use handlebars::html_escape;

/// One slice of the donut or one part of a column.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The status name shown in the legend.
    pub label: String,
    /// The count.
    pub value: u64,
    /// The fill colour (a CSS colour; fixed per status).
    pub color: &'static str,
}

/// One day of the column chart.
#[derive(Clone, Debug)]
pub struct Column {
    /// The data timestamp, `YYYY-MM-DD`.
    pub label: String,
    /// Its parts, bottom first.
    pub segments: Vec<Segment>,
}

/// The colour of each instance status, shared by both charts and the
/// legends so that a status reads the same everywhere.
pub fn status_color(status: &str) -> &'static str {
    match status {
        "succeeded" => "#2e9d62",
        "failed" => "#d64545",
        "running" => "#3b7dd8",
        "waiting" => "#e3a32b",
        "not_run" => "#9aa5b1",
        "stopped" => "#7d5ba6",
        _ => "#c4ccd4",
    }
}

/// The status distribution as a donut with the total in its middle.
pub fn donut(segments: &[Segment], title: &str) -> String {
    const R: f64 = 70.0;
    const WIDTH: f64 = 28.0;
    let circumference = 2.0 * std::f64::consts::PI * R;
    let total: u64 = segments.iter().map(|s| s.value).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart donut" viewBox="0 0 200 200" width="200" height="200" role="img" aria-labelledby="donut-title"><title id="donut-title">{}</title>"#,
        html_escape(title)
    );
    let _ = write!(
        svg,
        r##"<circle cx="100" cy="100" r="{R}" fill="none" stroke="#e8ecf0" stroke-width="{WIDTH}"/>"##
    );
    if total > 0 {
        // Each slice is the same circle with a dash as long as its share,
        // offset by the slices before it; starting at 12 o'clock.
        let mut before = 0.0;
        for s in segments.iter().filter(|s| s.value > 0) {
            let len = circumference * s.value as f64 / total as f64;
            let _ = write!(
                svg,
                r#"<circle cx="100" cy="100" r="{R}" fill="none" stroke="{}" stroke-width="{WIDTH}" stroke-dasharray="{len:.2} {rest:.2}" stroke-dashoffset="{offset:.2}" transform="rotate(-90 100 100)"><title>{}: {}</title></circle>"#,
                s.color,
                html_escape(&s.label),
                s.value,
                rest = circumference - len,
                offset = -before,
            );
            before += len;
        }
    }
    let _ = write!(
        svg,
        r##"<text x="100" y="98" text-anchor="middle" font-size="26" font-weight="600" fill="#1f2933">{total}</text><text x="100" y="120" text-anchor="middle" font-size="12" fill="#52606d">instances</text></svg>"##
    );
    svg
}

/// The 7-day counts as stacked columns, each labelled with its total.
pub fn columns(days: &[Column], title: &str) -> String {
    const HEIGHT: f64 = 180.0;
    const TOP: f64 = 24.0;
    const LEFT: f64 = 8.0;
    const SLOT: f64 = 78.0;
    const BAR: f64 = 44.0;
    let width = LEFT * 2.0 + SLOT * days.len() as f64;
    let max = days
        .iter()
        .map(|d| d.segments.iter().map(|s| s.value).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart columns" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" aria-labelledby="columns-title"><title id="columns-title">{}</title>"#,
        html_escape(title),
        h = HEIGHT + TOP + 34.0,
    );
    let base = TOP + HEIGHT;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}" stroke="#9aa5b1" stroke-width="1"/>"##,
        x2 = width - LEFT
    );
    for (i, day) in days.iter().enumerate() {
        let x = LEFT + SLOT * i as f64 + (SLOT - BAR) / 2.0;
        let total: u64 = day.segments.iter().map(|s| s.value).sum();
        let mut y = base;
        for s in day.segments.iter().filter(|s| s.value > 0) {
            let h = HEIGHT * s.value as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.2}" width="{BAR}" height="{h:.2}" fill="{}"><title>{} {}: {}</title></rect>"#,
                s.color,
                html_escape(&day.label),
                html_escape(&s.label),
                s.value
            );
        }
        let centre = x + BAR / 2.0;
        let shown = if total == 0 {
            "none".to_owned()
        } else {
            total.to_string()
        };
        let _ = write!(
            svg,
            r##"<text x="{centre:.1}" y="{ty:.2}" text-anchor="middle" font-size="11" fill="#1f2933">{shown}</text><text x="{centre:.1}" y="{ly}" text-anchor="middle" font-size="11" fill="#52606d">{}</text>"##,
            html_escape(day.label.get(5..).unwrap_or(&day.label)),
            ty = y - 6.0,
            ly = base + 18.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(label: &str, value: u64) -> Segment {
        Segment {
            label: label.into(),
            value,
            color: status_color(label),
        }
    }

    #[test]
    fn donut_slices_add_up_to_the_circle() {
        let svg = donut(&[seg("succeeded", 3), seg("failed", 1)], "status");
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        // 3/4 and 1/4 of 2πr with r = 70.
        assert!(svg.contains(r#"stroke-dasharray="329.87 109.96""#), "{svg}");
        assert!(svg.contains(r#"stroke-dasharray="109.96 329.87" stroke-dashoffset="-329.87""#));
        assert!(svg.contains(">4</text>"));
    }

    #[test]
    fn empty_charts_still_render() {
        let svg = donut(&[seg("succeeded", 0)], "none");
        assert!(!svg.contains("stroke-dasharray"));
        let svg = columns(
            &[Column {
                label: "2026-03-01".into(),
                segments: vec![seg("succeeded", 0)],
            }],
            "week",
        );
        assert!(svg.contains(">none</text>") && svg.contains(">03-01</text>"));
    }

    #[test]
    fn the_tallest_column_fills_the_chart() {
        let day = |label: &str, n| Column {
            label: label.into(),
            segments: vec![seg("succeeded", n), seg("failed", n / 4)],
        };
        let svg = columns(&[day("2026-03-01", 100), day("2026-03-02", 40)], "week");
        assert!(
            svg.contains(r#"y="24.00" width="44" height="36.00""#),
            "{svg}"
        );
        assert!(svg.contains(">125</text>") && svg.contains(">50</text>"));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = donut(&[seg("<b>", 1)], "<script>");
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
    }
}
