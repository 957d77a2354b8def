//! The benchmarks' charts: lines over the seconds of a run (latency, lag,
//! memory) and horizontal bars of a throughput beside its baseline, written
//! as SVG. The text stays SVG text, set by whatever shows the file, so
//! drawing needs no font files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Latencies;

const WIDTH: u32 = 1000;
const FONT: &str = "sans-serif";
/// Sizes of text as plotters takes them (it writes size / 1.24 into the SVG).
const TITLE: u32 = 24;
const LABEL: u32 = 15;
const SMALL: u32 = 14;
/// A guess at the width of a character of LABEL text, for laying out labels.
const CHAR_WIDTH: u32 = 7;
/// The plot of a line chart, above its legend.
const PLOT_HEIGHT: u32 = 480;

/// Dark and light shades of eight hues (Tableau's): a line takes the dark
/// one; the p99 beside a p50 takes its light twin.
const HUES: [(RGBColor, RGBColor); 8] = [
    (RGBColor(31, 119, 180), RGBColor(174, 199, 232)),
    (RGBColor(255, 127, 14), RGBColor(255, 187, 120)),
    (RGBColor(44, 160, 44), RGBColor(152, 223, 138)),
    (RGBColor(214, 39, 40), RGBColor(255, 152, 150)),
    (RGBColor(148, 103, 189), RGBColor(197, 176, 213)),
    (RGBColor(140, 86, 75), RGBColor(196, 156, 148)),
    (RGBColor(227, 119, 194), RGBColor(247, 182, 210)),
    (RGBColor(127, 127, 127), RGBColor(199, 199, 199)),
];
const GRID: RGBColor = RGBColor(210, 210, 210);
const MARK: RGBColor = RGBColor(150, 150, 150);

/// A chart that renders itself as an SVG document.
pub trait Chart {
    fn to_svg(&self) -> anyhow::Result<String>;

    /// Writes the chart to `path`, creating its folder.
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(path, self.to_svg()?).with_context(|| format!("writing {}", path.display()))
    }
}

/// Where a benchmark writes its charts.
#[derive(clap::Args)]
pub struct ChartsDir {
    /// Folder the SVG charts are written into, created when missing
    /// (relative to the folder the benchmark runs in: `./dev` runs it from
    /// the repository root).
    #[arg(long = "charts", value_name = "DIR", default_value = "docs/charts")]
    pub dir: PathBuf,
}

impl ChartsDir {
    /// Writes each chart as `NAME.svg` and prints where they went.
    pub fn write(&self, charts: &[(&str, &dyn Chart)]) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::with_capacity(charts.len());
        for (name, chart) in charts {
            let path = self.dir.join(format!("{name}.svg"));
            chart.write(&path)?;
            written.push(path);
        }
        let names: Vec<_> = written.iter().map(|p| p.display().to_string()).collect();
        println!();
        println!("Charts written: {}", names.join(", "));
        Ok(written)
    }
}

/// Lines over a shared x axis, with optional marks where phases begin.
pub struct LineChart {
    title: String,
    x_label: String,
    y_label: String,
    lines: Vec<Line>,
    phases: Vec<(f64, String)>,
    gap: f64,
    hues: usize,
}

