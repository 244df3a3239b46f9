import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Experiments

/// Collects the elements of an SVG document, and fails on malformed XML.
final class SVGInspector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        elements.append((elementName, attributeDict))
    }

    /// Parses `text`; returns nil when it is not well-formed XML.
    static func inspect(_ text: String) -> SVGInspector? {
        let parser = XMLParser(data: Data(text.utf8))
        let inspector = SVGInspector()
        parser.delegate = inspector
        return parser.parse() ? inspector : nil
    }

    func series(_ element: String) -> [String: [String: String]] {
        var out = [String: [String: String]]()
        for e in elements where e.name == element {
            if let name = e.attributes["data-series"] { out[name] = e.attributes }
        }
        return out
    }
}

@Suite("SVG charts")
struct SVGChartTests {
    @Test("Line charts are well-formed XML with one polyline per series and the right point counts")
    func lineChart() throws {
        let chart = LineChart(title: "risk <vs> t & more", xLabel: "t", yLabel: "risk", series: [
            ChartSeries(name: "JKO", x: [0, 1, 2, 3], y: [1, 0.5, 0.25, 0.125]),
            ChartSeries(name: "SGD", x: [0, 1, 2], y: [1, 0.6, 0.3], dashed: true, markers: true),
        ])
        let svg = try #require(SVGInspector.inspect(chart.svg()))
        let lines = svg.series("polyline")
        #expect(lines["JKO"]?["data-points"] == "4")
        #expect(lines["SGD"]?["data-points"] == "3")
        let drawn = lines["JKO"]?["points"]?.split(separator: " ").count
        #expect(drawn == 4)
        #expect(svg.elements.filter { $0.name == "circle" }.count == 3)
    }

    @Test("Log axes leave out non-positive points, and say so in the point count")
    func logAxes() throws {
        let chart = LineChart(title: "sweep", xLabel: "M", yLabel: "gap", xScale: .logarithmic, yScale: .logarithmic,
                              series: [ChartSeries(name: "gap", x: [100, 400, 1600, 0], y: [0.1, 0.05, 0.025, 0.01])])
        let svg = try #require(SVGInspector.inspect(chart.svg()))
        #expect(svg.series("polyline")["gap"]?["data-points"] == "3")
    }

    @Test("Log axes snap to the 1-2-5 sequence around the data, with ticks inside the range")
    func logAxisBounds() {
        let a = Axis(values: [100, 400, 1600], scale: .logarithmic)
        #expect(a.lo == 100 && a.hi == 2000)
        #expect(a.ticks == [100, 200, 500, 1000, 2000])
        let b = Axis(values: [0.0031, 0.042], scale: .logarithmic)
        #expect(b.lo == 0.002 && abs(b.hi - 0.05) < 1e-15)
        let wide = Axis(values: [1e-6, 3], scale: .logarithmic)
        #expect(wide.ticks.count == 7)  // 1e-6 ... 1, decades only, and 3 <= hi = 5
        for axis in [a, b, wide] { #expect(axis.ticks.allSatisfy { $0 >= axis.lo * (1 - 1e-9) && $0 <= axis.hi * (1 + 1e-9) }) }
    }

    @Test("Histograms integrate to one and carry their bin and sample counts")
    func histogram() throws {
        let a = (0 ..< 500).map { Double($0) / 500 }
        let b = (0 ..< 200).map { 0.5 + Double($0) / 400 }
        let chart = HistogramChart(title: "marginals", xLabel: "|w|", samples: [("JKO", a), ("SGD", b)], binCount: 20)
        let (edges, densities) = chart.densities()
        let width = edges[1] - edges[0]
        for d in densities {
            #expect(abs(d.reduce(0, +) * width - 1) < 1e-12)
        }
        let svg = try #require(SVGInspector.inspect(chart.svg()))
        let paths = svg.series("path")
        #expect(paths["JKO"]?["data-bins"] == "20")
        #expect(paths["SGD"]?["data-count"] == "200")
    }
}

/// The text elements of an SVG document with their position, anchor, class (their own or their
/// group's) and content.
final class SVGTextCollector: NSObject, XMLParserDelegate {
    struct Text { var x: Double; var y: Double; var anchor: String; var role: String; var content: String; var transform: String? }
    var texts: [Text] = []
    var width = 0.0, height = 0.0
    private var groups: [String] = []
    private var current: Text?

