import Foundation
import MeanField

/// A quantity against the input dimension `d` on a logarithmic axis, with `d = infinity` drawn in
/// its own column at the right edge (after a break in the axis) and labelled, so that the limit the
/// reduced flow computes sits next to the finite dimensions it continues.
///
/// Infinite values (a threshold never reached) are drawn as an upward triangle on the top edge,
/// labelled "not reached". Every series is one `<polyline>` with `data-series` and `data-points`
/// (the finite points it draws, the infinity column included) and every unreached point one
/// `<path data-not-reached=...>`, so tests can check the picture against its data.
public struct DimensionChart: Sendable {
    /// One curve: `(d, value)` pairs, drawn in the order of `d`.
    public struct Series: Sendable {
        public var name: String
        public var points: [(dimension: ReducedDimension, value: Double)]
        public var dashed: Bool
        public init(name: String, points: [(ReducedDimension, Double)], dashed: Bool = false) {
            self.name = name
            self.points = points.map { (dimension: $0.0, value: $0.1) }
            self.dashed = dashed
        }
    }

    public var title: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, yLabel: String, series: [Series]) {
        self.title = title
        self.yLabel = yLabel
        self.series = series
    }

    /// Where the finite axis ends, the break sits and the infinity column is, as fractions of the plot width.
    static let finiteEnd = 0.80, breakAt = 0.87, infinityAt = 0.94

    /// The SVG text.
    public func svg(width: Double = 720, height: Double = 450) -> String {
        var frame = ChartFrame(width: width, height: height)
        frame.top = 44 + 18   // room for the "not reached" marks above the plot
        let finiteD = series.flatMap { $0.points.compactMap { $0.dimension.value.map(Double.init) } }
        let hasInfinity = series.contains { $0.points.contains { $0.dimension == .infinity } }
        let xAxis = Axis(values: finiteD.isEmpty ? [1] : finiteD, scale: .logarithmic)
        let yValues = series.flatMap { $0.points.map(\.value) }.filter(\.isFinite)
        let yAxis = Axis(values: yValues.isEmpty ? [0, 1] : yValues + [0], scale: .linear)
        frame.reserveRoom(forLabelsOf: yAxis)
        let finiteWidth = hasInfinity ? Self.finiteEnd : 1.0
        func xUnit(_ d: ReducedDimension) -> Double {
            guard let v = d.value else { return Self.infinityAt }
            return finiteWidth * xAxis.unit(Double(v))
        }

        var body = frame.header(title: title)
        // Axes: the frame, grid lines, tick labels (finite ticks, then infinity), the break.
        body += "<rect x=\"\(fmt(frame.left))\" y=\"\(fmt(frame.top))\" width=\"\(fmt(frame.plotWidth))\" height=\"\(fmt(frame.plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n<g stroke=\"#ddd\">"
        // Labels only where their boxes fit (ChartFrame.labelledTicks), grid lines at every tick.
        let xLabels = xAxis.labels
        let xKept = Set(ChartFrame.labelledTicks(positions: xAxis.ticks.map { frame.px(finiteWidth * xAxis.unit($0)) },
                                                 extents: xLabels.map { ChartFrame.textWidth($0) },
                                                 preferred: xAxis.ticks.map(xAxis.isPreferred), logarithmicSteps: xAxis.hasOneTwoFiveTicks))
        var xTicks = xAxis.ticks.enumerated().map { (finiteWidth * xAxis.unit($0.element), xKept.contains($0.offset) ? xLabels[$0.offset] : "") }
        if hasInfinity { xTicks.append((Self.infinityAt, "\u{221E}")) }
        for (u, _) in xTicks {
            body += "<line x1=\"\(fmt(frame.px(u)))\" y1=\"\(fmt(frame.top))\" x2=\"\(fmt(frame.px(u)))\" y2=\"\(fmt(frame.top + frame.plotHeight))\"/>"
        }
        for t in yAxis.ticks {
            body += "<line x1=\"\(fmt(frame.left))\" y1=\"\(fmt(frame.py(yAxis.unit(t))))\" x2=\"\(fmt(frame.left + frame.plotWidth))\" y2=\"\(fmt(frame.py(yAxis.unit(t))))\"/>"
        }
        body += "</g>\n<g fill=\"#222\">"
        for (u, label) in xTicks where !label.isEmpty {
            body += "<text x=\"\(fmt(frame.px(u)))\" y=\"\(fmt(frame.top + frame.plotHeight + 16))\" text-anchor=\"middle\"\(label == "\u{221E}" ? " font-size=\"16\" data-infinity=\"true\"" : "")>\(xmlEscape(label))</text>"
        }
        let yLabels = yAxis.labels
        for k in ChartFrame.labelledTicks(positions: yAxis.ticks.map { frame.py(yAxis.unit($0)) }, extents: yLabels.map { _ in ChartFrame.fontSize },
                                          preferred: yAxis.ticks.map(yAxis.isPreferred), logarithmicSteps: false) {
            body += "<text x=\"\(fmt(frame.left - 6))\" y=\"\(fmt(frame.py(yAxis.unit(yAxis.ticks[k])) + 4))\" text-anchor=\"end\">\(xmlEscape(yLabels[k]))</text>"
        }
        body += "</g>\n"
        if hasInfinity {
            // Two slanted strokes across the bottom axis mark the break before d = infinity.
            let x = frame.px(Self.breakAt), y = frame.top + frame.plotHeight
            body += "<g stroke=\"#444\" stroke-width=\"1.5\"><line x1=\"\(fmt(x - 7))\" y1=\"\(fmt(y + 5))\" x2=\"\(fmt(x - 1))\" y2=\"\(fmt(y - 5))\"/><line x1=\"\(fmt(x + 1))\" y1=\"\(fmt(y + 5))\" x2=\"\(fmt(x + 7))\" y2=\"\(fmt(y - 5))\"/></g>\n"
            body += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(frame.top))\" x2=\"\(fmt(x))\" y2=\"\(fmt(y))\" stroke=\"#bbb\" stroke-dasharray=\"2,3\"/>\n"
        }
        body += "<text x=\"\(fmt(frame.left + frame.plotWidth / 2))\" y=\"\(fmt(height - 14))\" text-anchor=\"middle\">input dimension d (log scale; \u{221E}: the limit d -> infinity)</text>\n"
        body += "<text transform=\"translate(18 \(fmt(frame.top + frame.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(xmlEscape(yLabel))</text>\n"

        for (k, s) in series.enumerated() {
            let color = ChartPalette.color(k)
            let sorted = s.points.sorted { a, b in
                switch (a.dimension.value, b.dimension.value) {
                case let (x?, y?): return x < y
                case (_?, nil): return true
                default: return false
                }
            }
            let drawn = sorted.filter { $0.value.isFinite }
            let coordinates = drawn.map { "\(fmt(frame.px(xUnit($0.dimension)))),\(fmt(frame.py(yAxis.unit($0.value))))" }
            body += "<polyline data-series=\"\(xmlEscape(s.name))\" data-points=\"\(drawn.count)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"6,4\"" : "") points=\"\(coordinates.joined(separator: " "))\"/>\n"
            body += "<g fill=\"\(color)\">"
            for p in drawn {
                body += "<circle cx=\"\(fmt(frame.px(xUnit(p.dimension))))\" cy=\"\(fmt(frame.py(yAxis.unit(p.value))))\" r=\"3.5\"/>"
            }
            body += "</g>\n"
            for p in sorted where p.value == .infinity {
                let x = frame.px(xUnit(p.dimension)), y = frame.top - 4
                body += "<path data-not-reached=\"\(xmlEscape(s.name)) d=\(p.dimension)\" d=\"M \(fmt(x - 6)) \(fmt(y)) L \(fmt(x + 6)) \(fmt(y)) L \(fmt(x)) \(fmt(y - 10)) Z\" fill=\"\(color)\"/>"
                body += "<text x=\"\(fmt(x))\" y=\"\(fmt(y - 12))\" text-anchor=\"middle\" font-size=\"10\" fill=\"\(color)\">not reached</text>\n"
            }
        }
        let entries = series.enumerated().map { ($0.element.name, ChartPalette.color($0.offset), $0.element.dashed) }
        body += frame.legend(entries, corner: .topLeft)
        return body + "</svg>\n"
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        try writeSVG(svg(), path: path)
    }
}