struct Line {
    name: String,
    hue: usize,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            lines: Vec::new(),
            phases: Vec::new(),
            gap: f64::INFINITY,
            hues: 0,
        }
    }

    /// Values per second of a benchmark's run: x in seconds since it
    /// started, and a line broken where a second has no value, so that
    /// phases measuring something else do not look joined.
    pub fn over_run(title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self::new(title, "seconds since the benchmark started", y_label).gaps_over(1.0)
    }

    /// Consecutive points of a line farther apart than `step` on x are not
    /// joined.
    pub fn gaps_over(mut self, step: f64) -> Self {
        self.gap = step;
        self
    }

    /// A line; naming one again adds to its points.
    pub fn series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        let name = name.into();
        let hue = self.hue_of(&name);
        self.add(name, hue, HUES[hue].0, points)
    }

    /// `NAME p50` and `NAME p99` of each second of `latencies`, in ms, in
    /// two shades of one hue.
    pub fn latencies(mut self, name: &str, latencies: &Latencies) -> Self {
        let (p50, p99) = (format!("{name} p50"), format!("{name} p99"));
        let hue = self.hue_of(&p50);
        let (dark, light) = HUES[hue];
        self.add(p50, hue, dark, latencies.per_second(0.5)).add(
            p99,
            hue,
            light,
            latencies.per_second(0.99),
        )
    }

    /// A vertical mark at `at`, labelled, where a phase of the run begins.
    pub fn phase(mut self, at: f64, label: impl Into<String>) -> Self {
        self.phases.push((at, label.into()));
        self
    }

    /// The hue of the line named so, or the next one free.
    fn hue_of(&mut self, name: &str) -> usize {
        match self.lines.iter().find(|line| line.name == name) {
            Some(line) => line.hue,
            None => {
                self.hues += 1;
                (self.hues - 1) % HUES.len()
            }
        }
    }

    fn add(
        mut self,
        name: String,
        hue: usize,
        color: RGBColor,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        let points = points
            .into_iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        match self.lines.iter_mut().find(|line| line.name == name) {
            Some(line) => line.points.extend(points),
            None => self.lines.push(Line {
                name,
                hue,
                color,
                points: points.collect(),
            }),
        }
        self
    }

    /// A line's points in order of x, cut where they are more than the gap
    /// apart.
    fn segments(&self, line: &Line) -> Vec<Vec<(f64, f64)>> {
        let mut points = line.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        for point in points {
            match segments.last_mut() {
                Some(segment) if point.0 - segment[segment.len() - 1].0 <= self.gap => {
                    segment.push(point)
                }
                _ => segments.push(vec![point]),
            }
        }
        segments
    }

    fn x_range(&self) -> std::ops::Range<f64> {
        let xs = self
            .lines
            .iter()
            .flat_map(|line| line.points.iter().map(|(x, _)| *x))
            .chain(self.phases.iter().map(|(x, _)| *x));
        let (low, high) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), x| {
            (low.min(x), high.max(x))
        });
        if low > high {
            0.0..1.0
        } else if high - low < 1e-9 {
            low - 0.5..high + 0.5
        } else {
            low..high
        }
    }

    fn y_max(&self) -> f64 {
        let highest = self
            .lines
            .iter()
            .flat_map(|line| line.points.iter().map(|(_, y)| *y))
            .fold(0.0, f64::max);
        if highest > 0.0 {
            highest * 1.1
        } else {
            1.0
        }
    }
}

impl Chart for LineChart {
    fn to_svg(&self) -> anyhow::Result<String> {
        let names = self
            .lines
            .iter()
            .map(|line| (line.name.as_str(), line.color));
        document(PLOT_HEIGHT, Legend::new(names), |plot| {
            let y_max = self.y_max();
            let mut chart = frame(
                plot,
                &self.title,
                (self.x_range(), &self.x_label),
                (0.0..y_max, Some(&self.y_label)),
                70,
            )?;
            let phase_label = (FONT, SMALL)
                .into_font()
                .transform(FontTransform::Rotate90)
                .color(&MARK)
                .pos(Pos::new(HPos::Left, VPos::Bottom));
            for (at, label) in &self.phases {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(*at, 0.0), (*at, y_max)],
                    MARK.stroke_width(1),
                )))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((*at, y_max))
                        + Text::new(label.clone(), (3, 6), phase_label.clone()),
                ))?;
            }
            // The first line on top: a p50 stays in sight where its p99 is no higher.
            for line in self.lines.iter().rev() {
                let style = line.color.stroke_width(2);
                chart.draw_series(
                    self.segments(line)
                        .into_iter()
                        .map(|segment| PathElement::new(segment, style)),
                )?;
            }
            Ok(())
        })
    }
}

