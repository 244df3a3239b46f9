import Foundation

/// How an axis maps data to the page.
public enum AxisScale: Sendable {
    case linear
    /// Base-10 logarithmic; non-positive values are left out of the plot.
    case logarithmic
}

/// One curve of a ``LineChart``.
public struct ChartSeries: Sendable {
    /// The legend label.
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// Draw dashed (for fits and references) instead of solid.
    public var dashed: Bool
    /// Draw a dot at every point.
    public var markers: Bool
    /// Join the points by a line; `false` draws the dots alone (a scatter plot), as one
    /// `<g data-series data-points>` group of circles.
    public var connected: Bool
    /// A CSS colour (`#rrggbb`); `nil` takes the palette colour of the series' position.
    public var color: String?
    /// Whether the series gets a legend entry.
    public var inLegend: Bool
    /// Half-lengths of vertical error bars, one per point (for example the standard deviation
    /// over seeds of a mean); `nil` draws none. A bar reaching zero or below on a logarithmic
    /// axis is cut at the bottom of the plot.
    public var yErrors: [Double]?

    public init(name: String, x: [Double], y: [Double], dashed: Bool = false, markers: Bool = false,
                color: String? = nil, inLegend: Bool = true, yErrors: [Double]? = nil, connected: Bool = true) {
        self.name = name
        self.x = x
        self.y = y
        self.dashed = dashed
        self.markers = markers || !connected
        self.connected = connected
        self.color = color
        self.inLegend = inLegend
        self.yErrors = yErrors
    }

    /// The `k`-th colour of the palette the charts use (so callers can pair series by colour).
    public static func paletteColor(_ k: Int) -> String { ChartPalette.color(k) }
}

