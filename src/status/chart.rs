//! Small inline SVG line charts for the status page: markup only (no script, no image
//! request, nothing the page's Content-Security-Policy has to allow), one polyline per series
//! over the last hour, every name escaped. Each polyline and legend entry carries
//! `data-series` so tests and scrapers can find it.

use std::fmt::Write as _;

use super::history::Series;
use super::page::escape;

/// Drawing width in pixels: 59 steps of 5 between 60 minutes.
pub const WIDTH: u64 = 295;
/// Drawing height in pixels; a count of zero sits on the bottom line.
pub const HEIGHT: u64 = 60;
/// Room above the top and below the bottom, so a peak's stroke is not cut off.
const MARGIN: u64 = 2;

/// Line colours, in series order (repeated past the end), readable on the page's background.
const PALETTE: [&str; 8] = [
    "#1f4f8f", "#b3362c", "#1f6f43", "#8a5a00", "#6b3fa0", "#0f7b84", "#7a7a7a", "#c2185b",
];

/// The polyline `points` of `values` scaled so that `max` reaches the top: x spread evenly over
/// [`WIDTH`] (oldest at 0), y from [`HEIGHT`] (zero) up to 0 (`max`).
pub fn points(values: &[u64], max: u64) -> String {
    let max = u128::from(max.max(1));
    let steps = values.len().saturating_sub(1).max(1) as u128;
    let mut out = String::with_capacity(values.len() * 8);
    for (i, value) in values.iter().enumerate() {
        let x = i as u128 * u128::from(WIDTH) / steps;
        let height = u128::from(HEIGHT);
        // Rounded to the nearest pixel; never above the top.
        let y = height - (u128::from(*value).min(max) * height + max / 2) / max;
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{x},{y}");
    }
    out
}

/// Colour of the series at `index`.
fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// A captioned chart of `series` (all on one scale) with a legend of each one's hour total.
pub fn render(id: &str, title: &str, series: &[Series]) -> String {
    let peak = series
        .iter()
        .flat_map(|s| s.per_minute.iter().copied())
        .max()
        .unwrap_or(0);
    let title = escape(title);
    let mut out = format!(
        "<figure class=\"chart\" id=\"chart-{id}\"><figcaption>{title} <span class=\"peak\">\
         (peak {peak}/min)</span></figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{h}\" viewBox=\"0 -{MARGIN} {WIDTH} {h}\" role=\"img\" \
         aria-label=\"{title}\"><title>{title}</title>\
         <line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#c9ccd1\"/>",
        id = escape(id),
        h = HEIGHT + 2 * MARGIN,
    );
    // Drawn last to first, so the first series stays on top where lines overlap (at zero).
    for (i, s) in series.iter().enumerate().rev() {
        let _ = write!(
            out,
            "<polyline data-series=\"{name}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"{points}\">\
             <title>{name}</title></polyline>",
            name = escape(&s.name),
            colour = colour(i),
            points = points(&s.per_minute, peak),
        );
    }
    out.push_str("</svg>\n<div class=\"legend\">");
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<span data-series=\"{name}\"><i style=\"background:{colour}\"></i>{name} {total}</span>",
            name = escape(&s.name),
            colour = colour(i),
            total = s.per_minute.iter().sum::<u64>(),
        );
    }
    out.push_str(
        "</div><div class=\"axis\"><span>60 min ago</span><span>now</span></div></figure>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, per_minute: Vec<u64>) -> Series {
        Series {
            name: name.into(),
            per_minute,
        }
    }

    #[test]
    fn points_spread_over_the_width_and_scale_to_the_peak() {
        assert_eq!(points(&[0, 2, 4], 4), "0,60 147,30 295,0");
        // Sixty minutes are 5 px apart; an all-zero hour lies on the bottom line.
        let flat = points(&[0; 60], 0);
        assert!(flat.starts_with("0,60 5,60 10,60 "), "{flat}");
        assert!(flat.ends_with(" 290,60 295,60"), "{flat}");
        // Rounding to the nearest pixel, never above the top.
        assert_eq!(points(&[1, 3], 3), "0,40 295,0");
        assert_eq!(points(&[7, u64::MAX], u64::MAX), "0,60 295,0");
        assert_eq!(points(&[5], 5), "0,0");
        assert_eq!(points(&[], 0), "");
    }

    #[test]
    fn a_chart_has_a_line_and_a_legend_per_series_all_escaped() {
        let svg = render(
            "logins",
            "Logins <per> minute",
            &[
                series("ok", vec![0, 1, 2]),
                series("<b>\"x\"</b>", vec![2, 0, 0]),
            ],
        );
        assert!(
            svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<polyline ").count(), 2);
        assert!(svg.contains("data-series=\"ok\" fill=\"none\" stroke=\"#1f4f8f\""));
        assert!(svg.contains("points=\"0,60 147,30 295,0\""), "{svg}");
        assert!(svg.contains("points=\"0,0 147,60 295,60\""), "{svg}");
        assert!(svg.contains("(peak 2/min)"));
        assert!(svg.contains("Logins &lt;per&gt; minute"));
        assert!(
            svg.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt; 2</span>"),
            "{svg}"
        );
        assert!(!svg.contains("<b>") && !svg.contains("<per>"));
        assert!(svg.contains("<span data-series=\"ok\">") && svg.contains("ok 3</span>"));
    }
}