/// Horizontal bars, a row per category and a bar per series in each row:
/// a throughput beside its baseline, measured in the same run.
pub struct BarChart {
    title: String,
    value_label: String,
    categories: Vec<String>,
    series: Vec<Bars>,
}

struct Bars {
    name: String,
    color: RGBColor,
    /// (category index, value)
    values: Vec<(usize, f64)>,
}

/// Height of one bar, and of the space between two rows.
const BAR: u32 = 18;
const ROW_GAP: u32 = 16;

impl BarChart {
    pub fn new(title: impl Into<String>, value_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            value_label: value_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
        }
    }

    /// A series' values by category; categories are rows, in the order they
    /// are first named. A series named again gains the values.
    pub fn series<C: Into<String>>(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = (C, f64)>,
    ) -> Self {
        let name = name.into();
        let index = match self.series.iter().position(|bars| bars.name == name) {
            Some(index) => index,
            None => {
                self.series.push(Bars {
                    color: HUES[self.series.len() % HUES.len()].0,
                    name,
                    values: Vec::new(),
                });
                self.series.len() - 1
            }
        };
        for (category, value) in values {
            let category = category.into();
            let row = match self.categories.iter().position(|c| *c == category) {
                Some(row) => row,
                None => {
                    self.categories.push(category);
                    self.categories.len() - 1
                }
            };
            if value.is_finite() {
                self.series[index].values.push((row, value));
            }
        }
        self
    }

    /// The p50 and p99 of `latencies`, in ms, as two bars of `category`.
    pub fn quantiles(self, category: impl Into<String>, latencies: &Latencies) -> Self {
        let category = category.into();
        self.series("p50", [(category.clone(), latencies.millis(0.5))])
            .series("p99", [(category, latencies.millis(0.99))])
    }
}

impl Chart for BarChart {
    fn to_svg(&self) -> anyhow::Result<String> {
        let legend = Legend::new(
            self.series
                .iter()
                .map(|bars| (bars.name.as_str(), bars.color)),
        );
        let rows = self.categories.len().max(1);
        let per_row = self.series.len().max(1);
        let row_height = per_row as u32 * BAR + ROW_GAP;
        let plot_height = 64 + 48 + rows as u32 * row_height;
        let longest = self.categories.iter().map(|c| c.chars().count()).max();
        let label_width = (longest.unwrap_or(0) as u32 * CHAR_WIDTH + 24).clamp(80, 440);
        let highest = self
            .series
            .iter()
            .flat_map(|bars| bars.values.iter().map(|(_, v)| *v))
            .fold(0.0, f64::max);
        // Room on the right for the figure printed after the longest bar.
        let x_max = if highest > 0.0 { highest * 1.2 } else { 1.0 };
        document(plot_height, legend, |plot| {
            let mut chart = frame(
                plot,
                &self.title,
                (0.0..x_max, &self.value_label),
                (0.0..rows as f64, None),
                label_width,
            )?;
            // Row `row` spans y from rows - row - 1 to rows - row, the first at the top.
            let top = |row: usize| (rows - row) as f64;
            let band = 0.8 / per_row as f64;
            let figure = (FONT, SMALL)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            for (index, bars) in self.series.iter().enumerate() {
                for &(row, value) in &bars.values {
                    let upper = top(row) - 0.1 - band * index as f64;
                    let lower = upper - band;
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(0.0, lower), (value, upper)],
                        bars.color.filled(),
                    )))?;
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((value, (upper + lower) / 2.0))
                            + Text::new(short(value), (4, 0), figure.clone()),
                    ))?;
                }
            }
            let category = (FONT, LABEL)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            for (row, name) in self.categories.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(0.0, top(row) - 0.5));
                plot.draw(&Text::new(name.as_str(), (x - 8, y), category.clone()))?;
            }
            Ok(())
        })
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// An SVG document: a plot `plot_height` high that `draw` fills, and the
/// legend under it.
fn document(
    plot_height: u32,
    legend: Legend,
    draw: impl FnOnce(&Area) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let size = (WIDTH, plot_height + legend.height());
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, below) = root.split_vertically(plot_height);
        draw(&plot)?;
        legend.draw(&below)?;
        root.present()?;
    }
    Ok(svg)
}