/// A line chart rendered as a self-contained SVG document.
///
/// Every curve is one `<polyline>` carrying `data-series` (its name) and `data-points` (how many
/// points it draws), so that tests and scripts can check a picture against its data.
public struct LineChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xScale: AxisScale
    public var yScale: AxisScale
    public var series: [ChartSeries]

    public init(title: String, xLabel: String, yLabel: String, xScale: AxisScale = .linear,
                yScale: AxisScale = .linear, series: [ChartSeries]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xScale = xScale
        self.yScale = yScale
        self.series = series
    }

    /// The SVG text.
    public func svg(width: Double = 720, height: Double = 450) -> String {
        var frame = ChartFrame(width: width, height: height)
        // Only points that can be drawn on the chosen scales take part, each with its error bar.
        let drawable = series.map { s -> [(x: Double, y: Double, error: Double)] in
            s.x.indices.compactMap { i -> (x: Double, y: Double, error: Double)? in
                guard i < s.y.count else { return nil }
                let x = s.x[i], y = s.y[i]
                guard x.isFinite, y.isFinite, xScale == .linear || x > 0, yScale == .linear || y > 0 else { return nil }
                let e = s.yErrors.flatMap { i < $0.count ? abs($0[i]) : nil } ?? 0
                return (x, y, e.isFinite ? e : 0)
            }
        }
        let allX = drawable.flatMap { $0.map(\.x) }
        // The axis holds the error bars too (on a log axis, their positive ends).
        let allY = drawable.flatMap { $0.flatMap { [$0.y, $0.y + $0.error, $0.y - $0.error] } }
        let xAxis = Axis(values: allX, scale: xScale)
        let yAxis = Axis(values: allY, scale: yScale)
        frame.reserveRoom(forLabelsOf: yAxis)
        var body = frame.header(title: title)
        body += frame.axes(x: xAxis, y: yAxis, xLabel: xLabel, yLabel: yLabel)
        for (k, points) in drawable.enumerated() {
            let s = series[k]
            let color = s.color ?? ChartPalette.color(k)
            let coordinates = points.map { p in
                "\(fmt(frame.px(xAxis.unit(p.x)))),\(fmt(frame.py(yAxis.unit(p.y))))"
            }.joined(separator: " ")
            if s.connected {
                body += "<polyline data-series=\"\(xmlEscape(s.name))\" data-points=\"\(points.count)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"6,4\"" : "") points=\"\(coordinates)\"/>\n"
            }
            if s.markers {
                body += s.connected ? "<g fill=\"\(color)\">"
                    : "<g data-series=\"\(xmlEscape(s.name))\" data-points=\"\(points.count)\" fill=\"\(color)\" fill-opacity=\"0.6\">"
                for p in points {
                    body += "<circle cx=\"\(fmt(frame.px(xAxis.unit(p.x))))\" cy=\"\(fmt(frame.py(yAxis.unit(p.y))))\" r=\"3\"/>"
                }
                body += "</g>\n"
            }
            if s.yErrors != nil {
                // One <line> per point from y - e to y + e, with 8-pixel caps.
                body += "<g data-error-bars=\"\(xmlEscape(s.name))\" stroke=\"\(color)\" stroke-width=\"1.2\">"
                for p in points {
                    let px = frame.px(xAxis.unit(p.x))
                    let low = yScale == .logarithmic && p.y - p.error <= 0 ? frame.top + frame.plotHeight : frame.py(yAxis.unit(p.y - p.error))
                    let high = frame.py(yAxis.unit(p.y + p.error))
                    body += "<line x1=\"\(fmt(px))\" y1=\"\(fmt(low))\" x2=\"\(fmt(px))\" y2=\"\(fmt(high))\" data-y=\"\(p.y)\" data-error=\"\(p.error)\"/>"
                    body += "<line x1=\"\(fmt(px - 4))\" y1=\"\(fmt(high))\" x2=\"\(fmt(px + 4))\" y2=\"\(fmt(high))\"/>"
                    if !(yScale == .logarithmic && p.y - p.error <= 0) {
                        body += "<line x1=\"\(fmt(px - 4))\" y1=\"\(fmt(low))\" x2=\"\(fmt(px + 4))\" y2=\"\(fmt(low))\"/>"
                    }
                }
                body += "</g>\n"
            }
        }
        // Put the legend in the top corner that hides the fewest points.
        let entries = series.enumerated().filter(\.element.inLegend).map {
            ($0.element.name, $0.element.color ?? ChartPalette.color($0.offset), $0.element.dashed)
        }
        let legendHeight = 18 * Double(entries.count) + 8
        let legendWidth = frame.legendWidth(entries)
        func hidden(_ corner: ChartFrame.Corner) -> Int {
            let x0 = corner == .topRight ? frame.left + frame.plotWidth - legendWidth : frame.left
            return drawable.joined().filter { p in
                let px = frame.px(xAxis.unit(p.x)), py = frame.py(yAxis.unit(p.y))
                return px >= x0 && px <= x0 + legendWidth && py <= frame.top + legendHeight
            }.count
        }
        body += frame.legend(entries, corner: hidden(.topLeft) < hidden(.topRight) ? .topLeft : .topRight)
        return body + "</svg>\n"
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        try writeSVG(svg(), path: path)
    }
}

/// Overlaid histograms of several samples on common bins, drawn as outlined steps.
///
/// Each histogram is one `<path>` with `data-series`, `data-bins` and `data-count` (sample size).
public struct HistogramChart: Sendable {
    public var title: String
    public var xLabel: String
    public var samples: [(name: String, values: [Double])]
    public var binCount: Int

    public init(title: String, xLabel: String, samples: [(name: String, values: [Double])], binCount: Int = 30) {
        self.title = title
        self.xLabel = xLabel
        self.samples = samples
        self.binCount = max(1, binCount)
    }

    /// Densities per bin (so samples of different sizes compare), on bins spanning all samples.
    public func densities() -> (edges: [Double], densities: [[Double]]) {
        let all = samples.flatMap { $0.values.filter(\.isFinite) }
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let width = (hi - lo) / Double(binCount)
        let edges = (0 ... binCount).map { lo + Double($0) * width }
        let dens = samples.map { s -> [Double] in
            var counts = [Double](repeating: 0, count: binCount)
            let finite = s.values.filter(\.isFinite)
            for v in finite { counts[Int(clampingCount: (v - lo) / width, limit: binCount - 1)] += 1 }
            let n = Double(max(1, finite.count))
            return counts.map { $0 / (n * width) }
        }
        return (edges, dens)
    }

