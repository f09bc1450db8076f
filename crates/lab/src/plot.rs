//! Series to inline SVG, with `plotters`' SVG backend (no fonts, no bitmaps:
//! the text is SVG `<text>`, so the HTML report needs nothing else).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::report::{PlotKind, Scale, Series};

/// Plot size in pixels.
const WIDTH: u32 = 760;
const HEIGHT: u32 = 400;

/// Renders one series as a standalone `<svg>` element.
///
/// Points that cannot be drawn (non-finite, or non-positive on a log axis)
/// are left out; a series with nothing left to draw renders as an empty
/// frame saying so, so every series still gets its plot.
pub fn svg(series: &Series) -> String {
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .lines
        .iter()
        .map(|l| {
            let pts = l
                .points
                .iter()
                .map(|p| (p[0], p[1]))
                .filter(|&(x, y)| drawable(x, series.x.scale) && drawable(y, series.y.scale))
                .collect();
            (l.name.clone(), pts)
        })
        .collect();
    let all = lines.iter().flat_map(|(_, p)| p.iter().copied());
    let (Some(xr), Some(yr)) = (
        bounds(all.clone().map(|p| p.0), series.x.scale),
        bounds(all.map(|p| p.1), series.y.scale),
    ) else {
        return empty_svg();
    };
    let mut out = String::new();
    let drawn = match (series.x.scale, series.y.scale) {
        (Scale::Linear, Scale::Linear) => draw(&mut out, series, &lines, xr.0..xr.1, yr.0..yr.1),
        (Scale::Linear, Scale::Log) => draw(
            &mut out,
            series,
            &lines,
            xr.0..xr.1,
            (yr.0..yr.1).log_scale(),
        ),
        (Scale::Log, Scale::Linear) => draw(
            &mut out,
            series,
            &lines,
            (xr.0..xr.1).log_scale(),
            yr.0..yr.1,
        ),
        (Scale::Log, Scale::Log) => draw(
            &mut out,
            series,
            &lines,
            (xr.0..xr.1).log_scale(),
            (yr.0..yr.1).log_scale(),
        ),
    };
    match drawn {
        Ok(()) => out,
        Err(_) => empty_svg(),
    }
}

/// The colour of line `i` in every plot, as `#rrggbb`.
pub fn line_color(i: usize) -> String {
    let c = Palette99::pick(i).to_rgba();
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The legend of a series, drawn beside the plot rather than over its data:
/// one coloured mark and name per line, as HTML.
pub fn legend_html(series: &Series) -> String {
    if series.lines.len() < 2 && series.lines.iter().all(|l| l.name.is_empty()) {
        return String::new();
    }
    let mut out = String::from("<ul class=\"legend\">");
    for (i, l) in series.lines.iter().enumerate() {
        out.push_str(&format!(
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            line_color(i),
            crate::render::escape(&l.name)
        ));
    }
    out.push_str("</ul>");
    out
}

fn drawable(v: f64, scale: Scale) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
}

/// The range to draw: the data's extent, widened when it is a single value,
/// and on linear axes starting at zero when all values are positive and
/// zero is not far away.
fn bounds(values: impl Iterator<Item = f64>, scale: Scale) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    match scale {
        Scale::Linear => {
            if lo > 0.0 && lo < hi * 0.5 {
                lo = 0.0;
            }
            if lo == hi {
                let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
                lo -= pad;
                hi += pad;
            } else {
                let pad = (hi - lo) * 0.05;
                hi += pad;
                if lo != 0.0 {
                    lo -= pad;
                }
            }
        }
        Scale::Log => {
            if lo == hi {
                lo /= 2.0;
                hi *= 2.0;
            } else {
                hi *= 1.2;
                lo /= 1.2;
            }
        }
    }
    Some((lo, hi))
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw<X, Y>(
    out: &mut String,
    series: &Series,
    lines: &[(String, Vec<(f64, f64)>)],
    x: X,
    y: Y,
) -> DrawResult
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(series.x.caption())
        .y_desc(series.y.caption())
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for (i, (_, pts)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = ShapeStyle::from(&color).stroke_width(2);
        match series.kind {
            PlotKind::Line => chart.draw_series(
                LineSeries::new(pts.iter().copied(), style).point_size(if pts.len() <= 40 {
                    3
                } else {
                    0
                }),
            )?,
            PlotKind::Scatter => chart.draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, ShapeStyle::from(&color).filled())),
            )?,
        };
    }
    root.present()?;
    Ok(())
}

/// Tick labels: integers plainly, large and small values compactly.
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

fn empty_svg() -> String {
    format!(
        r##"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg"><rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#FFFFFF" stroke="#CCCCCC"/><text x="{}" y="{}" text-anchor="middle" font-family="sans-serif" font-size="16">no data to plot</text></svg>"##,
        WIDTH / 2,
        HEIGHT / 2
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Axis;

    fn series(scale: Scale) -> Series {
        let mut s = Series::new(
            "t",
            Axis {
                label: "x".into(),
                unit: "".into(),
                scale,
            },
            Axis::linear("y", "pages"),
        );
        s.line("a", vec![[1.0, 2.0], [10.0, 3.0], [100.0, 5.0]]);
        s.line("b", vec![[1.0, 1.0], [100.0, 4.0]]);
        s
    }

    #[test]
    fn renders_one_path_per_line_and_a_legend_beside_it() {
        let s = series(Scale::Linear);
        let out = svg(&s);
        assert!(out.starts_with("<svg"), "{}", &out[..40]);
        let drawn = out
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .count();
        assert_eq!(
            drawn, 2,
            "one polyline per line, no legend marks over the data"
        );
        assert!(out.contains(&format!("stroke=\"{}\"", line_color(1).to_uppercase())));
        assert!(out.contains("y (pages)"));
        let legend = legend_html(&s);
        assert_eq!(legend.matches("<li>").count(), 2);
        assert!(legend.contains(&format!("background:{}\"></span>b</li>", line_color(1))));
    }

    #[test]
    fn log_axes_drop_non_positive_points() {
        let mut s = series(Scale::Log);
        s.line("zero", vec![[0.0, 1.0]]);
        let out = svg(&s);
        assert!(out.starts_with("<svg") && !out.contains("no data to plot"));
    }

    #[test]
    fn nothing_drawable_gives_an_empty_frame() {
        let mut s = Series::new("t", Axis::log("x", ""), Axis::linear("y", ""));
        s.line("neg", vec![[-1.0, 1.0], [f64::NAN, 2.0]]);
        assert!(svg(&s).contains("no data to plot"));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(svg(&series(Scale::Log)), svg(&series(Scale::Log)));
    }

    #[test]
    fn single_value_ranges_are_widened() {
        assert_eq!(bounds([5.0].into_iter(), Scale::Linear), Some((4.5, 5.5)));
        assert_eq!(bounds([0.0].into_iter(), Scale::Linear), Some((-1.0, 1.0)));
        assert_eq!(bounds([4.0].into_iter(), Scale::Log), Some((2.0, 8.0)));
        assert_eq!(bounds(std::iter::empty(), Scale::Linear), None);
    }
}