    static func collect(_ svg: String) -> SVGTextCollector? {
        let parser = XMLParser(data: Data(svg.utf8))
        let c = SVGTextCollector()
        parser.delegate = c
        return parser.parse() ? c : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        switch name {
        case "svg": width = Double(attributes["width"] ?? "") ?? 0; height = Double(attributes["height"] ?? "") ?? 0
        case "g": groups.append(attributes["class"] ?? "")
        case "text":
            current = Text(x: Double(attributes["x"] ?? "") ?? 0, y: Double(attributes["y"] ?? "") ?? 0,
                           anchor: attributes["text-anchor"] ?? "start", role: attributes["class"] ?? groups.last ?? "",
                           content: "", transform: attributes["transform"])
        default: break
        }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current?.content += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "g" { _ = groups.popLast() }
        if name == "text", let t = current { texts.append(t); current = nil }
    }

    /// The box a label occupies, estimated from the 12-pixel font: 0.6 em a character, the
    /// baseline at the bottom (digits have no descenders); the rotated y title stands on x = 18.
    static func box(_ t: Text) -> (x0: Double, y0: Double, x1: Double, y1: Double) {
        let w = 0.6 * 12 * Double(t.content.count), h = 12.0
        if let transform = t.transform, transform.hasPrefix("translate(") {
            let numbers = transform.dropFirst("translate(".count).prefix { $0 != ")" }.split(separator: " ").compactMap { Double($0) }
            return (numbers[0] - h, numbers[1] - w / 2, numbers[0], numbers[1] + w / 2)
        }
        let x0 = t.anchor == "middle" ? t.x - w / 2 : t.anchor == "end" ? t.x - w : t.x
        return (x0, t.y - h, x0 + w, t.y)
    }
}

@Suite("SVG chart layout")
struct SVGLayoutTests {
    static func overlaps(_ a: (x0: Double, y0: Double, x1: Double, y1: Double), _ b: (x0: Double, y0: Double, x1: Double, y1: Double)) -> Bool {
        a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
    }

    /// Charts whose axes invite crowded labels: three decades of 1-2-5 log ticks on a narrow
    /// page, long negative decimals next to the y title, a range far from zero whose ticks differ
    /// in the seventh digit, thirteen decades, a histogram and a heat map.
    static func crowdedCharts() -> [(String, String)] {
        let e = (0 ..< 30).map { pow(10, -4 + Double($0) / 10) }
        return [
            ("log x, 1-2-5", LineChart(title: "t", xLabel: "eta", yLabel: "gap", xScale: .logarithmic, yScale: .logarithmic,
                                       series: [ChartSeries(name: "a", x: e, y: e.map { 0.3 * $0.squareRoot() })]).svg(width: 360, height: 300)),
            ("long y labels", LineChart(title: "t", xLabel: "t", yLabel: "energy", series: [
                ChartSeries(name: "a", x: [0, 1, 2, 3], y: [-0.0123, -0.0031, -0.0077, 0.0009])]).svg()),
            ("far from zero", LineChart(title: "t", xLabel: "M", yLabel: "y", series: [
                ChartSeries(name: "a", x: [1_000_000, 1_000_010], y: [1_000_000.5, 1_000_001.25])]).svg()),
            ("thirteen decades", LineChart(title: "t", xLabel: "x", yLabel: "y", xScale: .logarithmic, yScale: .logarithmic, series: [
                ChartSeries(name: "a", x: [1e-9, 1e4], y: [1e-12, 1])]).svg(width: 300, height: 200)),
            ("short page", LineChart(title: "t", xLabel: "t", yLabel: "y", series: [
                ChartSeries(name: "a", x: [0, 0.0125, 0.025, 0.0375, 0.05, 0.0625, 0.075], y: [0.1, 0.2, 0.1, 0.3, 0.2, 0.25, 0.15])]).svg(width: 260, height: 160)),
            ("histogram", HistogramChart(title: "t", xLabel: "|w|", samples: [("a", (0 ..< 300).map { 1000 + Double($0) * 0.0001 })]).svg(width: 300, height: 200)),
            ("heat map", HeatmapChart(title: "t", xLabel: "w1", yLabel: "w2", xCenters: (0 ..< 10).map { Double($0) * 0.001 },
                                      yCenters: (0 ..< 10).map { -0.05 + Double($0) * 0.0125 }, values: (0 ..< 100).map { Double($0) }).svg()),
        ]
    }