    /// The SVG text.
    public func svg(width: Double = 720, height: Double = 450) -> String {
        var frame = ChartFrame(width: width, height: height)
        let (edges, dens) = densities()
        let xAxis = Axis(values: [edges.first!, edges.last!], scale: .linear)
        let yAxis = Axis(values: [0] + dens.flatMap { $0 }, scale: .linear, includeZero: true)
        frame.reserveRoom(forLabelsOf: yAxis)
        var body = frame.header(title: title)
        body += frame.axes(x: xAxis, y: yAxis, xLabel: xLabel, yLabel: "density")
        for (k, d) in dens.enumerated() {
            let color = ChartPalette.color(k)
            var path = "M \(fmt(frame.px(xAxis.unit(edges[0])))) \(fmt(frame.py(yAxis.unit(0))))"
            for b in 0 ..< d.count {
                let y = fmt(frame.py(yAxis.unit(d[b])))
                path += " L \(fmt(frame.px(xAxis.unit(edges[b])))) \(y) L \(fmt(frame.px(xAxis.unit(edges[b + 1])))) \(y)"
            }
            path += " L \(fmt(frame.px(xAxis.unit(edges.last!)))) \(fmt(frame.py(yAxis.unit(0)))) Z"
            body += "<path data-series=\"\(xmlEscape(samples[k].name))\" data-bins=\"\(d.count)\" data-count=\"\(samples[k].values.count)\" d=\"\(path)\" fill=\"\(color)\" fill-opacity=\"0.25\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
        }
        body += frame.legend(samples.enumerated().map { ($0.element.name, ChartPalette.color($0.offset), false) })
        return body + "</svg>\n"
    }

    public func write(to path: String) throws {
        try writeSVG(svg(), path: path)
    }
}