/// The caption, axes and grid of a chart, with figures on the y axis when
/// it has a label, and none when the caller writes categories there.
fn frame<'a, 'b>(
    plot: &'a Area<'b>,
    title: &str,
    (x_range, x_label): (std::ops::Range<f64>, &str),
    (y_range, y_label): (std::ops::Range<f64>, Option<&str>),
    y_label_width: u32,
) -> anyhow::Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(plot)
        .caption(title, (FONT, TITLE))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(x_range, y_range)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_label)
        .x_label_formatter(&|x| short(*x))
        .bold_line_style(GRID)
        .max_light_lines(0)
        .label_style((FONT, LABEL))
        .axis_desc_style((FONT, LABEL));
    match y_label {
        Some(label) => mesh.y_desc(label).y_label_formatter(&|y| short(*y)),
        None => mesh.disable_y_mesh().y_labels(0),
    };
    mesh.draw()?;
    Ok(chart)
}

/// Swatches and names of a chart's series, in rows under its plot.
struct Legend<'a> {
    rows: Vec<Vec<(&'a str, RGBColor)>>,
}

impl<'a> Legend<'a> {
    const ROW: u32 = 22;
    const SWATCH: i32 = 14;

    fn new(entries: impl IntoIterator<Item = (&'a str, RGBColor)>) -> Self {
        let mut rows: Vec<Vec<(&str, RGBColor)>> = vec![Vec::new()];
        let mut used = 0;
        for (name, color) in entries {
            let width = Self::width(name);
            let row = rows.last_mut().expect("a row");
            if used + width > WIDTH - 40 && !row.is_empty() {
                rows.push(Vec::new());
                used = 0;
            }
            rows.last_mut().expect("a row").push((name, color));
            used += width;
        }
        rows.retain(|row| !row.is_empty());
        Self { rows }
    }

    fn width(name: &str) -> u32 {
        Self::SWATCH as u32 + 6 + name.chars().count() as u32 * CHAR_WIDTH + 24
    }

    fn height(&self) -> u32 {
        self.rows.len() as u32 * Self::ROW + 8
    }

    fn draw(&self, area: &Area) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        let text = (FONT, LABEL)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (index, row) in self.rows.iter().enumerate() {
            let y = index as i32 * Self::ROW as i32 + Self::ROW as i32 / 2;
            let mut x = 20;
            for (name, color) in row {
                area.draw(&Rectangle::new(
                    [(x, y - 5), (x + Self::SWATCH, y + 5)],
                    color.filled(),
                ))?;
                area.draw(&Text::new(*name, (x + Self::SWATCH + 6, y), text.clone()))?;
                x += Self::width(name) as i32;
            }
        }
        Ok(())
    }
}

