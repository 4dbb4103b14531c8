//! SVG line plots (plotters' SVG backend only: no font or bitmap stack).

use std::path::Path;

use plotters::prelude::*;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line plot of `series` into `path`; `log_x` for sizes and counts that
/// grow geometrically.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if pts.is_empty() {
        return Err("nothing to plot".into());
    }
    let x_max = pts.iter().map(|p| p.0).fold(f64::MIN, f64::max);
    let x_min = pts.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min * 0.9..x_max * 1.1).log_scale(), 0.0..y_max.max(1e-9))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Gather per-contender series from tables keyed by an x value.
pub fn series_from(points: &[(f64, Vec<(String, f64)>)], scale: f64) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for (x, medians) in points {
        for (name, secs) in medians {
            let y = secs * scale;
            match out.iter_mut().find(|s| &s.name == name) {
                Some(s) => s.points.push((*x, y)),
                None => out.push(Series {
                    name: name.clone(),
                    points: vec![(*x, y)],
                }),
            }
        }
    }
    out
}