/// A heat map of values on a regular lattice (a density on a 2-D grid, a 2-D histogram), rendered
/// as a self-contained SVG document with a colour bar.
///
/// The cells form one `<g>` carrying `data-heatmap` (the title), `data-columns` and `data-rows`
/// (cells along x and y), `data-cells` (cells drawn) and `data-min` / `data-max` (the colour
/// scale); every cell is a `<rect>` with its `data-value`, so that tests and scripts can check a
/// picture against its data. Colours follow a viridis-like sequential scale.
public struct HeatmapChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    /// Cell centres along x (columns), increasing and equally spaced.
    public var xCenters: [Double]
    /// Cell centres along y (rows), increasing and equally spaced.
    public var yCenters: [Double]
    /// One value per cell, x-index slowest: `values[ix * yCenters.count + iy]` (the point order
    /// of a 2-D `RegularGrid` and of its density masses).
    public var values: [Double]
    /// The values mapped to the ends of the colour scale; `nil` uses the data's range (so that
    /// several maps can share one scale, pass the same range to each).
    public var valueRange: (low: Double, high: Double)?
    /// The label of the colour bar.
    public var colorLabel: String
    /// Points drawn on top (e.g. a teacher direction), with labels.
    public var markers: [(x: Double, y: Double, label: String)]

    public init(title: String, xLabel: String, yLabel: String, xCenters: [Double], yCenters: [Double], values: [Double],
                valueRange: (low: Double, high: Double)? = nil, colorLabel: String = "density",
                markers: [(x: Double, y: Double, label: String)] = []) {
        precondition(values.count == xCenters.count * yCenters.count, "values must hold one entry per cell")
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xCenters = xCenters
        self.yCenters = yCenters
        self.values = values
        self.valueRange = valueRange
        self.colorLabel = colorLabel
        self.markers = markers
    }

    /// The colour scale's range in force.
    public var scale: (low: Double, high: Double) {
        if let valueRange { return valueRange }
        let finite = values.filter(\.isFinite)
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        return hi > lo ? (lo, hi) : (lo, lo + 1)
    }

    /// Cell edges from equally spaced centres.
    static func edges(_ centers: [Double]) -> [Double] {
        guard centers.count > 1 else { return [(centers.first ?? 0) - 0.5, (centers.first ?? 0) + 0.5] }
        let h = (centers.last! - centers.first!) / Double(centers.count - 1)
        return (0 ... centers.count).map { centers[0] - h / 2 + Double($0) * h }
    }

    /// The SVG text.
    public func svg(width: Double = 640, height: Double = 560) -> String {
        var frame = ChartFrame(width: width, height: height)
        frame.right = 110
        let xe = Self.edges(xCenters), ye = Self.edges(yCenters)
        let xAxis = Axis(values: [xe.first!, xe.last!], scale: .linear)
        let yAxis = Axis(values: [ye.first!, ye.last!], scale: .linear)
        frame.reserveRoom(forLabelsOf: yAxis)
        let (lo, hi) = scale
        var body = frame.header(title: title)
        body += frame.axes(x: xAxis, y: yAxis, xLabel: xLabel, yLabel: yLabel)
        let ny = yCenters.count
        var drawn = 0
        var cells = ""
        for ix in 0 ..< xCenters.count {
            let x0 = frame.px(xAxis.unit(xe[ix])), x1 = frame.px(xAxis.unit(xe[ix + 1]))
            for iy in 0 ..< ny {
                let v = values[ix * ny + iy]
                guard v.isFinite else { continue }
                let y0 = frame.py(yAxis.unit(ye[iy + 1])), y1 = frame.py(yAxis.unit(ye[iy]))
                // Slight overlap hides hairline seams between cells in some renderers.
                cells += "<rect x=\"\(fmt(x0))\" y=\"\(fmt(y0))\" width=\"\(fmt(x1 - x0 + 0.6))\" height=\"\(fmt(y1 - y0 + 0.6))\" fill=\"\(HeatmapPalette.color((v - lo) / (hi - lo)))\" data-value=\"\(v)\"/>"
                drawn += 1
            }
        }
        body += "<g shape-rendering=\"crispEdges\" data-heatmap=\"\(xmlEscape(title))\" data-columns=\"\(xCenters.count)\" data-rows=\"\(ny)\" data-cells=\"\(drawn)\" data-min=\"\(lo)\" data-max=\"\(hi)\">\n\(cells)\n</g>\n"
        // The frame again, on top of the cells.
        body += "<rect x=\"\(fmt(frame.left))\" y=\"\(fmt(frame.top))\" width=\"\(fmt(frame.plotWidth))\" height=\"\(fmt(frame.plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
        for m in markers {
            let cx = frame.px(xAxis.unit(m.x)), cy = frame.py(yAxis.unit(m.y))
            body += "<g data-marker=\"\(xmlEscape(m.label))\"><circle cx=\"\(fmt(cx))\" cy=\"\(fmt(cy))\" r=\"5\" fill=\"none\" stroke=\"white\" stroke-width=\"2\"/>"
            body += "<text x=\"\(fmt(cx + 8))\" y=\"\(fmt(cy - 8))\" fill=\"white\">\(xmlEscape(m.label))</text></g>\n"
        }
        // Colour bar.
        let barX = frame.left + frame.plotWidth + 24, barWidth = 16.0
        let steps = 64
        body += "<g class=\"colorbar\">"
        for k in 0 ..< steps {
            let u0 = Double(k) / Double(steps), u1 = Double(k + 1) / Double(steps)
            let y0 = frame.top + (1 - u1) * frame.plotHeight
            body += "<rect x=\"\(fmt(barX))\" y=\"\(fmt(y0))\" width=\"\(fmt(barWidth))\" height=\"\(fmt(frame.plotHeight / Double(steps) + 0.3))\" fill=\"\(HeatmapPalette.color((u0 + u1) / 2))\"/>"
        }
        body += "<rect x=\"\(fmt(barX))\" y=\"\(fmt(frame.top))\" width=\"\(fmt(barWidth))\" height=\"\(fmt(frame.plotHeight))\" fill=\"none\" stroke=\"#444\"/>"
        let barAxis = Axis(values: [lo, hi], scale: .linear)
        let barLabels = barAxis.labels
        for (k, t) in barAxis.ticks.enumerated() where t >= lo - 1e-12 * abs(hi - lo) && t <= hi + 1e-12 * abs(hi - lo) {
            let y = frame.top + (1 - (t - lo) / (hi - lo)) * frame.plotHeight
            body += "<text x=\"\(fmt(barX + barWidth + 4))\" y=\"\(fmt(y + 4))\" fill=\"#222\">\(xmlEscape(barLabels[k]))</text>"
        }
        body += "<text transform=\"translate(\(fmt(width - 10)) \(fmt(frame.top + frame.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(xmlEscape(colorLabel))</text>"
        body += "</g>\n"
        return body + "</svg>\n"
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        try writeSVG(svg(), path: path)
    }
}

