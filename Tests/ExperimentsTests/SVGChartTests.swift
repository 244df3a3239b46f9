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