    @Test("tick labels and axis titles never overlap, never leave the page, and say different things")
    func labelsDoNotCollide() throws {
        for (name, svg) in Self.crowdedCharts() {
            let c = try #require(SVGTextCollector.collect(svg), "\(name): not well-formed")
            let labels = c.texts.filter { ["x-tick-labels", "y-tick-labels", "x-title", "y-title"].contains($0.role) }
            let xTicks = labels.filter { $0.role == "x-tick-labels" }, yTicks = labels.filter { $0.role == "y-tick-labels" }
            #expect(xTicks.count >= 2 && yTicks.count >= 2, "\(name): \(xTicks.count) x and \(yTicks.count) y labels")
            #expect(Set(xTicks.map(\.content)).count == xTicks.count && Set(yTicks.map(\.content)).count == yTicks.count,
                    "\(name): repeated labels \(xTicks.map(\.content)) \(yTicks.map(\.content))")
            for (i, a) in labels.enumerated() {
                let box = SVGTextCollector.box(a)
                #expect(box.x0 >= 0 && box.x1 <= c.width && box.y0 >= 0 && box.y1 <= c.height, "\(name): '\(a.content)' leaves the page")
                for b in labels[(i + 1)...] {
                    #expect(!Self.overlaps(box, SVGTextCollector.box(b)), "\(name): '\(a.content)' and '\(b.content)' overlap")
                }
            }
        }
    }

    @Test("labels are thinned, not dropped: with room, every tick keeps its label")
    func labelsKeptWhenTheyFit() throws {
        let chart = LineChart(title: "t", xLabel: "M", yLabel: "gap", xScale: .logarithmic, yScale: .logarithmic,
                              series: [ChartSeries(name: "a", x: [100, 400, 1600], y: [0.1, 0.05, 0.025])])
        let c = try #require(SVGTextCollector.collect(chart.svg()))
        #expect(c.texts.filter { $0.role == "x-tick-labels" }.map(\.content) == ["100", "200", "500", "1000", "2000"])
        // On a narrow page the 1-2-5 labels fall back to whole decades, every one of them kept.
        let narrow = try #require(SVGTextCollector.collect(LineChart(title: "t", xLabel: "x", yLabel: "y", xScale: .logarithmic, series: [
            ChartSeries(name: "a", x: [1e-4, 0.1], y: [1, 2])]).svg(width: 260, height: 200)))
        #expect(narrow.texts.filter { $0.role == "x-tick-labels" }.map(\.content) == ["1e-04", "0.001", "0.01", "0.1"])
    }

    @Test("error bars span y - e to y + e at each drawn point, and reach the bottom of a log axis when y - e <= 0")
    func errorBars() throws {
        let chart = LineChart(title: "t", xLabel: "M", yLabel: "gap", xScale: .logarithmic, yScale: .logarithmic, series: [
            ChartSeries(name: "gap", x: [10, 100, 1000], y: [0.2, 0.05, 0.01], markers: true, yErrors: [0.05, 0.01, 0.02])])
        let svg = chart.svg()
        let inspected = try #require(SVGInspector.inspect(svg))
        let bars = inspected.elements.filter { $0.name == "line" && $0.attributes["data-error"] != nil }
        #expect(bars.count == 3)
        // Pixel lengths on the log axis: log10((y + e) / (y - e)) decades, at the axis' pixels per decade.
        let axis = Axis(values: [0.2, 0.25, 0.15, 0.05, 0.06, 0.04, 0.01, 0.03], scale: .logarithmic)
        let frame = ChartFrame(width: 720, height: 450)
        let perDecade = frame.plotHeight / log10(axis.hi / axis.lo)
        for (bar, (y, e)) in zip(bars.prefix(2), [(0.2, 0.05), (0.05, 0.01)]) {
            let length = Double(bar.attributes["y1"]!)! - Double(bar.attributes["y2"]!)!
            #expect(abs(length - perDecade * log10((y + e) / (y - e))) < 0.02)
        }
        // 0.01 - 0.02 < 0: the bar runs from the bottom of the plot.
        #expect(Double(bars[2].attributes["y1"]!)! == frame.top + frame.plotHeight)
    }
}