/// A sequential colour scale from dark purple through blue and green to yellow (viridis-like),
/// interpolated linearly between ten anchors.
enum HeatmapPalette {
    static let anchors: [(Double, Double, Double)] = [
        (68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37),
    ]

    /// The colour of `u` in [0, 1] (clamped; NaN maps to 0).
    static func color(_ u: Double) -> String {
        let t = u.isFinite ? min(1, max(0, u)) : 0
        let x = t * Double(anchors.count - 1)
        let k = Int(clampingCount: x, limit: anchors.count - 2)
        let f = x - Double(k)
        let a = anchors[k], b = anchors[k + 1]
        func channel(_ p: Double, _ q: Double) -> Int { Int(clampingCount: (p + f * (q - p)).rounded(), limit: 255) }
        return String(format: "#%02x%02x%02x", channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
    }
}

// MARK: - Layout

enum ChartPalette {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    static func color(_ k: Int) -> String { colors[k % colors.count] }
}

/// The page geometry shared by all charts: a plot area with margins for labels.
struct ChartFrame {
    let width: Double, height: Double
    var left = 78.0, right = 24.0, top = 44.0, bottom = 58.0
    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
    func px(_ u: Double) -> Double { left + u * plotWidth }
    func py(_ u: Double) -> Double { top + (1 - u) * plotHeight }