/// A figure as short as its size allows: `12345`, `12.3`, `1.23`, `0.5`.
fn short(value: f64) -> String {
    let magnitude = value.abs();
    let text = if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    /// The text of every `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|rest| {
                let body = &rest[rest.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_owned())
            })
            .collect()
    }

    /// The stroke colour of every path drawn in a series' colour (not the
    /// black of the axes nor the grey of the phase marks).
    fn series_paths(svg: &str) -> Vec<String> {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|rest| {
                let stroke = &rest[rest.find("stroke=\"")? + 8..];
                Some(stroke[..stroke.find('"')?].to_owned())
            })
            .filter(|stroke| stroke != "#000000" && stroke != "#969696")
            .collect()
    }

    #[test]
    fn a_line_chart_names_its_axes_and_draws_a_path_per_series() {
        let svg = LineChart::new("Commit to visible", "seconds", "lag ms")
            .series("p50", [(0.0, 1.0), (1.0, 2.0), (2.0, 1.5)])
            .series("p99", [(0.0, 4.0), (1.0, 9.0), (2.0, 6.0)])
            .to_svg()
            .unwrap();
        let texts = texts(&svg);
        for wanted in ["Commit to visible", "seconds", "lag ms", "p50", "p99"] {
            assert!(
                texts.iter().any(|t| t == wanted),
                "no text {wanted:?} in {texts:?}"
            );
        }
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(series_paths(&svg), ["#FF7F0E", "#1F77B4"], "{svg}");
    }

    #[test]
    fn a_series_named_again_gains_points_in_the_same_line() {
        let chart = LineChart::new("t", "x", "y")
            .series("GraphQL", [(0.0, 1.0)])
            .series("raw", [(0.0, 2.0)])
            .series("GraphQL", [(1.0, 3.0)]);
        assert_eq!(chart.lines.len(), 2);
        assert_eq!(chart.lines[0].points, vec![(0.0, 1.0), (1.0, 3.0)]);
        assert_ne!(chart.lines[0].color, chart.lines[1].color);
    }

    #[test]
    fn lines_over_a_run_break_where_a_second_has_no_value() {
        let chart = LineChart::over_run("t", "ms")
            .series("GraphQL", [(0.5, 1.0), (1.5, 2.0), (7.5, 2.0), (6.5, 1.0)]);
        let segments = chart.segments(&chart.lines[0]);
        assert_eq!(
            segments,
            vec![vec![(0.5, 1.0), (1.5, 2.0)], vec![(6.5, 1.0), (7.5, 2.0)]]
        );
        let svg = chart.to_svg().unwrap();
        assert_eq!(series_paths(&svg), ["#1F77B4", "#1F77B4"], "{svg}");
        assert!(texts(&svg).contains(&"seconds since the benchmark started".to_owned()));
    }

    #[test]
    fn phases_are_marked_and_labelled() {
        let svg = LineChart::over_run("t", "ms")
            .series("lag", [(0.5, 1.0), (1.5, 2.0)])
            .phase(0.0, "250/s offered")
            .phase(10.0, "500/s offered")
            .to_svg()
            .unwrap();
        assert_eq!(series_paths(&svg).len(), 1, "{svg}");
        assert_eq!(
            count(&svg, "stroke=\"#969696\""),
            2,
            "a mark per phase: {svg}"
        );
        let texts = texts(&svg);
        assert!(texts.contains(&"250/s offered".to_owned()), "{texts:?}");
        assert!(texts.contains(&"500/s offered".to_owned()), "{texts:?}");
        assert_eq!(count(&svg, "rotate(90,"), 2, "phase labels run down: {svg}");
    }

    #[test]
    fn latencies_become_a_p50_and_a_p99_line_per_second() {
        // The run's clock starts first, so that no sample falls before it.
        crate::run_seconds(Instant::now());
        let start = Instant::now();
        let mut latencies = Latencies::default();
        for second in 0..3u64 {
            for millis in 1..=100u64 {
                let at = start + Duration::from_secs(second);
                latencies.record_at(at, Duration::from_millis(millis * (second + 1)));
            }
        }
        let p99 = latencies.per_second(0.99);
        assert_eq!(p99.len(), 3, "{p99:?}");
        let (first, last) = (p99[0], p99[2]);
        assert!((first.1 - 99.0).abs() < 1.0, "{p99:?}");
        assert!((last.1 - 297.0).abs() < 3.0, "{p99:?}");
        assert!((last.0 - first.0 - 2.0).abs() < 1e-9, "{p99:?}");

        let svg = LineChart::over_run("Write path", "ms")
            .latencies("GraphQL", &latencies)
            .to_svg()
            .unwrap();
        let texts = texts(&svg);
        assert!(texts.contains(&"GraphQL p50".to_owned()), "{texts:?}");
        assert!(texts.contains(&"GraphQL p99".to_owned()), "{texts:?}");
        assert_eq!(
            series_paths(&svg),
            ["#AEC7E8", "#1F77B4"],
            "p99 in light blue, then p50 over it in dark blue: {svg}"
        );
    }

    #[test]
    fn merged_latencies_keep_their_seconds() {
        crate::run_seconds(Instant::now());
        let start = Instant::now();
        let (mut one, mut other) = (Latencies::default(), Latencies::default());
        one.record_at(start, Duration::from_millis(2));
        other.record_at(start, Duration::from_millis(4));
        other.record_at(start + Duration::from_secs(1), Duration::from_millis(8));
        one.merge(&other);
        assert_eq!(one.count(), 3);
        let p99: Vec<f64> = one.per_second(0.99).iter().map(|(_, ms)| *ms).collect();
        assert_eq!(p99.len(), 2, "{p99:?}");
        assert!(
            (p99[0] - 4.0).abs() < 0.1 && (p99[1] - 8.0).abs() < 0.1,
            "{p99:?}"
        );
    }

    #[test]
    fn a_bar_chart_puts_each_throughput_beside_its_baseline() {
        let svg = BarChart::new("Write path throughput", "operations/s")
            .series(
                "GraphQL commands/s",
                [("1 client", 410.0), ("8 clients", 1830.0)],
            )
            .series(
                "raw inserts/s (baseline)",
                [("1 client", 1200.0), ("8 clients", 5400.0)],
            )
            .to_svg()
            .unwrap();
        let texts = texts(&svg);
        for wanted in [
            "Write path throughput",
            "operations/s",
            "1 client",
            "8 clients",
            "GraphQL commands/s",
            "raw inserts/s (baseline)",
            "410",
            "5400",
        ] {
            assert!(
                texts.iter().any(|t| t == wanted),
                "no text {wanted:?} in {texts:?}"
            );
        }
        // Two bars and a legend swatch per series.
        assert_eq!(count(&svg, "fill=\"#1F77B4\""), 3, "{svg}");
        assert_eq!(count(&svg, "fill=\"#FF7F0E\""), 3, "{svg}");
    }

    #[test]
    fn text_is_escaped() {
        let svg = BarChart::new("a <b> & c", "events/s")
            .series("x", [("p < q", 1.0)])
            .to_svg()
            .unwrap();
        assert!(svg.contains("a &lt;b&gt; &amp; c"), "{svg}");
        assert!(svg.contains("p &lt; q"), "{svg}");
    }

    #[test]
    fn charts_are_written_into_a_folder_made_for_them() {
        let dir = std::env::temp_dir().join(format!("bench-charts-{}", uuid::Uuid::new_v4()));
        let charts = ChartsDir {
            dir: dir.join("docs").join("charts"),
        };
        let lag = LineChart::over_run("lag", "ms").series("lag", [(0.5, 3.0)]);
        let rate = BarChart::new("rate", "events/s").series("events/s", [("rebuild", 9.0)]);
        let written = charts.write(&[("pipeline-lag", &lag), ("pipeline-rate", &rate)]);
        let read = |name: &str| std::fs::read_to_string(charts.dir.join(name));
        let (lag_svg, rate_svg) = (read("pipeline-lag.svg"), read("pipeline-rate.svg"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(written.unwrap().len(), 2);
        assert_eq!(series_paths(&lag_svg.unwrap()).len(), 1);
        assert!(texts(&rate_svg.unwrap()).contains(&"rebuild".to_owned()));
    }

    #[test]
    fn figures_are_short() {
        assert_eq!(short(12345.4), "12345");
        assert_eq!(short(12.34), "12.3");
        assert_eq!(short(1.234), "1.23");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(0.0), "0");
    }
}