    func header(title: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(width))" height="\(fmt(height))" viewBox="0 0 \(fmt(width)) \(fmt(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(fmt(width / 2))" y="24" text-anchor="middle" font-size="15">\(xmlEscape(title))</text>

        """
    }

    /// The font size of labels (the document's default).
    static let fontSize = 12.0
    /// The space between two tick labels, and between a label and what it must not touch.
    static let labelGap = 4.0

    /// The width of `text` at `fontSize`, estimated as 0.6 em a character: a little wider than
    /// Helvetica's digits (0.556 em), so that estimated boxes that do not overlap do not overlap
    /// on the page either.
    static func textWidth(_ text: String, fontSize: Double = ChartFrame.fontSize) -> Double {
        0.6 * fontSize * Double(text.count)
    }

    /// Widens the left margin when the y-axis labels would otherwise run into the rotated axis
    /// title (which occupies `x` in `[6, 18]`).
    mutating func reserveRoom(forLabelsOf axis: Axis) {
        let widest = axis.labels.map { Self.textWidth($0) }.max() ?? 0
        left = max(left, 18 + Self.labelGap + widest + 6)
    }

    /// The ticks that get a label: all of them when their estimated boxes (extent `extents[i]`
    /// along the axis, centred on `positions[i]`) keep `labelGap` apart, else every `k`-th one
    /// for the smallest `k` that does, counted from a preferred tick (zero, or a power of ten).
    /// A log axis with 1-2-5 ticks falls back to whole decades (`k = 3`) rather than to a
    /// ragged 1, 5, 20, ... pattern.
    static func labelledTicks(positions: [Double], extents: [Double], preferred: [Bool], logarithmicSteps: Bool) -> [Int] {
        let n = positions.count
        guard n > 1 else { return Array(0 ..< n) }
        let anchor = preferred.firstIndex(of: true) ?? 0
        let candidates = logarithmicSteps ? [1] + Array(stride(from: 3, through: n, by: 3)) : Array(1 ... n)
        for k in candidates {
            let kept = (0 ..< n).filter { (($0 - anchor) % k + k) % k == 0 }
            let fits = zip(kept, kept.dropFirst()).allSatisfy { i, j in
                abs(positions[j] - positions[i]) >= (extents[i] + extents[j]) / 2 + labelGap
            }
            if fits { return kept }
        }
        return [anchor]
    }

    func axes(x: Axis, y: Axis, xLabel: String, yLabel: String) -> String {
        var s = "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n<g stroke=\"#ddd\">"
        for t in x.ticks { s += "<line x1=\"\(fmt(px(x.unit(t))))\" y1=\"\(fmt(top))\" x2=\"\(fmt(px(x.unit(t))))\" y2=\"\(fmt(top + plotHeight))\"/>" }
        for t in y.ticks { s += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(py(y.unit(t))))\" x2=\"\(fmt(left + plotWidth))\" y2=\"\(fmt(py(y.unit(t))))\"/>" }
        // Grid lines at every tick; labels only where they fit. x labels sit 18 px below the
        // plot (boxes [bottom + 6, bottom + 18]), y labels are centred on their tick and end
        // 6 px left of the plot, so the two sets cannot meet at the corner.
        let xLabels = x.labels, yLabels = y.labels
        let xKept = Self.labelledTicks(positions: x.ticks.map { px(x.unit($0)) }, extents: xLabels.map { Self.textWidth($0) },
                                       preferred: x.ticks.map(x.isPreferred), logarithmicSteps: x.hasOneTwoFiveTicks)
        let yKept = Self.labelledTicks(positions: y.ticks.map { py(y.unit($0)) }, extents: yLabels.map { _ in Self.fontSize },
                                       preferred: y.ticks.map(y.isPreferred), logarithmicSteps: y.hasOneTwoFiveTicks)
        s += "</g>\n<g fill=\"#222\" class=\"x-tick-labels\">"
        for k in xKept {
            // Keep the box on the page: the last label of a wide axis could stick out.
            let half = Self.textWidth(xLabels[k]) / 2
            let cx = min(max(px(x.unit(x.ticks[k])), half + 2), width - half - 2)
            s += "<text x=\"\(fmt(cx))\" y=\"\(fmt(top + plotHeight + 18))\" text-anchor=\"middle\">\(xmlEscape(xLabels[k]))</text>"
        }
        s += "</g>\n<g fill=\"#222\" class=\"y-tick-labels\">"
        for k in yKept {
            s += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(py(y.unit(y.ticks[k])) + 4))\" text-anchor=\"end\">\(xmlEscape(yLabels[k]))</text>"
        }
        s += "</g>\n"
        s += "<text class=\"x-title\" x=\"\(fmt(left + plotWidth / 2))\" y=\"\(fmt(height - 14))\" text-anchor=\"middle\">\(xmlEscape(xLabel))</text>\n"
        s += "<text class=\"y-title\" transform=\"translate(18 \(fmt(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(xmlEscape(yLabel))</text>\n"
        return s
    }

    enum Corner { case topLeft, topRight }

    /// The legend's width: the sample line, its gap and the longest entry, at most the plot's width.
    func legendWidth(_ entries: [(String, String, Bool)]) -> Double {
        min(plotWidth - 20, 30 + (entries.map { Self.textWidth($0.0) }.max() ?? 0) + 10)
    }

    func legend(_ entries: [(String, String, Bool)], corner: Corner = .topRight) -> String {
        var s = "<g class=\"legend\">"
        let x = corner == .topRight ? left + plotWidth - legendWidth(entries) : left + 10
        for (k, e) in entries.enumerated() {
            let y = top + 14 + Double(k) * 18
            s += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(y - 4))\" x2=\"\(fmt(x + 24))\" y2=\"\(fmt(y - 4))\" stroke=\"\(e.1)\" stroke-width=\"2\"\(e.2 ? " stroke-dasharray=\"6,4\"" : "")/>"
            s += "<text x=\"\(fmt(x + 30))\" y=\"\(fmt(y))\">\(xmlEscape(e.0))</text>"
        }
        return s + "</g>\n"
    }
}

/// Maps data values to [0, 1] on a linear or log scale, with "nice" tick positions.
struct Axis {
    let scale: AxisScale
    let lo: Double, hi: Double
    let ticks: [Double]

    init(values: [Double], scale: AxisScale, includeZero: Bool = false) {
        self.scale = scale
        // Beyond 1e300 the span, the steps and the decades of the ticks would overflow.
        let finite = values.filter { abs($0) <= 1e300 && (scale == .linear || $0 >= 1e-300) }
        var a = finite.min() ?? (scale == .linear ? 0 : 1)
        var b = finite.max() ?? (scale == .linear ? 1 : 10)
        if includeZero { a = min(a, 0) }
        switch scale {
        case .linear:
            if b - a < 1e-300 { a -= 0.5 * max(1, abs(a)); b += 0.5 * max(1, abs(b)) }
            let step = Axis.niceStep((b - a) / 6)
            let lo = (a / step).rounded(.down) * step
            let hi = (b / step).rounded(.up) * step
            self.lo = lo
            self.hi = hi
            ticks = stride(from: lo, through: hi + step * 1e-9, by: step).map { abs($0) < step * 1e-9 ? 0 : $0 }
        case .logarithmic:
            if b / a < 1 + 1e-12 { a /= 3; b *= 3 }
            // Bounds on the 1-2-5 sequence, so that a sweep over 100 ... 1600 does not spread
            // over two whole decades; ticks at 1-2-5 within a few decades, at decades beyond.
            let lo = Axis.oneTwoFive(below: a), hi = Axis.oneTwoFive(above: b)
            self.lo = lo
            self.hi = hi
            let fine = log10(hi / lo) <= 3.01
            var t = [Double]()
            for e in Int(clamping: log10(lo).rounded(.down), to: -400 ... 400) ... Int(clamping: log10(hi).rounded(.up), to: -400 ... 400) {
                let base = pow(10, Double(e))
                for m in fine ? [1.0, 2, 5] : [1.0] where m * base >= lo * (1 - 1e-9) && m * base <= hi * (1 + 1e-9) {
                    t.append(m * base)
                }
            }
            ticks = t
        }
    }

    /// The largest of `1, 2, 5 x 10^k` at or below `v > 0`.
    static func oneTwoFive(below v: Double) -> Double {
        let base = pow(10, log10(v).rounded(.down))
        for m in [5.0, 2, 1] where m * base <= v * (1 + 1e-12) { return m * base }
        return base
    }

    /// The smallest of `1, 2, 5 x 10^k` at or above `v > 0`.
    static func oneTwoFive(above v: Double) -> Double {
        let base = pow(10, log10(v).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * base >= v * (1 - 1e-12) { return m * base }
        return 10 * base
    }

    func unit(_ v: Double) -> Double {
        switch scale {
        case .linear: return (v - lo) / (hi - lo)
        case .logarithmic: return (log10(v) - log10(lo)) / (log10(hi) - log10(lo))
        }
    }

    /// The label of every tick, with as many digits as it takes for neighbouring labels to differ
    /// (`1e+06` for every tick of an axis from 1000000 to 1000010 would say nothing).
    var labels: [String] {
        for digits in 1 ... 12 {
            let texts = ticks.map { Axis.label($0, digits: digits) }
            if Set(texts).count == texts.count { return texts }
        }
        return ticks.map { String($0) }
    }

    /// Plain decimals between 1e-3 and 1e4 (at least four significant digits, more on request),
    /// exponents outside.
    static func label(_ v: Double, digits: Int) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e4 || a < 1e-3 { return String(format: "%.\(max(0, digits - 1))e", v) }
        var s = String(format: "%.\(max(4, digits))g", v)
        if s.contains(".") && !s.contains("e") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
        return s
    }

    /// Whether a tick is a good anchor for thinned labels: zero, or a power of ten on a log axis.
    func isPreferred(_ t: Double) -> Bool {
        switch scale {
        case .linear: return t == 0
        case .logarithmic: return abs(log10(t) - log10(t).rounded()) < 1e-9
        }
    }

    /// Log ticks on the 1-2-5 sequence (not only decades).
    var hasOneTwoFiveTicks: Bool { scale == .logarithmic && ticks.contains { !isPreferred($0) } }

    static func niceStep(_ raw: Double) -> Double {
        let e = pow(10, log10(raw).rounded(.down))
        let f = raw / e
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
        return nice * e
    }
}

func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

func writeSVG(_ text: String, path: String) throws {
    do {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        throw ExperimentError.output(path: path, reason: error.localizedDescription)
    }
}
